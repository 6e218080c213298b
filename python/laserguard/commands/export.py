"""`laserguard export`: sklearn model file (.skops) -> laserguard model file (.lgf)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("export", help="export a fitted sklearn model to a .lgf file")
    p.add_argument(
        "--sklearn",
        required=True,
        metavar="MODEL",
        help="fitted model: .skops (or a pickle with --trust-pickle)",
    )
    p.add_argument("--out", required=True, metavar="MODEL.lgf", help="output laserguard model file")
    p.add_argument(
        "--trust-pickle", action="store_true", help="allow loading a pickle/joblib file (runs its code)"
    )
    p.add_argument(
        "--feature-names", metavar="A,B,...", help="comma-separated feature names (default: from the model)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from laserguard.model.export import export_model
    from laserguard.model.forest import ForestModel
    from laserguard.model.sklearn_io import load_sklearn_model

    try:
        estimator = load_sklearn_model(args.sklearn, trust_pickle=args.trust_pickle)
        names = args.feature_names.split(",") if args.feature_names else None
        version = export_model(estimator, args.out, feature_names=names)
        model = ForestModel.load(args.out)
    except (OSError, TypeError, ValueError) as exc:
        print(f"laserguard export: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {model.n_trees} trees, {model.n_features} features, version {version}")
    return 0
