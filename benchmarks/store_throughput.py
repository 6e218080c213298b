"""Storage throughput into the embedded server with journaled writes (j=True).

Runs the store's own pipeline (TelemetryStore batching on this thread, BatchWriterThread applying
batches) against a fresh ``secantusd-py`` on 127.0.0.1, offering frames of 32 units (with their
feedback) at ``--rate`` unit-samples/s (0: as fast as possible). Reports the sustained written
rate and the backlog (frames not yet written) over time: flat at the offered rate means the
store keeps up. Target (issue 4): >= 6,400 unit-samples/s (10x nominal).

    python benchmarks/store_throughput.py --seconds 20 --rate 6400
    python benchmarks/store_throughput.py --seconds 20 --rate 0
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pymongo
from prometheus_client import CollectorRegistry

from laserguard.storage.batch_writer import BatchWriter
from laserguard.storage.embedded_server import EmbeddedMongo
from laserguard.storage.metrics import StoreMetrics
from laserguard.storage.schema import ensure_indexes
from laserguard.storage.service import BatchWriterThread
from laserguard.storage.spool import WriteSpool
from laserguard.storage.telemetry_store import TelemetryStore
from laserguard.storage.unit_history import stored_unit_samples

CHANNELS = tuple(f"channel_{i}_v" for i in range(11))  # 11 channels like the real frame
N_UNITS = 32
N_LCCS = 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--rate",
        type=float,
        default=6400.0,
        help="offered unit-samples/s (0: as fast as the writer takes them)",
    )
    parser.add_argument("--flush-interval-s", type=float, default=0.1)
    parser.add_argument("--json", default=None, metavar="PATH")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    frames = [rng.normal(1.0, 0.1, size=(N_UNITS, len(CHANNELS))).astype(np.float32) for _ in range(64)]
    scores = rng.normal(0.1, 0.05, size=N_UNITS).astype(np.float32)
    top_f = np.tile(np.arange(3, dtype=np.int16), (N_UNITS, 1))
    top_w = np.tile(np.array([0.5, 0.3, 0.2], dtype=np.float32), (N_UNITS, 1))
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedMongo(Path(tmp) / "db", attach_existing=False) as server,
    ):
        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(server.uri)
        db = client["bench"]
        ensure_indexes(db)
        metrics = StoreMetrics(CollectorRegistry())
        store = TelemetryStore(CHANNELS, metrics=metrics)
        writer = BatchWriter(db, WriteSpool(Path(tmp) / "spool"), metrics=metrics)
        thread = BatchWriterThread(writer)
        thread.start()
        frame_interval = (N_UNITS * N_LCCS / args.rate) if args.rate > 0 else 0.0
        start = time.monotonic()
        next_frame = start
        next_flush = start + args.flush_interval_s
        next_report = start + 1.0
        seq = 0
        offered = 0
        backlog_samples: list[int] = []
        while time.monotonic() - start < args.seconds:
            now = time.monotonic()
            # Unlimited mode is closed-loop: keep about two full batches waiting, no more.
            unlimited_ok = (
                frame_interval or offered - writer.totals.inserted < 2 * store.max_batch_unit_samples
            )
            if now >= next_frame and unlimited_ok:
                for lcc in range(1, N_LCCS + 1):
                    ts = time.time_ns()
                    store.add_telemetry(lcc, seq, ts, frames[seq % len(frames)], now=now)
                    store.add_feedback(lcc, seq, ts, "bench", scores, np.array([3]), top_f, top_w, now=now)
                    offered += N_UNITS
                seq += 1
                next_frame += frame_interval
            if now >= next_flush and thread.queue.empty():  # as the store service does
                batch = store.take_batch(now=now)
                if batch is not None:
                    thread.submit(batch)
                next_flush = now + args.flush_interval_s
            if now >= next_report:
                backlog = offered - writer.totals.inserted
                backlog_samples.append(backlog)
                written = writer.totals.inserted
                print(
                    f"t={now - start:5.1f}s written={written} backlog={backlog} unit-samples", file=sys.stderr
                )
                next_report += 1.0
            if frame_interval and next_frame > time.monotonic():
                time.sleep(max(0.0, min(next_frame, next_flush) - time.monotonic()))
            elif not unlimited_ok:
                time.sleep(0.01)
        elapsed_offer = time.monotonic() - start
        written_during_offer = writer.totals.inserted
        batch = store.take_batch(flush_all=True)
        if batch is not None:
            thread.submit(batch)
        thread.stop()
        elapsed_total = time.monotonic() - start
        stored = stored_unit_samples(db)
        client.close()
    result = {
        "offered_unit_samples_per_s": round(offered / elapsed_offer, 1),
        "written_unit_samples_per_s_during_offer": round(written_during_offer / elapsed_offer, 1),
        "written_unit_samples_per_s_incl_drain": round(stored / elapsed_total, 1),
        "unit_samples_offered": offered,
        "unit_samples_stored": stored,
        "backlog_per_second": backlog_samples,
        "flush_interval_s": args.flush_interval_s,
        "journaled": True,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if stored == offered else 1


if __name__ == "__main__":
    sys.exit(main())
