"""`laserguard demo`: run the whole loop on the embedded defaults and summarise it."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from laserguard.storage.database_options import add_database_arguments

DEMO_DATABASE = "laserguard_demo"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "demo",
        help="run lcc-sim -> detect -> store -> exporter with a fault mix and print a summary",
        description="Starts the database (embedded unless --mongo-uri), store, exporter, detect and lcc-sim, "
        "shows live progress, stops everything after --duration-s or Ctrl-C and prints a summary. "
        f"The demo writes into the scratch database {DEMO_DATABASE!r} (dropped at start).",
    )
    p.add_argument("--duration-s", type=float, default=30.0, help="how long lcc-sim runs (default 30)")
    p.add_argument("--rate-hz", type=float, default=10.0, help="frames per second per LCC (default 10)")
    p.add_argument("--lccs", type=int, default=2)
    p.add_argument("--units", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fault-mix", default="default", help="lcc-sim fault mix: none, default, all")
    p.add_argument("--faults", default=None, metavar="SPEC.json", help="lcc-sim declarative fault spec")
    p.add_argument(
        "--profile",
        default="lab",
        help="lcc-sim operating profile: steady, lab, production (default lab: setpoint steps and "
        "ramps, power cycles, TEC and air changes, which engine v3 judges in context)",
    )
    p.add_argument("--model", default=None, help="model file (default: the shipped default model)")
    p.add_argument("--telemetry-endpoint", default="tcp://127.0.0.1:5556")
    p.add_argument("--feedback-endpoint", default="tcp://127.0.0.1:5555")
    p.add_argument("--observer-endpoint", default="tcp://127.0.0.1:5557")
    p.add_argument("--detect-metrics-port", type=int, default=9101)
    p.add_argument("--store-metrics-port", type=int, default=9102)
    p.add_argument("--exporter-port", type=int, default=9216)
    p.add_argument(
        "--dashboard-port", type=int, default=8050, help="live dashboard port (default 8050; 0: none)"
    )
    p.add_argument(
        "--roundtrip-port",
        type=int,
        default=9103,
        help="round-trip latency probe metrics port (default 9103; 0: none)",
    )
    p.add_argument(
        "--summary-json",
        default=None,
        metavar="PATH",
        help="write the full JSON summary here (default: summary.json in the demo's log folder)",
    )
    p.add_argument("--no-progress", action="store_true", help="no live progress display")
    p.add_argument(
        "--no-curve",
        action="store_true",
        help="plain ZeroMQ on the link (default: throw-away CurveZMQ keys in the run folder, CURVE on "
        "every socket; docs/operations.md, Security)",
    )
    add_database_arguments(p)
    p.set_defaults(func=run, db=DEMO_DATABASE)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from laserguard.dashboard.metrics_scrape import scrape_totals
    from laserguard.demo.runner import (
        ComponentDied,
        Demo,
        DemoConfig,
        build_summary,
        make_workdir,
        reset_database,
        terminate_on_signals,
    )
    from laserguard.demo.summary import summary_table
    from laserguard.storage.embedded_server import EmbeddedMongoError, mongo_server

    console = Console(stderr=True)
    if args.duration_s <= 0 or args.rate_hz <= 0:
        console.print(
            "laserguard demo: error: --duration-s and --rate-hz must be > 0, "
            f"got {args.duration_s} and {args.rate_hz}"
        )
        return 2
    terminate_on_signals()
    workdir = make_workdir()
    curve_keys = None
    if not args.no_curve:
        from laserguard.wire.curve_keys import write_key_set

        curve_keys = workdir / "keys"  # throw-away: a fresh run folder every time
        write_key_set(curve_keys)
    statuses: dict[str, int] = {}
    failure: str | None = None
    interrupted = False
    try:
        with mongo_server(args.mongo_uri, args.data_dir) as uri:
            reset_database(uri, args.db)
            config = DemoConfig(
                duration_s=args.duration_s,
                rate_hz=args.rate_hz,
                lccs=args.lccs,
                units=args.units,
                seed=args.seed,
                fault_mix=args.fault_mix,
                profile=args.profile,
                mongo_uri=uri,
                db=args.db,
                telemetry_endpoint=args.telemetry_endpoint,
                feedback_endpoint=args.feedback_endpoint,
                observer_endpoint=args.observer_endpoint,
                detect_metrics_port=args.detect_metrics_port,
                store_metrics_port=args.store_metrics_port,
                exporter_port=args.exporter_port,
                model=args.model,
                workdir=workdir,
                extra_sim_args=["--faults", args.faults] if args.faults else [],
                dashboard_port=args.dashboard_port,
                roundtrip_port=args.roundtrip_port,
                curve_keys=curve_keys,
            )
            demo = Demo(config)
            final_detect: dict[str, float] = {}
            try:
                console.print(f"[bold]laserguard demo[/] database {uri} / {args.db}, logs in {workdir}")
                console.print(
                    f"CurveZMQ on every link socket, throw-away keys in {curve_keys}"
                    if curve_keys is not None
                    else "CurveZMQ off (--no-curve): plain ZeroMQ on loopback"
                )
                if args.dashboard_port:
                    console.print(f"dashboard: http://127.0.0.1:{args.dashboard_port}/")
                demo.start()
                _watch(demo, console, args)
                expected = args.lccs * args.units * int(args.duration_s * args.rate_hz)
                demo.drain(expected)
                final_detect = scrape_totals(demo.detect_url) or {}
            except KeyboardInterrupt:
                interrupted = True
                console.print("interrupted: stopping components")
                final_detect = scrape_totals(demo.detect_url) or {}
            except (ComponentDied, TimeoutError, FileNotFoundError) as exc:
                failure = str(exc)
                final_detect = scrape_totals(demo.detect_url) or {}
            finally:
                statuses = demo.stop(interrupt_sim=interrupted)
            summary = build_summary(demo, final_detect, statuses, time.monotonic() - demo.started)
    except (EmbeddedMongoError, OSError) as exc:
        console.print(f"laserguard demo: error: {exc}")
        return 2

    summary_path = Path(args.summary_json) if args.summary_json else workdir / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    Console().print(summary_table(summary))
    print(f"full summary (JSON): {summary_path}")  # one plain line: never wrapped by the table
    if failure:
        console.print(f"[red]a component failed:[/] {failure}")
        return 1
    if any(status != 0 for status in statuses.values()):
        console.print(f"[red]component exit statuses:[/] {statuses}")
        return 1
    return 0


def _watch(demo: Any, console: Any, args: argparse.Namespace) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = [
        TextColumn("[bold]lcc-sim"),
        BarColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
    ]
    with Progress(*columns, console=console, disable=args.no_progress, transient=False) as progress:
        task = progress.add_task("run", total=args.duration_s, status="starting")
        while demo.sim_running():
            demo.check_alive()
            p = demo.progress()
            status = (
                f"scored {p['frames_scored']:.0f}  anomalous {p['anomalous_unit_samples']:.0f}  "
                f"gaps {p['frame_gaps']:.0f}  inference {p['inference_mean_us']:.0f} µs  "
                f"stored {p['unit_samples_stored']:.0f}  backlog {p['spool_backlog']:.0f}"
            )
            progress.update(
                task, completed=min(time.monotonic() - demo.started, args.duration_s), status=status
            )
            time.sleep(0.5)
        demo.check_alive()
        progress.update(task, completed=args.duration_s, status="draining")
