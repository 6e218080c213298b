"""`laserguard train`: detection engine v2 (fleet forest + per-unit baseline) from labelled laser
CSVs (lxx_data.csv + psu_data.csv, GridSearch over the original grid) or from any sensor table."""

from __future__ import annotations

import argparse
import sys
from typing import Any

HEADLINE = ("accuracy", "fpr", "fnr", "precision", "recall", "roc_auc")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train", help="fit the fleet forest and the per-unit baselines on laser CSVs or any sensor table"
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data-dir", metavar="DIR", help="folder with lxx_data.csv and psu_data.csv")
    source.add_argument(
        "--data", metavar="TABLE.csv", help="any sensor table (with --unit-column, --time-column)"
    )
    p.add_argument("--unit-column", action="append", metavar="COL", help="--data: unit column (repeatable)")
    p.add_argument("--time-column", metavar="COL", help="--data: time column (seconds or datetimes)")
    p.add_argument(
        "--channels", metavar="A,B,...", help="--data: channel columns (default: every other numeric one)"
    )
    p.add_argument("--label-column", metavar="COL", help="--data: 0/1 label; with it the GridSearch runs")
    learn = p.add_mutually_exclusive_group()
    learn.add_argument(
        "--baseline-samples", type=int, help="rows per unit its baseline is learned from (default 50)"
    )
    learn.add_argument("--baseline-s", type=float, help="or seconds per unit")
    p.add_argument("--window", type=int, default=30, help="rolling variability window, rows (default 30)")
    p.add_argument(
        "--confirm-rows",
        type=int,
        default=2,
        help="flag a unit once its score has been below 0 for this many consecutive rows (default 2)",
    )
    p.add_argument(
        "--level-only",
        metavar="A,B,...",
        help="channels shared by several units (a supply rail, a room temperature): judged on their level, "
        "not their variability (default: the laser schema's psu_voltage_v, psu_ripple_mv)",
    )
    p.add_argument(
        "--context-channels",
        metavar="A,B,...|none",
        help="detection engine v3: the channels that set each other channel's expected value (what a unit does "
        "not control); a table's setpoint_a and state columns are context too. Default for --data-dir: "
        "heatsink_temp_c, psu_current_a, psu_temp_c, each channel keeping those that improve its held-out fit "
        "(as the shipped model); channels named here are used by every channel. No context channel for --data "
        "('' says the same). 'none': engine v2",
    )
    p.add_argument(
        "--target-fpr",
        type=float,
        default=0.001,
        help="false-positive rate the thresholds are set for, on the nominal training rows the rules leave "
        "(default 0.001, the simulator target)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (model, card, report, figures)")
    p.add_argument(
        "--seed", type=int, default=0, help="seed for the split, the folds and the forest (default 0)"
    )
    p.add_argument("--n-jobs", type=int, default=1, help="parallel search threads (default 1)")
    p.add_argument("--cv", type=int, default=3, help="cross-validation folds (default 3)")
    p.add_argument(
        "--test-size",
        type=float,
        default=0.25,
        help="held out for the report: this last fraction of each unit's series (default 0.25)",
    )
    p.add_argument(
        "--held-out-units",
        type=float,
        default=0.125,
        metavar="SHARE",
        help="and this share of whole units, never trained on (default 0.125; at least one of 4 or more units)",
    )
    p.add_argument(
        "--scoring-engine",
        choices=("cpp", "sklearn"),
        default="cpp",
        help="score candidates with the exact C++ engine (default) or with sklearn (same results, slower)",
    )
    p.add_argument(
        "--no-shared-fits",
        action="store_true",
        help="fit every candidate from scratch instead of sharing trees across n_estimators/contamination",
    )
    p.add_argument("--mlflow-uri", metavar="URI", help="also log params, metrics and artefacts to MLflow")
    p.set_defaults(func=run)


