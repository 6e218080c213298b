"""`laserguard store` sustained throughput over real ZMQ into the embedded server (j=True).

Publishes telemetry and feedback for ``--lccs`` LCCs of 32 units at ``--rate`` unit-samples/s
(the feedback on the observer endpoint `detect` binds), runs the real `laserguard store` process
against a fresh ``secantusd-py``, and samples the store's own metrics every second. Sustained
means the lag (unit-samples published but not yet written) stays flat. Target (issue 4):
>= 6,400 unit-samples/s. Needs the telemetry codec.

    python benchmarks/store_loop_throughput.py --rate 6400 --seconds 30
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import zmq
from prometheus_client.parser import text_string_to_metric_families

from laserguard.storage.embedded_server import EmbeddedMongo, free_tcp_port
from laserguard.wire import codec

BOOT = 0x5EED_B007_0000_0001  # boot id of the frames this file sends (one LCC start)

N_UNITS = 32


def scrape(port: int) -> dict[str, float]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except (urllib.error.URLError, ConnectionError):
        return {}
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            totals[s.name] = totals.get(s.name, 0.0) + s.value
    return totals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=6400.0, help="published unit-samples/s")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--lccs", type=int, default=2)
    parser.add_argument("--json", default=None, metavar="PATH")
    args = parser.parse_args()

    t_port, f_port, m_port = free_tcp_port(), free_tcp_port(), free_tcp_port()
    context = zmq.Context()
    telemetry, feedback = context.socket(zmq.PUB), context.socket(zmq.PUB)
    for socket, port in ((telemetry, t_port), (feedback, f_port)):
        socket.setsockopt(zmq.SNDHWM, 0)
        socket.bind(f"tcp://127.0.0.1:{port}")
    rng = np.random.default_rng(0)
    frames = [rng.normal(1.0, 0.1, size=(N_UNITS, len(codec.CHANNELS))).astype(np.float32) for _ in range(16)]
    scores = rng.normal(0.1, 0.05, size=N_UNITS).astype(np.float32)
    top_f = np.tile(np.arange(3, dtype=np.int16), (N_UNITS, 1))
    top_w = np.tile(np.array([0.5, 0.3, 0.2], dtype=np.float32), (N_UNITS, 1))
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedMongo(Path(tmp) / "db", attach_existing=False) as server,
    ):
        command = [
            sys.executable, "-m", "laserguard.cli", "store", "--mongo-uri", server.uri, "--db", "bench",
            "--telemetry-endpoint", f"tcp://127.0.0.1:{t_port}", "--feedback-endpoint", f"tcp://127.0.0.1:{f_port}",
            "--metrics-port", str(m_port), "--spool-dir", str(Path(tmp) / "spool"),
        ]  # fmt: skip
        store = subprocess.Popen(command, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        # Warm-up on LCC 0 until the store's subscription is live (late-joiner), not counted.
        seq = 0
        while scrape(m_port).get("laserguard_store_frames_received_total", 0) == 0:
            telemetry.send_multipart(
                [codec.telemetry_topic(0), codec.encode_telemetry(0, seq, 0, frames[0], boot_id=BOOT)]
            )
            seq += 1
            time.sleep(0.05)
        base = scrape(m_port).get("laserguard_store_unit_samples_written_total", 0.0)
        interval = N_UNITS * args.lccs / args.rate
        start = time.monotonic()
        next_frame, next_report = start, start + 1.0
        published, seq, lags = 0, 0, []
        while time.monotonic() - start < args.seconds:
            now = time.monotonic()
            if now >= next_report:
                written = scrape(m_port).get("laserguard_store_unit_samples_written_total", 0.0) - base
                lags.append(int(published - written))
                print(f"t={now - start:5.1f}s published={published} written={written:.0f} lag={lags[-1]}",
                      file=sys.stderr)  # fmt: skip
                next_report += 1.0
            if now < next_frame:
                time.sleep(min(next_frame, next_report) - now)
                continue
            ts = time.time_ns()
            for lcc in range(1, args.lccs + 1):
                values = frames[seq % len(frames)]
                telemetry.send_multipart(
                    [codec.telemetry_topic(lcc), codec.encode_telemetry(lcc, seq, ts, values, boot_id=BOOT)]
                )
                payload = codec.encode_feedback(
                    lcc, seq, ts, "bench", scores, np.array([3]), top_f, top_w, boot_id=BOOT
                )
                feedback.send_multipart([codec.feedback_topic(lcc), payload])
                published += N_UNITS
            seq += 1
            next_frame += interval
        elapsed = time.monotonic() - start
        final = scrape(m_port)
        written_during = final.get("laserguard_store_unit_samples_written_total", 0.0) - base
        batches = final.get("laserguard_store_write_latency_seconds_count", 0.0)
        batch_seconds = final.get("laserguard_store_write_latency_seconds_sum", 0.0)
        store.send_signal(signal.SIGTERM)
        status = store.wait(timeout=300)
        drained = time.monotonic() - start
    telemetry.close()
    feedback.close()
    context.term()
    result = {
        "published_unit_samples_per_s": round(published / elapsed, 1),
        "written_unit_samples_per_s": round(written_during / elapsed, 1),
        "lag_unit_samples_per_second": lags,
        "batches": int(batches),
        "mean_batch_unit_samples": round(written_during / batches) if batches else 0,
        "mean_batch_write_s": round(batch_seconds / batches, 3) if batches else 0.0,
        "seconds": round(elapsed, 1),
        "drain_after_stop_s": round(drained - elapsed, 1),
        "store_exit_status": status,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
