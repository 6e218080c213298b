"""Rebuild the shipped default model (models/default.lgf, default.card.json, default.card.md), bit for bit.

    python models/make_default_model.py [--out-dir DIR]

Detection engine v2 (model format 2.0): the fleet stage is Pipeline(StandardScaler,
IsolationForest) trained on 30 minutes of simulated nominal telemetry (2 LCCs x 32 units at
1 Hz, seed 1, no faults) with fixed seeds; the per-unit baseline stage is fitted on the same
rows (laserguard.offline.detector_training, OPTIONS below), so the same laserguard + sklearn
versions reproduce the same files.

The card also carries the model's detection quality, measured exactly as
benchmarks/detection_quality.py does (laserguard.offline.detection_quality.measure_detector: every
simulator fault type at severities 0.1-1, at the model's own thresholds). Those metrics live in
the card files only; the card embedded in default.lgf is the training record (data, params),
so the model file and its version do not change when the benchmark is refined.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from sklearn.ensemble import IsolationForest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import laserguard
from laserguard import sim
from laserguard.offline import detection_quality as dq
from laserguard.offline.detector_training import BaselineOptions, export_detector
from laserguard.offline.sensor_table import sensor_table
from laserguard.wire.codec import CHANNELS

HERE = Path(__file__).resolve().parent
PARAMS = {"n_estimators": 200, "max_samples": 256, "contamination": 0.01, "random_state": 0}
DATA = {"hours": 0.5, "rate_hz": 1.0, "seed": 1, "fault_mix": "none"}
# Baseline of 50 rows (5 s at the live 10 Hz, 50 s at 1 Hz), FPR budget 0.1 % of unit-samples.
OPTIONS = BaselineOptions(baseline_samples=50, window=30, mean_tau_s=24 * 3600.0, target_fpr=0.001)
COMMAND = "python models/make_default_model.py"


def detection_quality_summary(model_path: Path) -> dict[str, Any]:
    """The card's detection-quality section for the model at `model_path`."""
    metrics = dq.measure_detector(laserguard.ForestModel.load(model_path), dq.sweep_frame())
    per_type = {
        kind: {
            "recall_at_moderate_severity": v["recall_moderate"],
            "recall_by_severity": v["recall_by_severity"],
            "min_severity_with_recall_0.9": v["min_severity_at_recall"],
            "median_time_to_detect_s": v["median_time_to_detect_s_moderate"],
            "events_detected": f"{v['events_moderate_detected']}/{v['events_moderate']}",
        }
        for kind, v in metrics["per_fault_type"].items()
    }
    return _rounded(
        {
            "benchmark": "python benchmarks/detection_quality.py (laserguard.offline.detection_quality)",
            "test_set": {**dq.SWEEP_SET, "severities": list(dq.DEFAULT_SEVERITIES), "rows": metrics["rows"]},
            "thresholds": "the model's own (fitted for FPR <= 0.001 on its nominal training rows)",
            "rows_learning_baseline": metrics["learning_rows"],
            "target": f"FNR <= {dq.TARGET_MAX_FNR} at FPR <= {dq.TARGET_MAX_FPR}, severity {dq.MODERATE_SEVERITY}",
            "target_met": dq.meets_target(metrics),
            "fpr": metrics["fpr"],
            "fnr_at_moderate_severity": metrics["fnr_moderate"],
            "fnr_all_severities": metrics["fnr_all"],
            "fnr_by_severity": metrics["fnr_by_severity"],
            "recall_by_stage": metrics["recall_by_stage"],
            "fpr_by_stage": metrics["fpr_by_stage"],
            "per_fault_type": per_type,
        }
    )