def _error(message: str) -> int:
    print(f"laserguard train: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from laserguard.offline.detector_training import DEFAULT_BASELINE_SAMPLES, BaselineOptions
    from laserguard.offline.sensor_table import TableError
    from laserguard.offline.table_training import UnlabelledResult
    from laserguard.offline.training import ORIGINAL_PARAM_GRID, grid_size, train
    from laserguard.offline.training_data import SchemaError

    console = Console(stderr=True)
    if args.n_jobs < 1:
        return _error(f"--n-jobs must be >= 1, got {args.n_jobs}")
    if args.data is not None and (not args.unit_column or not args.time_column):
        return _error("--data needs --unit-column (one or more) and --time-column")
    if args.data is None and (args.unit_column or args.time_column or args.channels or args.label_column):
        return _error(
            "--unit-column, --time-column, --channels and --label-column go with --data, not --data-dir"
        )
    try:
        baseline = BaselineOptions(
            baseline_samples=0 if args.baseline_s else (args.baseline_samples or DEFAULT_BASELINE_SAMPLES),
            baseline_s=args.baseline_s or 0.0,
            window=args.window,
            target_fpr=args.target_fpr,
            level_only=tuple(args.level_only.split(",")) if args.level_only else None,
            confirm_rows=args.confirm_rows,
        )
        if args.confirm_rows < 1:
            raise ValueError(f"--confirm-rows must be >= 1, got {args.confirm_rows}")
        if not 0 < args.target_fpr < 1:
            raise ValueError(f"--target-fpr must be in (0, 1), got {args.target_fpr}")
    except ValueError as exc:
        return _error(str(exc))
    context = _context(args)
    if args.data is not None and not args.label_column:
        return _train_unlabelled(args, baseline, context)
    if args.cv < 2:
        return _error(f"--cv must be >= 2, got {args.cv}")
    log_to_mlflow: Any = None
    if args.mlflow_uri:
        try:
            from laserguard.offline.mlflow_logging import log_to_mlflow
        except ImportError as exc:
            return _error(str(exc))

    total = grid_size(ORIGINAL_PARAM_GRID) * args.cv
    columns = (TextColumn("grid search"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("search", total=total)
            search = {
                "n_jobs": args.n_jobs,
                "cv_folds": args.cv,
                "test_size": args.test_size,
                "held_out_unit_share": args.held_out_units,
                "scoring_engine": args.scoring_engine,
                "share_fits": not args.no_shared_fits,
                "on_scored": lambda: progress.advance(task),
            }
            if args.data is not None:
                from laserguard.offline.table_training import train_table

                trained = train_table(
                    **_table_arguments(args, baseline, context), label_column=args.label_column, **search
                )
                assert not isinstance(trained, UnlabelledResult)
                result = trained
            else:
                result = train(
                    args.data_dir, args.out, seed=args.seed, baseline=baseline, context=context, **search
                )
    except (OSError, SchemaError, TableError, ValueError) as exc:
        return _error(str(exc))
    if log_to_mlflow is not None:
        log_to_mlflow(args.mlflow_uri, result)

    m = {k: "n/a" if v is None else f"{v:.4f}" for k, v in result.metrics.items() if k in HEADLINE}
    print(f"model {result.model_version} written to {result.out_dir}")
    print(f"best params {result.best_params} (mean CV precision {result.best_cv_precision:.4f})")
    print(
        f"held-out: accuracy {m['accuracy']}  FPR {m['fpr']}  FNR {m['fnr']}  precision {m['precision']}  "
        f"recall {m['recall']}  ROC-AUC {m['roc_auc']}  (original accuracy 0.806, FPR 0.0165, FNR 0.242)"
    )
    by_stage = result.metrics.get("recall_by_stage") or {}
    if by_stage:
        print(
            "anomalous held-out rows flagged by stage: "
            + ", ".join(f"{k} {v:.4f}" for k, v in by_stage.items() if v is not None)
        )
    names = {"held_out_time": "held-out time (last part of each unit)", "held_out_units": "held-out units"}
    for key, part in (result.metrics.get("parts") or {}).items():
        print(f"{names.get(key, key)}: {_part_line(part)}")
    print(f"search {result.search_seconds:.1f} s, total {result.total_seconds:.1f} s")
    return 0


def _part_line(part: dict[str, Any]) -> str:
    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.3f} %"

    def stages(by: dict[str, float | None]) -> str:
        return ", ".join(f"{k} {pct(v)}" for k, v in by.items())

    return (
        f"{part['normal_rows']} normal rows, FPR {pct(part['fpr'])} ({stages(part['fpr_by_stage'])}); "
        f"{part['anomalous_rows']} anomalous rows, recall {pct(part['recall'])} ({stages(part['recall_by_stage'])})"
    )


def _context(args: argparse.Namespace) -> Any:
    """The v3 context stage the flags ask for, or None (engine v2)."""
    from laserguard.offline.detector_training import LASER_CONTEXT, ContextSpec

    text = args.context_channels
    if text is None:
        # Any table: v3 without context channels (each channel against its unit's calibrated level,
        # the residuals judged together). On TEP it cut v2's false alarms from 65 % to 6 %.
        return LASER_CONTEXT if args.data is None else ContextSpec(())
    if text.strip().lower() == "none":
        return None
    return ContextSpec(tuple(c.strip() for c in text.split(",") if c.strip()))


def _train_unlabelled(args: argparse.Namespace, baseline: Any, context: Any) -> int:
    from laserguard.offline.sensor_table import TableError
    from laserguard.offline.table_training import UnlabelledResult, train_table

    try:
        result = train_table(**_table_arguments(args, baseline, context))
    except (OSError, TableError, ValueError) as exc:
        return _error(str(exc))
    assert isinstance(result, UnlabelledResult)
    held_out = (
        "its own nominal rows"
        if context is None
        else f"the {result.held_out_rows} training rows its fits held out"
    )
    tail = (
        "; too few rows to read that rate from them: the threshold was extrapolated from their tail"
        if result.threshold_from == "tail"
        else ""
    )
    print(
        f"model {result.model_version} written to {result.out_dir} ({result.rows} rows, {result.units} units, "
        f"no labels: default forest); flagged on {held_out}: {result.nominal_fpr:.4f} (target {args.target_fpr}){tail}"
    )
    return 0


def _table_arguments(args: argparse.Namespace, baseline: Any, context: Any) -> dict[str, Any]:
    return {
        "context": context,
        "path": args.data,
        "out_dir": args.out,
        "unit_columns": args.unit_column,
        "time_column": args.time_column,
        "channels": args.channels.split(",") if args.channels else None,
        "baseline": baseline,
        "seed": args.seed,
    }
