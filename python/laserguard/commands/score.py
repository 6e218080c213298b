"""`laserguard score`: score every row of a sensor table with a model (detection engine v2)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "score", help="score a table (CSV) with a model: score, is_anomaly and top_feature per row"
    )
    p.add_argument("--model", help="model file (.lgf); default: the shipped default model")
    p.add_argument(
        "--data", required=True, metavar="TABLE.csv", help="rows with unit, time and channel columns"
    )
    p.add_argument(
        "--out", required=True, metavar="SCORED.csv", help="the input rows, in order, plus the scores"
    )
    p.add_argument(
        "--unit-column",
        action="append",
        metavar="COL",
        help="unit column (repeatable; default: the model's, or lcc and unit)",
    )
    p.add_argument("--time-column", metavar="COL", help="time column (default: the model's, or time_s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from laserguard.model.default_model import default_model_path
    from laserguard.offline.sensor_table import TableError
    from laserguard.offline.table_scoring import score_csv

    try:
        summary = score_csv(
            args.model or default_model_path(),
            args.data,
            args.out,
            unit_columns=args.unit_column,
            time_column=args.time_column,
        )
    except (OSError, TableError, ValueError) as exc:
        print(f"laserguard score: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"scored {summary.rows} rows of {summary.units} units into {args.out}: {summary.flagged_rows} flagged "
        f"({summary.flagged_units} units), {summary.learning_rows} while learning a baseline"
    )
    return 0
