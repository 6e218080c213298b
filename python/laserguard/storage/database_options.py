"""The database flags shared by every tool that talks to MongoDB (store, exporter, demo)."""

from __future__ import annotations

import argparse
import os
from contextlib import AbstractContextManager
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
    parser.add_argument(
        "--embedded-replica-set",
        action="store_true",
        help="run the embedded server as a one-node replica set (change streams, transactions; "
        "about half the insert rate of the default standalone mode)",
    )


def database_server(
    args: argparse.Namespace, data_dir: str | os.PathLike[str] | None = None
) -> AbstractContextManager[str]:
    """The ``mongo_server`` context for these flags: yields the URI to connect to."""
    from laserguard.storage.embedded_server import mongo_server

    return mongo_server(
        args.mongo_uri,
        data_dir if data_dir is not None else args.data_dir,
        replica_set=args.embedded_replica_set,
    )


def redacted_uri(uri: str) -> str:
    """``uri`` with any password replaced by ``***``, for log lines."""
    scheme, sep, rest = uri.partition("://")
    userinfo, at, hosts = rest.partition("@")
    if not sep or not at or ":" not in userinfo:
        return uri
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{hosts}"
