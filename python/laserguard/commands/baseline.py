"""`laserguard baseline`: list the units' baselines of a detector, or reset one after maintenance."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("baseline", help="list per-unit baselines or reset one (after maintenance)")
    actions = p.add_subparsers(dest="baseline_action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="every unit's baseline state as `detect` saved it")
    listing.add_argument("--lcc", type=int, help="only this LCC")
    reset = actions.add_parser(
        "reset", help="make a unit learn a new baseline (applied by the running detect, or at its next start)"
    )
    reset.add_argument("--lcc", type=int, required=True)
    reset.add_argument("--unit", type=int, help="the unit (default: every unit of the LCC)")
    for sub in (listing, reset):
        sub.add_argument(
            "--state-dir",
            default=None,
            metavar="DIR",
            help="detect's --baseline-state-dir (default: the same default as detect)",
        )
    listing.set_defaults(func=run_list)
    reset.set_defaults(func=run_reset)


def _state_dir(args: argparse.Namespace) -> str:
    from laserguard.live.baseline_store import default_state_dir

    return str(args.state_dir or default_state_dir())


def run_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from laserguard.live.baseline_store import pending_resets, read_saved_baselines

    state_dir = _state_dir(args)
    try:
        saved = read_saved_baselines(state_dir, time.time())
    except (OSError, ValueError) as exc:
        print(f"laserguard baseline list: error: {exc}", file=sys.stderr)
        return 1
    pending = {(lcc, unit) for lcc, unit, _ in pending_resets(state_dir)}
    table = Table(title=f"unit baselines in {state_dir}")
    for column in ("LCC", "unit", "state", "rows learned", "learned", "reset pending"):
        table.add_column(column, justify="right" if column in ("LCC", "unit", "rows learned") else "left")
    shown = 0
    for lcc, units in sorted(saved.items()):
        if args.lcc is not None and lcc != args.lcc:
            continue
        for u in units:
            age = "—" if u.age_s is None else f"{u.age_s / 3600:.1f} h ago"
            reset = "yes" if (lcc, u.unit) in pending or (lcc, None) in pending else ""
            table.add_row(str(lcc), str(u.unit), u.phase, str(u.rows_learned), age, reset)
            shown += 1
    if shown == 0:
        print(f"no saved baselines in {state_dir}" + (f" for LCC {args.lcc}" if args.lcc is not None else ""))
        return 0
    Console().print(table)
    return 0


def run_reset(args: argparse.Namespace) -> int:
    from laserguard.live.baseline_store import request_reset

    if args.lcc < 0 or (args.unit is not None and args.unit < 0):
        print(
            f"laserguard baseline reset: error: --lcc and --unit must be >= 0, got {args.lcc} and {args.unit}",
            file=sys.stderr,
        )
        return 2
    path = request_reset(_state_dir(args), args.lcc, args.unit)
    what = f"unit {args.unit}" if args.unit is not None else "every unit"
    print(
        f"reset of LCC {args.lcc} {what} requested ({path}); detect applies it within a second, or at its next start"
    )
    return 0
