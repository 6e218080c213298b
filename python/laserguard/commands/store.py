"""`laserguard store`: write the telemetry stream and the detector's scores to MongoDB."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

from laserguard.commands import curve_options
from laserguard.storage.database_options import add_database_arguments, database_server, redacted_uri
from laserguard.storage.frames_collection import MODES as FRAMES_MODES
from laserguard.storage.retention import MODES
from laserguard.storage.service import DEFAULT_FEEDBACK_ENDPOINT, DEFAULT_TELEMETRY_ENDPOINT

DEFAULT_METRICS_PORT = 9102


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "store",
        help="store telemetry, scores and alarms in MongoDB (journaled, idempotent, spooled when down)",
        description="Subscribe to the LCC telemetry and the detector's feedback and write them to MongoDB. "
        "Scores come from --feedback-endpoint, which `laserguard detect` binds for observers "
        "(the LCC's own feedback port 5555 is a SUB socket and cannot be shared).",
    )
    p.add_argument("--telemetry-endpoint", default=DEFAULT_TELEMETRY_ENDPOINT, metavar="ENDPOINT")
    p.add_argument(
        "--feedback-endpoint",
        default=DEFAULT_FEEDBACK_ENDPOINT,
        metavar="ENDPOINT",
        help=f"detector feedback for observers (default {DEFAULT_FEEDBACK_ENDPOINT}); "
        "'none' stores telemetry without scores",
    )
    p.add_argument(
        "--lcc", type=int, action="append", default=[], metavar="ID", help="only these LCCs (repeatable)"
    )
    add_database_arguments(p)
    p.add_argument(
        "--spool-dir",
        default=None,
        metavar="DIR",
        help="disk spool while the database is down (default: DATA_DIR/spool)",
    )
    p.add_argument("--metrics-port", type=int, default=DEFAULT_METRICS_PORT, help="Prometheus port (0: off)")
    p.add_argument("--metrics-bind", default="127.0.0.1", metavar="ADDR")
    p.add_argument("--flush-interval-s", type=float, default=0.1, help="how often a write batch is formed")
    p.add_argument("--join-window-s", type=float, default=0.5, help="how long telemetry waits for its scores")
    p.add_argument(
        "--raise-after", type=int, default=3, metavar="N", help="anomalous samples in a row to raise"
    )
    p.add_argument("--clear-after", type=int, default=5, metavar="M", help="normal samples in a row to clear")
    p.add_argument("--stats-json", default=None, metavar="PATH", help="write write/spool totals here on exit")
    p.add_argument(
        "--raw-retention",
        type=duration_s,
        default="7d",
        metavar="DURATION",
        help="keep raw frames this long (e.g. 36h, 7d; default 7d)",
    )
    p.add_argument(
        "--summary-retention",
        type=duration_s,
        default="2y",
        metavar="DURATION",
        help="keep per-unit minute summaries this long (default 2y); alarms are kept until deleted",
    )
    p.add_argument(
        "--retention-mode",
        choices=MODES,
        default="auto",
        help="ttl: TTL indexes (the server deletes); deletes: the store deletes in bounded chunks; "
        "auto (default): ttl where the server keeps TTL indexes",
    )
    p.add_argument(
        "--frames-collection",
        choices=FRAMES_MODES,
        default="auto",
        help="frames as a MongoDB time-series collection (timeseries), a plain one (plain), or a "
        "time-series one where the server really makes it (auto, default; the embedded server does not)",
    )
    p.add_argument(
        "--stop-timeout-s",
        type=float,
        default=3.0,
        help="on SIGTERM/SIGINT, how long the writer may still write before what it holds is spooled",
    )
    curve_options.add_client_options(p, "observer", observer=True)
    p.set_defaults(func=run)


_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400, "y": 365 * 86_400}


def duration_s(text: str) -> float:
    """'90s', '36h', '7d', '2y' (or plain seconds) -> seconds; argparse names the bad value."""
    unit = text[-1:].lower()
    number = text[:-1] if unit in _UNITS_S else text
    try:
        value = float(number) * _UNITS_S.get(unit, 1)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration (a number with s, m, h, d, w or y, e.g. 7d)"
        ) from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a retention must be longer than 0")
    return value


def run(args: argparse.Namespace) -> int:
    from prometheus_client import CollectorRegistry, start_http_server

    from laserguard.storage.embedded_server import EmbeddedMongoError, default_data_dir
    from laserguard.storage.metrics import StoreMetrics
    from laserguard.storage.retention import RetentionConfig
    from laserguard.storage.service import StoreConfig, StoreService
    from laserguard.storage.write_concern import describe

    try:
        from laserguard.wire.codec import CHANNELS
    except ImportError as exc:
        print(f"laserguard store: error: the telemetry codec is not available ({exc})", file=sys.stderr)
        return 2
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    spool_dir = Path(args.spool_dir) if args.spool_dir else data_dir / "spool"
    feedback = None if args.feedback_endpoint in ("", "none") else args.feedback_endpoint
    for name, value in (("--raise-after", args.raise_after), ("--clear-after", args.clear_after)):
        if value < 1:
            print(f"laserguard store: error: {name} must be >= 1, got {value}", file=sys.stderr)
            return 2
    try:
        security = curve_options.link_security(
            args, "store", connects_to=("lcc", "observer") if feedback is not None else ("lcc",)
        )
    except curve_options.SecurityUsageError as exc:
        print(f"laserguard store: error: {exc}", file=sys.stderr)
        return 2
    try:
        with database_server(args, data_dir) as uri:
            registry = CollectorRegistry()
            metrics = StoreMetrics(registry)
            http_server = None
            if args.metrics_port:
                http_server, _ = start_http_server(
                    args.metrics_port, addr=args.metrics_bind, registry=registry
                )
            config = StoreConfig(
                mongo_uri=uri,
                db_name=args.db,
                spool_dir=spool_dir,
                telemetry_endpoint=args.telemetry_endpoint,
                feedback_endpoint=feedback,
                lcc_ids=tuple(args.lcc),
                flush_interval_s=args.flush_interval_s,
                join_window_s=args.join_window_s,
                raise_after=args.raise_after,
                clear_after=args.clear_after,
                stop_timeout_s=args.stop_timeout_s,
                security=security,
                frames_collection=args.frames_collection,
                retention=RetentionConfig(
                    raw_s=args.raw_retention, summary_s=args.summary_retention, mode=args.retention_mode
                ),
            )
            try:
                service = StoreService(config, metrics, CHANNELS)
            except ValueError as exc:  # a write concern in the URI that pymongo refuses
                print(f"laserguard store: error: {exc}", file=sys.stderr)
                return 2

            def request_stop(signum: int, _frame: Any) -> None:
                service.stop_event.set()

            signal.signal(signal.SIGINT, request_stop)
            signal.signal(signal.SIGTERM, request_stop)
            target = f"{redacted_uri(uri)} db {args.db}"
            print(
                f"laserguard store: {args.telemetry_endpoint} (+ feedback {feedback}) -> {target} "
                f"(write concern {describe(service.write_concern)})",
                file=sys.stderr,
                flush=True,
            )
            status = service.run()
            if args.stats_json:
                service.write_stats(Path(args.stats_json))
            if http_server is not None:
                http_server.shutdown()
            return status
    except (EmbeddedMongoError, OSError) as exc:
        print(f"laserguard store: error: {exc}", file=sys.stderr)
        return 2
