"""A unit's history on a database seeded with 30 days: how long the dashboard's reads take.

Seeds a fresh embedded server with 30 days of per-minute summaries for every unit of one LCC
(32 units x 720 unit-hour documents, the shape ``rollup`` writes) and the last 10 minutes of raw
frames of that LCC (6,000 frames), then times ``unit_history.unit_history`` for one unit over
10 min (raw frames), 1 h, 1 d and 30 d (summaries): the median and worst of 5 reads each.
Target (issue 17): 30 days in under 1 s.

    python benchmarks/history_30d.py --json history.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pymongo

from laserguard.storage.batch_writer import BatchWriter
from laserguard.storage.embedded_server import EmbeddedMongo
from laserguard.storage.frame_documents import f32_column
from laserguard.storage.schema import ensure_indexes, unit_minutes_id
from laserguard.storage.spool import WriteSpool
from laserguard.storage.telemetry_store import TelemetryStore
from laserguard.storage.unit_history import unit_history
from laserguard.wire.codec import CHANNELS

LCC = 1
UNITS = 32
DAYS = 30


def minute_summary(rng: np.random.Generator) -> dict[str, Any]:
    values = rng.normal(1.0, 0.05, len(CHANNELS)).astype(np.float32)
    return {
        "n": 600,
        "flagged": 0,
        "worst": 0.1,
        "mean": f32_column(values),
        "min": f32_column(values - 0.1),
        "max": f32_column(values + 0.1),
        "last": f32_column(values),
        "setpoint_a": 8.0,
        "state": "on",
    }


def seed(db: Any, now: dt.datetime, tmp: Path) -> dict[str, int]:
    ensure_indexes(db)  # as the store creates them, before the data
    rng = np.random.default_rng(0)
    minutes = {f"{m:02d}": minute_summary(rng) for m in range(60)}  # one hour, reused (size is what counts)
    first_hour = int(now.timestamp()) // 3600 * 3600 - DAYS * 24 * 3600
    docs = 0
    for unit in range(UNITS):
        batch = [
            {
                "_id": unit_minutes_id(LCC, unit, hour),
                "lcc": LCC,
                "unit": unit,
                "hour": dt.datetime.fromtimestamp(hour, dt.UTC),
                "channels": list(CHANNELS),
                "m": minutes,
            }
            for hour in range(first_hour, first_hour + DAYS * 24 * 3600, 3600)
        ]
        db.unit_minutes.insert_many(batch, ordered=False)
        docs += len(batch)
    ensure_indexes(db)
    store = TelemetryStore(CHANNELS, latest_interval_s=3600.0)
    writer = BatchWriter(db, WriteSpool(tmp / "spool"))
    start_ns = int((now - dt.timedelta(minutes=10)).timestamp() * 1e9)
    for seq in range(6000):
        values = rng.normal(1.0, 0.05, (UNITS, len(CHANNELS))).astype(np.float32)
        store.add_telemetry(LCC, seq, start_ns + seq * 100_000_000, values, now=0.0)
        if seq % 500 == 499:
            batch_ = store.take_batch(now=1.0, flush_all=True)
            if batch_ is not None:
                writer.write(batch_)
    return {"unit_minutes_documents": docs, "frames": 6000}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=None, metavar="PATH")
    args = parser.parse_args()
    now = dt.datetime.now(dt.UTC)
    results: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedMongo(Path(tmp) / "db", attach_existing=False) as server,
    ):
        client: Any = pymongo.MongoClient(server.uri)
        db = client["history"]
        started = time.monotonic()
        results["seeded"] = seed(db, now, Path(tmp))
        results["seed_s"] = round(time.monotonic() - started, 1)
        for label, window_s in (("10 min", 600), ("1 h", 3600), ("1 d", 86_400), ("30 d", DAYS * 86_400)):
            times, points = [], 0
            for _ in range(5):
                t = time.perf_counter()
                points = len(unit_history(db, LCC, 7, window_s, dt.datetime.now(dt.UTC)))
                times.append(time.perf_counter() - t)
            results[label] = {
                "points": points,
                "median_s": round(statistics.median(times), 3),
                "max_s": round(max(times), 3),
            }
            print(label, results[label], file=sys.stderr, flush=True)
        client.close()
    results["cpu"] = "AMD EPYC, 2 cores (shared)"
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
