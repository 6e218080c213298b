"""`laserguard exporter`: the latest per-unit telemetry, scores and alarms for Prometheus."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from laserguard.storage.database_options import add_database_arguments, database_server
from laserguard.storage.schema import LATEST_STATE

DEFAULT_PORT = 9216


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "exporter",
        help="serve the stored latest state of every unit as Prometheus metrics (default 127.0.0.1:9216)",
    )
    add_database_arguments(p)
    p.add_argument(
        "--collection", default=LATEST_STATE, help=f"latest-state collection (default {LATEST_STATE})"
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"HTTP port (default {DEFAULT_PORT})")
    p.add_argument("--bind", default="127.0.0.1", metavar="ADDR", help="listen address (default 127.0.0.1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import pymongo
    from prometheus_client import CollectorRegistry, start_http_server

    from laserguard.storage.embedded_server import EmbeddedMongoError
    from laserguard.storage.exporter import LatestStateCollector

    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        with database_server(args) as uri:
            # Short timeouts: a scrape of a down database must answer promptly with mongodb_up 0.
            client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
                uri, serverSelectionTimeoutMS=1000, connectTimeoutMS=1000, socketTimeoutMS=5000
            )
            registry = CollectorRegistry()
            registry.register(LatestStateCollector(client, args.db, args.collection))
            server, _ = start_http_server(args.port, addr=args.bind, registry=registry)
            print(
                f"laserguard exporter: http://{args.bind}:{args.port}/metrics <- {args.db}.{args.collection}",
                file=sys.stderr,
                flush=True,
            )
            stop.wait()
            server.shutdown()
            client.close()
            return 0
    except (EmbeddedMongoError, OSError) as exc:
        print(f"laserguard exporter: error: {exc}", file=sys.stderr)
        return 2
