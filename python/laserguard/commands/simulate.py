"""`laserguard simulate`: write a labelled historical dataset from the C++ laser simulator."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("simulate", help="generate labelled laser telemetry (CSV) for training")
    p.add_argument("--hours", type=float, required=True, help="simulated time span")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (created if missing)")
    p.add_argument("--rate-hz", type=float, default=1.0, help="samples per second per unit (default 1)")
    p.add_argument("--lccs", type=int, default=2, help="number of LCCs (default 2)")
    p.add_argument("--units", type=int, default=32, help="laser units per LCC (default 32)")
    p.add_argument("--units-per-psu", type=int, default=16, help="units sharing a power supply (default 16)")
    p.add_argument("--first-lcc-id", type=int, default=1, help="id of the first LCC (default 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same data)")
    p.add_argument("--faults", metavar="SPEC.json", help="declarative fault spec (docs/simulator.md)")
    p.add_argument("--fault-mix", default="default", help="random fault mix: none, default, all")
    p.add_argument(
        "--profile",
        default="steady",
        help="operating profile: steady (no changes), lab, production (docs/simulator.md; default steady)",
    )
    p.add_argument(
        "--schedule",
        metavar="SCHEDULE.json",
        help="scheduled operating changes for an exact scenario (docs/simulator.md)",
    )
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a physics or operating-profile parameter (repeatable; see laserguard.sim."
        "laser_param_defaults and operating_profile_defaults)",
    )
    p.add_argument(
        "--raw-out",
        metavar="DIR",
        help="also write raw LCC log files with field-log defects there (docs/raw-format.md)",
    )
    p.add_argument(
        "--start",
        default="2026-01-01T00:00:00Z",
        help="UTC time of the first sample in the raw logs (default 2026-01-01T00:00:00Z)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from laserguard.sim import generate

    start = _raw_start(args.start) if args.raw_out else None
    if args.raw_out and start is None:
        print(f"laserguard simulate: error: --start {args.start!r} is not an ISO-8601 time", file=sys.stderr)
        return 2
    try:
        params = {}
        for item in args.param:
            name, sep, text = item.partition("=")
            if not sep:
                raise ValueError(f"--param expects NAME=VALUE, got {item!r}")
            params[name] = float(text)
        frame = generate(
            args.hours,
            rate_hz=args.rate_hz,
            lccs=args.lccs,
            units=args.units,
            units_per_psu=args.units_per_psu,
            seed=args.seed,
            faults=args.faults,
            fault_mix=args.fault_mix,
            first_lcc_id=args.first_lcc_id,
            params=params,
            profile=args.profile,
            schedule=args.schedule,
        )
    except (OSError, ValueError) as exc:
        print(f"laserguard simulate: error: {exc}", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    data_path = os.path.join(args.out, "telemetry.csv")
    frame.to_csv(data_path, index=False)
    meta = {
        "rows": len(frame),
        "hours": args.hours,
        "rate_hz": args.rate_hz,
        "lccs": args.lccs,
        "units": args.units,
        "seed": args.seed,
        "fault_mix": args.fault_mix,
        "faults": frame.attrs["faults"],
        "anomalous_rows": int(frame["label"].sum()),
        "profile": args.profile,
        "schedule_file": args.schedule,
        "schedule": frame.attrs["schedule"],
    }
    with open(os.path.join(args.out, "dataset.json"), "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=2)
    print(
        f"wrote {data_path}: {len(frame)} rows, {meta['anomalous_rows']} labelled anomalous, "
        f"{len(meta['schedule'])} operating changes ({args.profile})"
    )
    if args.raw_out and start is not None:
        _write_raw(frame, args.raw_out, start, args.seed)
    return 0


def _raw_start(text: str) -> datetime | None:
    """The --start time (naive means UTC), or None if it is not ISO-8601."""
    try:
        start = datetime.fromisoformat(text)
    except ValueError:
        return None
    return start if start.tzinfo is not None else start.replace(tzinfo=UTC)


def _write_raw(frame: Any, out: str, start: datetime, seed: int) -> None:
    from laserguard.offline.raw_writer import write_raw_logs

    truth = write_raw_logs(frame, out, start=start, seed=seed)
    print(
        f"wrote {len(truth['files'])} raw log files to {out} ({truth['totals']['rows_written']} rows; "
        f"injected defects in {os.path.join(out, 'injected_defects.json')})"
    )
