"""`laserguard train --data TABLE.csv`: detection engine v2 on any multichannel sensor table.

Real LCC logs will not have our column names. The table names its unit column(s), its time
column and (optionally) its channels and a 0/1 label column:
- with a label, the rows become a ``TrainingData`` and go through the same path as the laser
  CSVs (the original 81-candidate GridSearch for the forest, held-out report, recall per stage);
- without one, every row is taken as nominal: the forest gets default parameters and both
  stages' thresholds are set for ``target_fpr`` on those rows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from laserguard.model.export import hash_training_data
from laserguard.offline.detector_training import BaselineOptions, ContextSpec, export_detector
from laserguard.offline.sensor_table import SensorTable, TableError, infer_channels, sensor_table
from laserguard.offline.training import MODEL_FILE, TrainingResult, build_pipeline, train_on
from laserguard.offline.training_data import TrainingData
from laserguard.offline.training_split import out_of_fold_fleet_decisions


@dataclass(frozen=True)
class UnlabelledResult:
    out_dir: Path
    model_version: str
    nominal_fpr: float
    rows: int
    units: int
    held_out_rows: int = 0  # the rows nominal_fpr was measured on
    threshold_from: str = "quantile"  # "tail": too few held-out rows to read the target's quantile


def read_table(
    path: str | os.PathLike[str],
    unit_columns: Sequence[str],
    time_column: str,
    channels: Sequence[str] | None,
    label_column: str | None,
) -> tuple[pd.DataFrame, SensorTable]:
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise TableError(f"cannot read {os.fspath(path)!r}: {exc}") from None
    if label_column is not None and label_column not in frame.columns:
        raise TableError(f"label column {label_column!r} not in the table (columns: {list(frame.columns)})")
    if channels is None:
        reserved = {*unit_columns, time_column, label_column}
        channels = infer_channels(frame, reserved)
    return frame, sensor_table(frame, unit_columns=unit_columns, time_column=time_column, channels=channels)


def train_table(
    path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    unit_columns: Sequence[str],
    time_column: str,
    channels: Sequence[str] | None = None,
    label_column: str | None = None,
    baseline: BaselineOptions | None = None,
    seed: int = 0,
    context: ContextSpec | None = None,
    **search: Any,
) -> TrainingResult | UnlabelledResult:
    """Both stages (or, with ``context``, detection engine v3) on any sensor table."""
    baseline = baseline or BaselineOptions()
    frame, table = read_table(path, unit_columns, time_column, channels, label_column)
    columns = {"unit_columns": list(unit_columns), "time_column": time_column}
    if label_column is not None:
        labels = frame[label_column].to_numpy()[table.order]
        if not np.isin(labels, (0, 1)).all():
            bad = sorted(set(np.unique(labels).tolist()) - {0, 1})[:5]
            raise TableError(f"label column {label_column!r} must be 0 or 1, found {bad}")
        label = labels.astype(np.int64)
        data = TrainingData(
            X=table.values,
            label=label,
            fault_type=np.where(label == 1, "anomaly", "none").astype(np.str_),
            severity=label.astype(np.float64),
            feature_names=table.channels,
            unit=table.unit,
            time_s=table.time_s,
            unit_columns=tuple(unit_columns),
            time_column=time_column,
        )
        return train_on(data, out_dir, seed=seed, baseline=baseline, context=context, **search)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pipeline = build_pipeline(seed, "sklearn").fit(table.values)
    data_sha256 = hash_training_data(table.values)
    # The fleet cut from forests that never saw the rows they score (folds of units, or of time).
    fleet_decision = out_of_fold_fleet_decisions(
        table.values, table.unit, lambda X: build_pipeline(seed, "sklearn").fit(X)
    )
    import tempfile

    with tempfile.TemporaryDirectory(prefix="laserguard_train_") as tmp:
        version, fit = export_detector(
            pipeline,
            out / MODEL_FILE,
            table,
            np.ones(len(frame), dtype=bool),
            baseline,
            training_data_sha256=data_sha256,
            extra_metadata={"seed": seed, "table": columns, "labelled": False},
            workdir=tmp,
            fleet_decision=fleet_decision,
            context=context,
        )
    card = {
        "model_version": version,
        "model_file": MODEL_FILE,
        "data": {
            "file": os.fspath(path),
            "rows": len(frame),
            "units": table.n_units,
            "sha256": data_sha256,
            **columns,
        },
        "channels": list(table.channels),
        "forest": "Pipeline(StandardScaler, IsolationForest) with default parameters (no labels: no search)",
        "baseline_stage": fit.report(),
        "detection_engine": "v2" if context is None else "v3",
        "context_channels": None if context is None else list(context.channels),
    }
    (out / "model_card.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return UnlabelledResult(
        out, version, fit.nominal_fpr, len(frame), table.n_units, fit.nominal_rows, fit.threshold_from
    )
