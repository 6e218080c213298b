"""How long the embedded server takes to start, to stop, and to pass from one tool to the next.

    python benchmarks/embedded_handover.py [--runs 10] [--docs 20000] [--out handover.json]

Per run, on one data directory holding ``--docs`` journaled documents:
- ``stop_s``: ``secantusd-py`` from SIGTERM to exit (``EmbeddedMongo.stop``), i.e. until it has
  released WiredTiger's lock on the files;
- ``tool_start_s`` / ``tool_leave_s``: a tool's ``shared_embedded_server`` block: entering it
  (supervisor and server start) and leaving it as the last tool (the supervisor's grace period,
  its decision, SIGTERM and the server's exit), the time a command's exit waits for the hand-over;
- ``next_tool_ok``: a second tool entering the instant the first one left gets a working server.
Prints JSON (with the CPU) and writes it to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pymongo

from laserguard.storage.embedded_server import EmbeddedMongo, data_dir_holder, ping
from laserguard.storage.embedded_supervisor import shared_embedded_server


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=Path("handover.json"))
    args = parser.parse_args()
    stops: list[float] = []
    starts: list[float] = []
    leaves: list[float] = []
    next_ok = 0
    # The supervisor still logs its last line after the server exited: clean up leniently.
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as folder:
        data_dir = Path(folder)
        with EmbeddedMongo(data_dir, attach_existing=False) as server:
            client: Any = pymongo.MongoClient(server.uri)
            docs = [{"i": i, "pad": "x" * 100} for i in range(args.docs)]
            client["bench"].get_collection("docs").insert_many(docs)
            client.close()
        for _ in range(args.runs):
            server = EmbeddedMongo(data_dir, attach_existing=False).start()
            started = time.monotonic()
            server.stop()
            stops.append(time.monotonic() - started)
            assert data_dir_holder(server.storage_path) is None
        for _ in range(args.runs):
            started = time.monotonic()
            with shared_embedded_server(data_dir) as uri:
                starts.append(time.monotonic() - started)
                leaving = time.monotonic()
            leaves.append(time.monotonic() - leaving)
            with shared_embedded_server(data_dir) as next_uri:  # the next tool, at once
                next_ok += ping(next_uri)
    report = {
        "cpu": cpu_name(),
        "runs": args.runs,
        "documents": args.docs,
        "stop_s": summary(stops),
        "tool_start_s": summary(starts),
        "tool_leave_s": summary(leaves),
        "next_tool_ok": f"{next_ok}/{args.runs}",
        "previous_uri_gone": not ping(uri, timeout_s=0.3),
    }
    text = json.dumps(report, indent=2)
    args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
