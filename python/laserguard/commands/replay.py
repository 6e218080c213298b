"""`laserguard replay`: stream a recorded dataset into the loop like an LCC (or into a collection)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from laserguard.commands import curve_options
from laserguard.storage.database_options import add_database_arguments

DEFAULT_TELEMETRY = "tcp://127.0.0.1:5556"
DEFAULT_FEEDBACK = "tcp://127.0.0.1:5555"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "replay",
        help="stream a recorded dataset (CSV or MongoDB collection) into the loop at real time or --speed N",
        description="Sends recorded telemetry (rows: time_s or time, lcc, unit and every channel) as frames "
        "on the recorded clock. To detect and store it is an LCC like lcc-sim: it binds the telemetry "
        "and feedback endpoints and numbers frames from 0. With --to-mongo it writes the rows into a "
        "scratch collection (dropped first) on the same clock instead.",
    )
    p.add_argument("source", nargs="?", default=None, metavar="SOURCE", help="CSV file to replay")
    p.add_argument(
        "--mongo-collection",
        default=None,
        metavar="NAME",
        help="replay this collection of the database (--mongo-uri/--db) instead of a CSV file",
    )
    p.add_argument("--speed", type=float, default=1.0, help="replay speed factor (default 1 = real time)")
    p.add_argument("--telemetry-endpoint", default=DEFAULT_TELEMETRY, help="PUB endpoint to bind")
    p.add_argument(
        "--feedback-endpoint",
        default=DEFAULT_FEEDBACK,
        help="SUB endpoint to bind for the detector's feedback; 'none' to not listen",
    )
    p.add_argument("--hwm", type=int, default=1000, help="high-water mark of both sockets (messages)")
    p.add_argument(
        "--wait-subscribers",
        type=int,
        default=0,
        metavar="N",
        help="wait until N subscriptions reached the telemetry socket before sending (default 0)",
    )
    p.add_argument("--wait-timeout-s", type=float, default=30.0, help="how long --wait-subscribers waits")
    p.add_argument("--drain-s", type=float, default=1.0, help="time to wait for the last feedback")
    p.add_argument(
        "--to-mongo",
        default=None,
        metavar="COLLECTION",
        help="write the rows into this (scratch, dropped first) collection instead of sending frames",
    )
    p.add_argument("--summary-json", default=None, metavar="PATH", help="also write the summary here")
    add_database_arguments(p)
    # An LCC stand-in: the CURVE server of both sockets, like lcc-sim (DIR/lcc.key_secret, DIR/allow).
    curve_options.add_client_options(p, "lcc", lcc=False)
    curve_options.add_server_options(p)
    p.set_defaults(func=run)


def _fail(message: str) -> int:
    print(f"laserguard replay: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from laserguard.sim.recording import Recording, RecordingError, read_collection, read_csv
    from laserguard.sim.replay import replay_to_collection
    from laserguard.storage.embedded_server import EmbeddedMongoError, mongo_server

    if (args.source is None) == (args.mongo_collection is None):
        return _fail("give exactly one of SOURCE (a CSV file) and --mongo-collection NAME")
    if not args.speed > 0:
        return _fail(f"--speed must be > 0, got {args.speed}")
    if args.hwm < 0 or args.wait_subscribers < 0:
        return _fail(f"--hwm and --wait-subscribers must be >= 0, got {args.hwm} and {args.wait_subscribers}")

    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    needs_database = args.mongo_collection is not None or args.to_mongo is not None
    try:
        if not needs_database:
            return _stream(read_csv(args.source), args, stop)
        import pymongo

        with mongo_server(args.mongo_uri, args.data_dir) as uri:
            client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
                uri, serverSelectionTimeoutMS=5000
            )
            try:
                db = client[args.db]
                recording: Recording = (
                    read_csv(args.source) if args.source else read_collection(db[args.mongo_collection])
                )
                if args.to_mongo is None:
                    return _stream(recording, args, stop)
                if args.mongo_collection == args.to_mongo:
                    return _fail(f"--to-mongo {args.to_mongo!r} would drop the collection being replayed")
                _report(
                    args,
                    recording,
                    replay_to_collection(recording, db[args.to_mongo], args.speed, stop).collection_summary(),
                    f"{args.db}.{args.to_mongo}",
                )
                return 0
            finally:
                client.close()
    except RecordingError as exc:
        return _fail(str(exc))
    except (EmbeddedMongoError, OSError) as exc:
        return _fail(str(exc))


def _stream(recording: Any, args: argparse.Namespace, stop: threading.Event) -> int:
    import zmq

    from laserguard.sim.replay import TelemetryReplay

    feedback = None if args.feedback_endpoint == "none" else args.feedback_endpoint
    binds = [args.telemetry_endpoint] + ([feedback] if feedback is not None else [])
    try:
        security = curve_options.link_security(args, "replay", binds=binds, connects_to=())
    except curve_options.SecurityUsageError as exc:
        return _fail(str(exc))
    try:
        replay = TelemetryReplay(args.telemetry_endpoint, feedback, args.hwm, stop, security=security)
    except zmq.ZMQError as exc:
        return _fail(f"cannot bind {args.telemetry_endpoint} / {args.feedback_endpoint}: {exc}")
    print(f"laserguard replay: boot {replay.boot_id:016x}", file=sys.stderr)
    try:
        if args.wait_subscribers and not replay.wait_for_subscribers(
            args.wait_subscribers, args.wait_timeout_s
        ):
            return _fail(
                f"only {replay.subscriptions} of {args.wait_subscribers} subscriptions reached "
                f"{args.telemetry_endpoint} within {args.wait_timeout_s} s"
            )
        stats = replay.run(recording, args.speed, args.drain_s)
        counts = security.refusals()  # before close: the handshakes refused, by socket and reason
    finally:
        replay.close()
    link = {"curve": security.curve, "refused": counts.refused, "accepted": counts.accepted}
    _report(args, recording, {**stats.summary(), "link_security": link}, args.telemetry_endpoint)
    return 0


def _report(args: argparse.Namespace, recording: Any, summary: dict[str, Any], target: str) -> None:
    summary = {
        "source": args.source or f"{args.db}.{args.mongo_collection}",
        "target": target,
        "speed": args.speed,
        "rows": len(recording),
        "frames": recording.n_frames,
        "recorded_duration_s": recording.duration_s,
        **summary,
    }
    text = json.dumps(summary, indent=2)
    print(text)
    if args.summary_json:
        Path(args.summary_json).write_text(text + "\n")
