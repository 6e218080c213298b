"""`laserguard alarms`: list unit alarms and acknowledge them (operators' side of the alarm state)."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from laserguard.storage.database_options import add_database_arguments, database_server


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("alarms", help="list unit alarms or acknowledge one")
    actions = p.add_subparsers(dest="alarms_action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="show alarms, newest first")
    add_database_arguments(listing)
    listing.add_argument("--all", action="store_true", help="include cleared alarms (default: active only)")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(func=run_list)
    ack = actions.add_parser("ack", help="acknowledge an alarm (it stays active until it clears)")
    add_database_arguments(ack)
    ack.add_argument(
        "event_id",
        metavar="EVENT_ID",
        help='e.g. "1:6:5eedb00700000001:1234" (lcc:unit:boot:raised seq), as `alarms list` shows it',
    )
    ack.add_argument("--by", default=None, help="who acknowledges (default: the login name)")
    ack.set_defaults(func=run_ack)


def _database(uri: str, db_name: str) -> Any:
    import pymongo

    return pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)[db_name]


def run_list(args: argparse.Namespace) -> int:
    from pymongo.errors import PyMongoError
    from rich.console import Console
    from rich.table import Table

    from laserguard.storage.embedded_server import EmbeddedMongoError
    from laserguard.storage.schema import ALARM_ACTIVE, ANOMALY_EVENTS

    try:
        with database_server(args) as uri:
            query = {} if args.all else {"state": ALARM_ACTIVE}
            events = list(
                _database(uri, args.db)[ANOMALY_EVENTS].find(query).sort("raised_at", -1).limit(args.limit)
            )
    except (EmbeddedMongoError, PyMongoError, OSError) as exc:
        print(f"laserguard alarms: error: {exc}", file=sys.stderr)
        return 2
    table = Table(title=f"{'all' if args.all else 'active'} alarms ({len(events)})")
    for column in ("event", "lcc", "unit", "state", "raised at (UTC)", "score", "model", "acknowledged by"):
        # The event id is what `alarms ack` takes: never wrapped, so it can be copied whole.
        table.add_column(column, no_wrap=column == "event")
    for e in events:
        raised = f"{e['raised_at']:%Y-%m-%d %H:%M:%S}"
        table.add_row(
            str(e["_id"]), str(e["lcc"]), str(e["unit"]), str(e["state"]), raised,
            f"{e['score']:.4f}", str(e.get("model_version", "")), str(e.get("acknowledged_by") or ""),
        )  # fmt: skip
    Console().print(table)
    return 0


def run_ack(args: argparse.Namespace) -> int:
    from pymongo.errors import PyMongoError

    from laserguard.storage.alarms import acknowledge_alarm
    from laserguard.storage.embedded_server import EmbeddedMongoError

    by = args.by or getpass.getuser()
    try:
        with database_server(args) as uri:
            found = acknowledge_alarm(_database(uri, args.db), args.event_id, by)
    except (EmbeddedMongoError, PyMongoError, OSError) as exc:
        print(f"laserguard alarms: error: {exc}", file=sys.stderr)
        return 2
    if not found:
        print(f"laserguard alarms: no alarm with id {args.event_id!r}", file=sys.stderr)
        return 1
    print(f"acknowledged {args.event_id} by {by}")
    return 0
