"""`laserguard clean RAW_DIR`: clean raw LCC logs with named rules and upload them to MongoDB."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from laserguard.storage.database_options import add_database_arguments

DEFAULT_REPORT_DIR = "artifacts"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "clean",
        help="clean raw LCC log files and upload the rows to MongoDB (idempotent)",
        description="Parse the raw LCC logs in RAW_DIR (docs/raw-format.md), apply the named cleaning "
        "rules, upload the clean rows to the clean_samples collection (running it twice stores nothing "
        "twice) and write clean_report.json / .md. Exit status 1 when a file had to be rejected "
        "(the other files are still loaded).",
    )
    p.add_argument("raw_dir", metavar="RAW_DIR", help="folder with lcc<NN>_<YYYY-MM-DD>.log files")
    add_database_arguments(p)
    p.add_argument(
        "--report-dir",
        default=DEFAULT_REPORT_DIR,
        metavar="DIR",
        help=f"where clean_report.json / .md go (default {DEFAULT_REPORT_DIR}/)",
    )
    p.add_argument("--batch-size", type=int, default=5000, help="documents per insert (default 5000)")
    p.set_defaults(func=run)


def _error(message: str) -> int:
    print(f"laserguard clean: error: {message}", file=sys.stderr)
    return 2


def _print_table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"clean: {report['rows_clean']} clean rows from {report['rows_read']} lines")
    table.add_column("rule")
    table.add_column("count", justify="right")
    table.add_column("meaning")
    for rule in report["rules"]:
        table.add_row(rule["rule"], str(rule["count"]), rule["meaning"])
    console = Console()
    console.print(table)
    upload = report["upload"]
    console.print(f"uploaded: {upload['new']} new, {upload['already_stored']} already stored")
    for rejected in report["rejected_files"]:
        console.print(f"[red]rejected[/red] {rejected['file']} line {rejected['line']}: {rejected['reason']}")


def run(args: argparse.Namespace) -> int:
    import pymongo
    import pymongo.errors

    from laserguard.offline.clean_report import build_report, write_report
    from laserguard.offline.clean_store import CLEAN_SAMPLES, upload_clean_rows
    from laserguard.offline.cleaning import clean_files, raw_log_files
    from laserguard.storage.embedded_server import EmbeddedMongoError, mongo_server

    raw_dir = Path(args.raw_dir)
    if not raw_dir.is_dir():
        return _error(f"raw folder {str(raw_dir)!r} does not exist")
    if args.batch_size < 1:
        return _error(f"--batch-size must be >= 1, got {args.batch_size}")
    paths = raw_log_files(raw_dir)
    if not paths:
        return _error(f"no raw log files (lcc<NN>_<YYYY-MM-DD>.log) in {str(raw_dir)!r}")

    started = time.perf_counter()
    result = clean_files(paths)
    clean_s = time.perf_counter() - started
    try:
        with mongo_server(args.mongo_uri, args.data_dir) as uri:
            client: Any = pymongo.MongoClient(uri, serverSelectionTimeoutMS=10_000)
            try:
                started = time.perf_counter()
                upload = upload_clean_rows(client[args.db], result.rows, batch_size=args.batch_size)
                upload_s = time.perf_counter() - started
            finally:
                client.close()
    except (EmbeddedMongoError, pymongo.errors.PyMongoError, RuntimeError) as exc:
        return _error(str(exc))

    report = build_report(
        raw_dir,
        len(paths),
        result,
        upload,
        {"database": args.db, "collection": CLEAN_SAMPLES},
        {"clean_s": clean_s, "upload_s": upload_s},
    )
    written = write_report(Path(args.report_dir), report)
    _print_table(report)
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 1 if result.rejected_files else 0
