"""Offline pipeline throughput: raw logs -> clean -> clean_samples -> training CSVs.

Simulates ``--hours`` of 2 LCCs x 32 units at 1 Hz, writes them as raw LCC logs with the default
defect rates, cleans them, uploads them (journaled, batched) into a fresh embedded server, uploads
them again (every document already stored), reads them back and writes lxx_data.csv /
psu_data.csv. Prints the rows/s of each stage and writes the "offline" section of
docs/benchmarks.md.

    python benchmarks/offline_pipeline.py --hours 0.5
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pymongo

from laserguard.offline.clean_store import read_clean_rows, upload_clean_rows
from laserguard.offline.cleaning import clean_files, raw_log_files
from laserguard.offline.raw_writer import write_raw_logs
from laserguard.offline.training_export import write_training_csvs
from laserguard.sim import generate
from laserguard.storage.embedded_server import EmbeddedMongo
from report_sections import machine_line, write_section


def run(hours: float, seed: int, workdir: Path) -> dict[str, Any]:
    stages: dict[str, float] = {}

    def timed(name: str, started: float) -> None:
        stages[name] = time.perf_counter() - started

    started = time.perf_counter()
    frame = generate(hours, lccs=2, units=32, seed=seed)
    write_raw_logs(frame, workdir / "raw", seed=seed)
    timed("simulate_and_write_raw_s", started)
    started = time.perf_counter()
    result = clean_files(raw_log_files(workdir / "raw"))
    timed("clean_s", started)
    rows = len(result.rows)
    with EmbeddedMongo(workdir / "db", attach_existing=False) as server:
        client: Any = pymongo.MongoClient(server.uri, tz_aware=True)
        db = client["bench"]
        started = time.perf_counter()
        first = upload_clean_rows(db, result.rows)
        timed("upload_s", started)
        started = time.perf_counter()
        second = upload_clean_rows(db, result.rows)
        timed("upload_again_s", started)
        started = time.perf_counter()
        stored = read_clean_rows(db)
        timed("read_back_s", started)
        client.close()
    started = time.perf_counter()
    summary = write_training_csvs(stored, workdir / "artifacts")
    timed("write_csvs_s", started)
    return {
        "hours": hours,
        "rows_clean": rows,
        "inserted": first.inserted,
        "already_stored_on_second_upload": second.already_stored,
        "csv_rows": summary.rows_written,
        "counts": result.counts,
        "seconds": {k: round(v, 2) for k, v in stages.items()},
        "rows_per_s": {k.removesuffix("_s"): round(rows / v) for k, v in stages.items() if v > 0},
    }


def section(result: dict[str, Any]) -> str:
    rate, seconds = result["rows_per_s"], result["seconds"]
    lines = [
        "## Offline pipeline (raw logs -> clean -> MongoDB -> CSVs)",
        "",
        f"`python benchmarks/offline_pipeline.py --hours {result['hours']}`: 2 LCCs x 32 units at 1 Hz, "
        f"{result['rows_clean']} clean rows; embedded server, journaled batches of 5000. {machine_line()}.",
        "",
        "| stage | seconds | rows/s |",
        "|---|---:|---:|",
    ]
    lines += [
        f"| {k.removesuffix('_s')} | {v} | {rate.get(k.removesuffix('_s'), '')} |" for k, v in seconds.items()
    ]
    lines += [
        "",
        f"Second upload: {result['already_stored_on_second_upload']} already stored, nothing inserted. "
        "The machine is shared: under load from other jobs the same run measured 3x lower upload rates.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--hours", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-doc", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lg-offline-") as tmp:
        result = run(args.hours, args.seed, Path(tmp))
    print(json.dumps(result, indent=2))
    if not args.no_doc:
        write_section("offline", section(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
