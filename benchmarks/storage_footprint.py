"""Disk bytes per unit-sample of the store's documents on the embedded server.

Writes ``--frames`` frames of 32 units per LCC (with their feedback, one unit in twenty flagged
with top features) through the store's own pipeline (``TelemetryStore`` -> ``BatchWriter``, j=True)
into a fresh ``secantusd-py``, stops the server (so WiredTiger checkpoints) and reports the size of
its files and ``collStats`` per collection, per unit-sample and per unit-day at 10 Hz
(864,000 unit-samples). Run it before and after a change of the document shape (measured: 664 bytes per unit-sample
with per-sample documents, docs/benchmarks.md):

    python benchmarks/storage_footprint.py --frames 1500 --json after.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pymongo

from laserguard.storage.batch_writer import BatchWriter
from laserguard.storage.embedded_server import EmbeddedMongo
from laserguard.storage.retention import RetentionConfig, ensure_retention
from laserguard.storage.schema import ensure_indexes
from laserguard.storage.spool import WriteSpool
from laserguard.storage.telemetry_store import TelemetryStore
from laserguard.wire.codec import CHANNELS

N_UNITS = 32
UNIT_SAMPLES_PER_DAY = 10 * 86_400
# Typical readings per channel (A, V, W, mA, degC, degC, A, V, A, degC, mV) and their noise.
LEVELS = np.array([2.0, 1.9, 1.5, 1.2, 25.0, 22.0, 0.4, 24.0, 3.0, 30.0, 20.0], dtype=np.float32)
NOISE = LEVELS * np.float32(0.01)


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=3000, help="frames per LCC")
    parser.add_argument("--lccs", type=int, default=2)
    parser.add_argument("--json", default=None, metavar="PATH")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    top_f = np.tile(np.arange(3, dtype=np.int16), (N_UNITS, 1))
    top_w = np.tile(np.array([0.5, 0.3, 0.2], dtype=np.float32), (N_UNITS, 1))
    stats: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedMongo(Path(tmp) / "db", attach_existing=False).start()
        try:
            client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(server.uri)
            db = client["footprint"]
            ensure_indexes(db)
            ensure_retention(db, RetentionConfig())  # every index the store makes (TTL on ts too)
            empty_bytes = directory_bytes(server.storage_path)
            store = TelemetryStore(CHANNELS, latest_interval_s=0.0)
            writer = BatchWriter(db, WriteSpool(Path(tmp) / "spool"))
            start_ns = time.time_ns()
            started = time.monotonic()
            for seq in range(args.frames):
                for lcc in range(1, args.lccs + 1):
                    values = (LEVELS + rng.normal(size=(N_UNITS, len(CHANNELS))) * NOISE).astype(np.float32)
                    ts = start_ns + seq * 100_000_000
                    scores = rng.normal(0.1, 0.05, size=N_UNITS).astype(np.float32)
                    flagged = np.array([seq % N_UNITS])
                    store.add_telemetry(lcc, seq, ts, values, setpoint_a=np.full(N_UNITS, 2.0), now=0.0)
                    store.add_feedback(lcc, seq, ts, "footprint", scores, flagged, top_f, top_w, now=0.0)
                if seq % 100 == 99 or seq == args.frames - 1:
                    batch = store.take_batch(now=1.0, flush_all=True)
                    if batch is not None:
                        writer.write(batch)
            write_s = time.monotonic() - started
            unit_samples = writer.totals.inserted
            for name in sorted(db.list_collection_names()):
                s = db.command("collStats", name)
                stats[name] = {
                    k: s.get(k) for k in ("count", "size", "storageSize", "totalIndexSize", "avgObjSize")
                }
            client.close()
        finally:
            server.stop()
        files_bytes = directory_bytes(server.storage_path) - empty_bytes
    result = {
        "unit_samples": unit_samples,
        "write_s": round(write_s, 1),
        "collections": stats,
        "server_files_bytes": files_bytes,
        "bytes_per_unit_sample": round(files_bytes / unit_samples, 1),
        "bytes_per_unit_day": round(files_bytes / unit_samples * UNIT_SAMPLES_PER_DAY),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
