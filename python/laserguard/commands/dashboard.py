"""`laserguard dashboard`: the live web page on 127.0.0.1:8050 and the /casa_lcc_data JSON route."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from laserguard.commands import curve_options
from laserguard.storage.database_options import add_database_arguments

DEFAULT_PORT = 8050
DEFAULT_OBSERVER = "tcp://127.0.0.1:5557"
DEFAULT_TELEMETRY = "tcp://127.0.0.1:5556"


def _lcc_list(text: str) -> list[int]:
    try:
        ids = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--lccs must be comma-separated LCC ids, got {text!r}") from None
    if not ids or any(i < 0 for i in ids):
        raise argparse.ArgumentTypeError(f"--lccs must be comma-separated LCC ids >= 0, got {text!r}")
    return ids


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "dashboard",
        help=f"live web dashboard of every unit (default http://127.0.0.1:{DEFAULT_PORT}/)",
        description="A live grid of every unit (from the latest-state collection), anomalies with their top "
        "features, unit history, alarm acknowledge/clear, model and latency stats (from the detector's "
        "observer feedback stream), and GET /casa_lcc_data: the latest payload as JSON (503 before any).",
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"HTTP port (default {DEFAULT_PORT})")
    p.add_argument("--bind", default="127.0.0.1", metavar="ADDR", help="listen address (default 127.0.0.1)")
    p.add_argument(
        "--lccs", type=_lcc_list, default=[1, 2], metavar="IDS", help="LCC ids of the grid (default 1,2)"
    )
    p.add_argument("--units", type=int, default=32, help="units per LCC in the grid (default 32)")
    p.add_argument(
        "--observer-endpoint",
        default=DEFAULT_OBSERVER,
        metavar="ENDPOINT",
        help=f"detector feedback for observers (default {DEFAULT_OBSERVER}); 'none' to not subscribe",
    )
    p.add_argument(
        "--telemetry-endpoint",
        default=DEFAULT_TELEMETRY,
        metavar="ENDPOINT",
        help=f"LCC telemetry (default {DEFAULT_TELEMETRY}), for the sensor-to-feedback latency; 'none' to not subscribe",
    )
    p.add_argument(
        "--detect-metrics-url",
        default=None,
        metavar="URL",
        help="detect's Prometheus endpoint for the inference-time stat (e.g. http://127.0.0.1:9101/metrics)",
    )
    p.add_argument("--refresh-s", type=float, default=1.0, help="database poll interval (default 1 s)")
    p.add_argument(
        "--baseline-state-dir",
        default=None,
        metavar="DIR",
        help="detect's --baseline-state-dir: enables the Re-baseline action (a reset request detect applies)",
    )
    p.add_argument(
        "--token-file",
        default=None,
        metavar="FILE",
        help="file holding the operator token that write actions (acknowledge, clear) require; default "
        "$LASERGUARD_DASHBOARD_TOKEN. Required when --bind is not a loopback address",
    )
    add_database_arguments(p)
    curve_options.add_client_options(p, "observer", observer=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    import pymongo
    from werkzeug.serving import make_server

    from laserguard.dashboard.app import create_app
    from laserguard.dashboard.feedback_monitor import FeedbackMonitor
    from laserguard.dashboard.state import DashboardState
    from laserguard.dashboard.write_guard import WriteGuardError, guard_for, load_token
    from laserguard.storage.embedded_server import EmbeddedMongoError, mongo_server

    if not 1 <= args.units <= 4096 or not args.refresh_s > 0:
        print(
            f"laserguard dashboard: error: --units must be in [1, 4096] and --refresh-s > 0, "
            f"got {args.units} and {args.refresh_s}",
            file=sys.stderr,
        )
        return 2
    try:
        guard = guard_for(args.bind, load_token(args.token_file))
    except WriteGuardError as exc:
        print(f"laserguard dashboard: error: {exc}", file=sys.stderr)
        return 2
    connects_to = [
        server
        for server, endpoint in (("observer", args.observer_endpoint), ("lcc", args.telemetry_endpoint))
        if endpoint != "none"
    ]
    try:
        security = curve_options.link_security(args, "dashboard", connects_to=connects_to)
    except curve_options.SecurityUsageError as exc:
        print(f"laserguard dashboard: error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request (one per second per tab)
    try:
        with mongo_server(args.mongo_uri, args.data_dir) as uri:
            # Short timeouts: a down database shows as an error on the page within a second or two.
            client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
                uri, serverSelectionTimeoutMS=1000, connectTimeoutMS=1000, socketTimeoutMS=5000
            )
            state = DashboardState(client[args.db], interval_s=args.refresh_s)
            observer = None if args.observer_endpoint == "none" else args.observer_endpoint
            telemetry = None if args.telemetry_endpoint == "none" else args.telemetry_endpoint
            monitor = FeedbackMonitor(observer, args.detect_metrics_url, telemetry, security=security)
            app = create_app(state, monitor, args.lccs, args.units, guard, args.baseline_state_dir)
            try:
                server = make_server(args.bind, args.port, app.server, threaded=True)
            except SystemExit:  # werkzeug prints why (e.g. port in use) and exits
                raise OSError(f"cannot listen on {args.bind}:{args.port}") from None
            state.start()
            monitor.start()
            thread = threading.Thread(
                target=server.serve_forever, name="laserguard-dashboard-http", daemon=True
            )
            thread.start()
            print(
                f"laserguard dashboard: http://{args.bind}:{args.port}/ <- {args.db} "
                f"(feedback from {args.observer_endpoint}; write actions "
                f"{'need the operator token' if guard.token_required else 'open: loopback only'})",
                file=sys.stderr,
                flush=True,
            )
            stop.wait()
            server.shutdown()
            thread.join(timeout=5)
            monitor.stop()
            state.stop()
            client.close()
            return 0
    except (EmbeddedMongoError, OSError) as exc:
        print(f"laserguard dashboard: error: {exc}", file=sys.stderr)
        return 2
