"""The database flags shared by every tool that talks to MongoDB (store, exporter, demo)."""

from __future__ import annotations

import argparse
from typing import Any

DEFAULT_DATABASE = "laserguard"


def add_database_arguments(parser: Any) -> None:
    """Add --mongo-uri, --data-dir and --db; resolve them with ``embedded_mongo.mongo_server``."""
    parser.add_argument(
        "--mongo-uri",
        default=None,
        metavar="URI",
        help="MongoDB URI (auth and TLS go in the URI); default: $LASERGUARD_MONGO_URI, else start the "
        "embedded server (pip install 'laserguard[embedded]')",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="where the embedded server keeps its files (default: the user data dir, .../laserguard/mongodb)",
    )
    parser.add_argument("--db", default=DEFAULT_DATABASE, help=f"database name (default {DEFAULT_DATABASE})")


def database_arguments(args: argparse.Namespace) -> tuple[str | None, str | None, str]:
    return args.mongo_uri, args.data_dir, args.db
