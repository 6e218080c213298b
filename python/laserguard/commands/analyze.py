"""`laserguard analyze`: clean rows from MongoDB -> lxx_data.csv, psu_data.csv and EDA figures."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from laserguard.storage.database_options import add_database_arguments

DEFAULT_OUT = "artifacts"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "analyze",
        help="export the clean rows from MongoDB as lxx_data.csv / psu_data.csv plus EDA figures",
        description="Read the clean_samples collection (written by `laserguard clean`) and write the "
        "training CSVs of docs/data-contracts.md and EDA figures (PNG) into --out.",
    )
    add_database_arguments(p)
    p.add_argument(
        "--out", default=DEFAULT_OUT, metavar="DIR", help=f"output folder (default {DEFAULT_OUT}/)"
    )
    p.add_argument(
        "--missing",
        choices=("keep", "drop", "ffill"),
        default="keep",
        help="rows with a missing reading: keep them as empty cells (default; read as NaN, "
        "docs/data-contracts.md), drop them, or ffill (carry the unit's last reading forward, then "
        "drop what is still missing)",
    )
    p.add_argument("--no-figures", action="store_true", help="write only the CSVs")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import pymongo
    import pymongo.errors

    from laserguard.offline.clean_store import CLEAN_SAMPLES, read_clean_rows
    from laserguard.offline.eda_figures import write_eda_figures
    from laserguard.offline.training_export import write_training_csvs
    from laserguard.storage.embedded_server import EmbeddedMongoError, mongo_server

    started = time.perf_counter()
    try:
        with mongo_server(args.mongo_uri, args.data_dir) as uri:
            client: Any = pymongo.MongoClient(uri, serverSelectionTimeoutMS=10_000, tz_aware=True)
            try:
                rows = read_clean_rows(client[args.db])
            finally:
                client.close()
    except (EmbeddedMongoError, pymongo.errors.PyMongoError) as exc:
        print(f"laserguard analyze: error: {exc}", file=sys.stderr)
        return 2
    read_s = time.perf_counter() - started
    if rows.empty:
        print(
            f"laserguard analyze: error: {args.db}.{CLEAN_SAMPLES} is empty; run `laserguard clean RAW_DIR` first",
            file=sys.stderr,
        )
        return 2
    out = Path(args.out)
    summary = write_training_csvs(rows, out, missing=args.missing)
    print(
        f"read {summary.rows_read} clean rows in {read_s:.1f} s; wrote {summary.lxx_path} and "
        f"{summary.psu_path}: {summary.rows_written} rows ({summary.rows_dropped_missing} dropped for a "
        f"missing reading, {summary.cells_filled} cells forward-filled)"
    )
    # Rows cleaned from version-1 raw logs (or stored before) have no operating context.
    states = rows["state"].fillna("unknown").value_counts()
    print(
        f"unit states: {', '.join(f'{name} {count}' for name, count in states.items())}; "
        f"setpoint known on {int(rows['setpoint_a'].notna().sum())} of {len(rows)} rows"
    )
    if not args.no_figures:
        figures = write_eda_figures(rows, out)
        print(f"wrote {', '.join(str(p) for p in figures)}")
    return 0
