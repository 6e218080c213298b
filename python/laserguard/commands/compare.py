"""`laserguard compare`: parity and speed of a .lgf model against its sklearn original."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

PARITY_TOLERANCE = 1e-12


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("compare", help="check a .lgf model against sklearn on a data file")
    p.add_argument("--model", required=True, metavar="MODEL.lgf")
    p.add_argument(
        "--sklearn", required=True, metavar="MODEL", help=".skops (or a pickle with --trust-pickle)"
    )
    p.add_argument("--data", required=True, metavar="FILE", help="CSV, .npy, .npz or .mat")
    p.add_argument(
        "--trust-pickle", action="store_true", help="allow loading a pickle/joblib file (runs its code)"
    )
    p.add_argument("--repeat", type=int, default=5, help="timing repetitions (median reported)")
    p.set_defaults(func=run)


def median_seconds(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from laserguard.model.datafiles import load_matrix
    from laserguard.model.forest import ForestModel
    from laserguard.model.sklearn_io import load_sklearn_model

    try:
        model = ForestModel.load(args.model)
        estimator = load_sklearn_model(args.sklearn, trust_pickle=args.trust_pickle)
        X = load_matrix(args.data, model.feature_names)
        ours = model.decision_function(X)
        theirs = estimator.decision_function(X)
    except (OSError, TypeError, ValueError) as exc:
        print(f"laserguard compare: error: {exc}", file=sys.stderr)
        return 2

    delta = float(np.max(np.abs(ours - theirs))) if len(X) else 0.0
    bitwise = int(np.sum(ours.view(np.int64) == theirs.view(np.int64)))
    labels_ours = model.predict(X)
    labels_theirs = estimator.predict(X)
    agree = int(np.sum(labels_ours == labels_theirs))
    t_ours = median_seconds(lambda: model.decision_function(X), args.repeat)
    t_theirs = median_seconds(lambda: estimator.decision_function(X), args.repeat)
    ok = delta <= PARITY_TOLERANCE and agree == len(X)

    table = Table(title=f"laserguard vs sklearn on {args.data}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("rows", str(len(X)))
    table.add_row("max |delta| decision_function", f"{delta:.3e}")
    table.add_row("bitwise identical", f"{bitwise} / {len(X)}")
    table.add_row("label agreement", f"{agree} / {len(X)}")
    table.add_row("sklearn median (ms)", f"{t_theirs * 1e3:.3f}")
    table.add_row("laserguard median (ms)", f"{t_ours * 1e3:.3f}")
    table.add_row("speed ratio (sklearn / laserguard)", f"{t_theirs / t_ours:.1f}x")
    table.add_row("parity", "PASS" if ok else "FAIL")
    Console().print(table)
    return 0 if ok else 1