def _rounded(value: Any) -> Any:
    """Floats to 6 decimals, so a 1-ulp difference in a score (CPU-dependent pow) cannot change the card."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def card_markdown(card: dict[str, Any]) -> str:
    data, quality = card["training_data"], card["detection_quality"]
    lines = [
        f"# Model card: laserguard default model {card['model_version']}",
        "",
        f"- Rebuild bit for bit: `{COMMAND}` (scikit-learn {card['sklearn_version']}, "
        f"laserguard {card['laserguard_version']})",
        "- Estimator: `Pipeline([('scaler', StandardScaler()), ('model', IsolationForest())])`, "
        f"parameters `{json.dumps(card['params'], sort_keys=True)}`",
        f"- Features: {', '.join(card['feature_names'])}",
        f"- Training data: `sim.generate({data['hours']}, rate_hz={data['rate_hz']}, seed={data['seed']}, "
        f"fault_mix='{data['fault_mix']}')`, {data['rows']} rows (2 LCCs x 32 units), no faults",
        f"- Training data sha256 (float64 matrix): `{data['sha256']}`",
        "",
        "## Detection quality",
        "",
        f"Measured by `{quality['benchmark']}`: test set `{json.dumps(quality['test_set'])}`, "
        f"at {quality['thresholds']}; rows of units still learning their baseline "
        f"({quality['rows_learning_baseline']}) are not judged.",
        "",
        f"- Target ({quality['target']}): **{'met' if quality['target_met'] else 'not met'}**",
        f"- FPR on the test set's normal rows: {_fmt(quality['fpr'])}",
        f"- FNR at severity 0.5: {_fmt(quality['fnr_at_moderate_severity'])}; "
        f"all severities: {_fmt(quality['fnr_all_severities'])}",
        "- FNR by severity: " + ", ".join(f"{s}: {_fmt(v)}" for s, v in quality["fnr_by_severity"].items()),
        "- Fault samples flagged by stage: "
        + ", ".join(f"{s} {_fmt(v)}" for s, v in quality["recall_by_stage"].items())
        + "; false positives by stage: "
        + ", ".join(f"{s} {_fmt(v)}" for s, v in quality["fpr_by_stage"].items()),
        "",
        "| fault type | recall at s = 0.5 | min severity with recall ≥ 0.9 | median time to detect (s = 0.5) |",
        "|---|---|---|---|",
    ]
    for kind, v in quality["per_fault_type"].items():
        ttd = v["median_time_to_detect_s"]
        lines.append(
            f"| {kind} | {_fmt(v['recall_at_moderate_severity'])} | {_fmt(v['min_severity_with_recall_0.9'])} | "
            f"{'never' if ttd is None else f'{ttd:.0f} s'} ({v['events_detected']} events) |"
        )
    b = card["baseline_stage"]
    lines += [
        "",
        "## Baseline stage",
        "",
        f"Options `{json.dumps(b['options'], sort_keys=True)}`; fitted threshold {b['threshold']:.4f}, "
        f"fleet cut {b['fleet_cut']:.5f}; FPR on the nominal training rows {b['nominal_fpr']:.4f}. "
        "What the stage computes and why: docs/detection.md.",
        "",
    ]
    return "\n".join(lines)


def build(out_dir: Path) -> str:
    """Train, export and write the three files into `out_dir`; returns the model version."""
    frame = sim.generate(DATA["hours"], rate_hz=DATA["rate_hz"], seed=DATA["seed"], fault_mix="none")
    X = frame[list(CHANNELS)].to_numpy(np.float64)
    pipeline = Pipeline([("scaler", StandardScaler()), ("model", IsolationForest(**PARAMS))]).fit(X)
    data_hash = laserguard.hash_training_data(X)
    card: dict[str, Any] = {"training_data": {**DATA, "rows": len(X), "sha256": data_hash}, "params": PARAMS}
    table = sensor_table(frame, unit_columns=["lcc", "unit"], time_column="time_s", channels=CHANNELS)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / "default.lgf"
    # Written to a temporary name first: the model file is only replaced once everything succeeded.
    with tempfile.TemporaryDirectory(prefix=".default_", dir=out_dir) as tmp:
        draft = Path(tmp) / "default.lgf"
        version, fit = export_detector(
            pipeline,
            draft,
            table,
            np.ones(len(X), dtype=bool),
            OPTIONS,
            training_data_sha256=data_hash,
            extra_metadata={"card": card},
            workdir=tmp,
        )
        quality = detection_quality_summary(draft)
        draft.replace(model_path)
    card.update(
        model_version=version,
        feature_names=list(CHANNELS),
        sklearn_version=sklearn.__version__,
        laserguard_version=laserguard.__version__,
        detection_quality=quality,
        baseline_stage=_rounded(
            {
                "options": vars(OPTIONS),
                "threshold": fit.params.threshold,
                "fleet_cut": fit.params.fleet_cut,
                "nominal_fpr": fit.nominal_fpr,
            }
        ),
    )
    (out_dir / "default.card.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    (out_dir / "default.card.md").write_text(card_markdown(card))
    return version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out-dir", type=Path, default=HERE, help="where to write (default: models/)")
    args = parser.parse_args(argv)
    version = build(args.out_dir)
    print(f"wrote {args.out_dir / 'default.lgf'} and its card (version {version})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
