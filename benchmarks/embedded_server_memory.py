"""The embedded server's memory under two query patterns (issue 17): a minimal reproducer.

    python benchmarks/embedded_server_memory.py                 # 100,000 documents, JSON on stdout
    python benchmarks/embedded_server_memory.py --docs 20000 --idle-s 70

Against a fresh ``secantusd-py`` (``EmbeddedMongo``, the store's flags), documents shaped like
frame documents (``lcc``, ``ts``, 17 binary columns of 128 bytes) are inserted, then:

1. **TTL monitor.** One server with a TTL index on ``ts`` that expires nothing, one with a plain
   index: both left idle for ``--idle-s`` (the TTL monitor runs every 60 s) while a 1-document
   insert every 0.2 s measures how long the server blocks. SecantusDB 0.7.0b3's monitor reads
   the whole TTL-indexed collection into a list under its global lock.
2. **One large read vs time slices.** The same ``ts`` range read in one query and in slices of
   ``--slice-s``: the server's peak RSS (VmHWM, reset before each read) and RSS afterwards.
   SecantusDB builds a query's whole result in memory before the first batch.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from laserguard.storage.embedded_server import EmbeddedMongo

BATCH = 500


def memory_mb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS", "VmHWM")):
            fields[line.split(":")[0]] = int(line.split()[1]) // 1024
    return fields


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS


def load(collection: Any, n_docs: int, start: dt.datetime, span_s: float) -> None:
    """Documents shaped like frame documents: 16 channels of 32 float32 and a score column."""
    columns = {f"channel_{c:02d}": os.urandom(128) for c in range(16)}
    step = span_s / n_docs
    for first in range(0, n_docs, BATCH):
        collection.insert_many(
            [
                {
                    "_id": f"1:{i:09d}",
                    "lcc": 1,
                    "ts": start + dt.timedelta(seconds=i * step),
                    "values": columns,
                    "score": columns["channel_00"],
                }
                for i in range(first, min(n_docs, first + BATCH))
            ]
        )


def ttl_case(ttl: bool, n_docs: int, idle_s: float) -> dict[str, Any]:
    import pymongo

    with tempfile.TemporaryDirectory() as tmp, EmbeddedMongo(tmp, attach_existing=False) as server:
        assert server.pid is not None
        client: Any = pymongo.MongoClient(server.uri)
        frames = client.bench.frames
        frames.create_index("ts", **({"expireAfterSeconds": 7 * 86_400} if ttl else {}))
        load(frames, n_docs, dt.datetime.now(dt.UTC) - dt.timedelta(hours=1), 3600.0)
        loaded = memory_mb(server.pid)["VmRSS"]
        started, slowest, peak, i = time.monotonic(), 0.0, loaded, 0
        while time.monotonic() - started < idle_s:
            i += 1
            t = time.monotonic()
            client.bench.probe.insert_one({"i": i})
            slowest = max(slowest, time.monotonic() - t)
            peak = max(peak, memory_mb(server.pid)["VmRSS"])
            time.sleep(0.2)
        return {
            "index": "TTL (expires nothing)" if ttl else "plain",
            "rss_mb_loaded": loaded,
            "rss_mb_max_idle": peak,
            "rss_mb_end": memory_mb(server.pid)["VmRSS"],
            "slowest_1_doc_insert_ms": round(slowest * 1000, 1),
            "documents_left": frames.count_documents({"ts": {"$gte": dt.datetime(2000, 1, 1)}}),
        }


def read_case(n_docs: int, slice_s: float) -> list[dict[str, Any]]:
    import pymongo

    from laserguard.storage.time_slices import TimeSlicedReader

    rows = []
    with tempfile.TemporaryDirectory() as tmp, EmbeddedMongo(tmp, attach_existing=False) as server:
        assert server.pid is not None
        frames = pymongo.MongoClient(server.uri).bench.frames
        frames.create_index("ts")
        start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        load(frames, n_docs, start, 60.0)  # one minute: the soak's 12,000 frames a minute
        end = start + dt.timedelta(minutes=1)

        def sliced() -> list[dict[str, Any]]:
            reader = TimeSlicedReader(initial_slice_s=slice_s, max_slice_s=slice_s)
            return list(reader.read(frames, {}, "ts", start, end))

        reads: list[tuple[str, Any]] = [
            ("one query", lambda: list(frames.find({"ts": {"$gte": start, "$lt": end}}))),
            ("one query, limit 500", lambda: list(frames.find({"ts": {"$gte": start}}).limit(500))),
            (f"slices of {slice_s:g} s", sliced),
        ]
        for label, read in reads * 2:
            reset_peak(server.pid)
            before = memory_mb(server.pid)["VmRSS"]
            t = time.monotonic()
            n = len(read())
            after = memory_mb(server.pid)
            rows.append(
                {
                    "read": label,
                    "documents": n,
                    "seconds": round(time.monotonic() - t, 2),
                    "rss_mb_before": before,
                    "rss_mb_peak": after["VmHWM"],
                    "rss_mb_after": after["VmRSS"],
                }
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=100_000, help="documents per server")
    parser.add_argument("--idle-s", type=float, default=150.0, help="idle time with the TTL monitor")
    parser.add_argument("--read-docs", type=int, default=12_000, help="documents in the read case")
    parser.add_argument("--slice-s", type=float, default=6.0, help="slice length in the read case")
    parser.add_argument("--cases", default="ttl,reads", help="which cases to run (default: ttl,reads)")
    args = parser.parse_args()
    cases = set(args.cases.split(","))
    result: dict[str, Any] = {}
    if "ttl" in cases:
        result["ttl_monitor"] = [ttl_case(ttl, args.docs, args.idle_s) for ttl in (True, False)]
    if "reads" in cases:
        result["reads"] = read_case(args.read_docs, args.slice_s)
    json.dump(result, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
