"""The `laserguard` command line: one sub-command per module in laserguard.commands."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Each module defines `register(subparsers)`, which adds its parser and sets `func`
# (a callable taking the parsed args and returning the exit status).
COMMAND_MODULES = (
    "export",
    "compare",
    "detect",
    "simulate",
    "store",
    "exporter",
    "train",
    "demo",
    "alarms",
    "roundtrip",
    "clean",
    "analyze",
    "replay",
    "dashboard",
    "baseline",
    "score",
    "keys",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="laserguard", description="Anomaly detection for laser units (exact C++ IsolationForest)."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"laserguard.commands.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
