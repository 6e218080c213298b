"""Maximum sustainable lcc-sim frame rate, with and without a feedback loop.

Runs the installed ``lcc-sim`` (2 LCCs x 32 units by default) at increasing rates for a few
seconds each. With ``--echo`` a Python detector stand-in decodes every frame and answers it
with a feedback message (codec round trip through real sockets), so the round-trip latency
and feedback counts are those of a closed loop. A rate is *sustained* when lcc-sim ran every
tick (achieved rate within 1 % of the request), dropped nothing, and, with --echo, got an
answer for at least 99 % of the frames.

    python benchmarks/lcc_sim_rate.py --rates 1000 2000 5000 10000 20000 [--echo]
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import zmq

from laserguard.wire import codec


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def echo(telemetry: str, feedback: str, stop: threading.Event, ready: threading.Event) -> None:
    ctx = zmq.Context()
    sub, pub = ctx.socket(zmq.SUB), ctx.socket(zmq.PUB)
    for s in (sub, pub):
        s.setsockopt(zmq.SNDHWM, 100_000)
        s.setsockopt(zmq.RCVHWM, 100_000)
    sub.setsockopt(zmq.SUBSCRIBE, b"lcc.")
    sub.connect(telemetry)
    pub.connect(feedback)
    ready.set()
    top = weights = scores = None
    while not stop.is_set():
        if not sub.poll(20):
            continue
        _, payload = sub.recv_multipart(copy=False)
        frame = codec.decode_telemetry(payload.buffer)
        if top is None:
            top = np.zeros((frame.n_units, 3), np.int16)
            weights = np.zeros((frame.n_units, 3), np.float32)
            scores = np.zeros(frame.n_units, np.float32)
        answer = codec.encode_feedback(
            frame.lcc_id, frame.seq, 0, "echo", scores, [], top, weights, boot_id=frame.boot_id
        )  # type: ignore[arg-type]
        pub.send_multipart([codec.feedback_topic(frame.lcc_id), answer])
    sub.close(0)
    pub.close(0)
    ctx.term()


def run(rate: float, seconds: float, lccs: int, units: int, with_echo: bool) -> dict[str, object]:
    tel, fb = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(target=echo, args=(tel, fb, stop, ready), daemon=True)
    exe = shutil.which("lcc-sim") or str(Path(sys.executable).with_name("lcc-sim"))
    cmd = [
        exe,
        "--lccs",
        str(lccs),
        "--units",
        str(units),
        "--rate-hz",
        str(rate),
        "--duration-s",
        str(seconds),
    ]
    cmd += ["--telemetry-endpoint", tel, "--feedback-endpoint", fb, "--log-level", "error", "--hwm", "100000"]
    if with_echo:
        cmd += ["--wait-for-subscriber", "10"]  # no late-joiner loss: every frame can be answered
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    if with_echo:
        thread.start()
        ready.wait()
    out, _ = proc.communicate(timeout=seconds + 60)
    stop.set()
    if with_echo:
        thread.join()
    s = json.loads(out)
    frames = int(s["frames_sent"])
    answered = frames - int(s["frames_without_feedback"])
    sustained = s["achieved_rate_hz"] >= 0.99 * rate and s["frames_dropped"] == 0
    if with_echo:
        sustained = sustained and answered >= 0.99 * frames
    return {
        "rate_hz": rate,
        "achieved_rate_hz": round(s["achieved_rate_hz"], 1),
        "frames_sent": frames,
        "frames_dropped": s["frames_dropped"],
        "answered": answered,
        "tick_cost_us_mean": round(s["tick_cost_us"]["mean"], 1),
        "schedule_lag_us_p99": round(s["schedule_lag_us"]["p99"], 1),
        "rtt_us": {k: round(v, 1) for k, v in s["round_trip_latency_us"].items() if k != "count"},
        "sustained": sustained,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", type=float, nargs="+", default=[1000, 2000, 5000, 10000, 20000])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--lccs", type=int, default=2)
    ap.add_argument("--units", type=int, default=32)
    ap.add_argument("--echo", action="store_true", help="answer every frame from a Python detector stand-in")
    args = ap.parse_args()
    for rate in args.rates:
        print(json.dumps(run(rate, args.seconds, args.lccs, args.units, args.echo)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
