"""`laserguard score`: a sensor table through detection engine v2, every row kept in input order.

Rows are processed per unit in time order through the same C++ stage the live detector runs;
the output is the input table plus ``score`` (sklearn's convention: lower is more anomalous,
< 0 flagged), ``is_anomaly`` (0/1; 0 while the unit is still learning its baseline) and
``top_feature`` (what flagged the row: a channel for the fleet forest, ``channel:kind`` for the
unit's own baseline; empty when not flagged).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from laserguard.model.baseline import DEVIATION_KINDS, explanation_name
from laserguard.model.forest import ForestModel
from laserguard.offline.detector_training import score_table
from laserguard.offline.sensor_table import TableError, sensor_table

LASER_UNIT_COLUMNS: Final[tuple[str, ...]] = ("lcc", "unit")
LASER_TIME_COLUMN: Final = "time_s"


@dataclass(frozen=True)
class ScoringSummary:
    rows: int
    units: int
    flagged_rows: int
    learning_rows: int
    flagged_units: int


def table_columns(
    model: ForestModel, unit_columns: Sequence[str] | None, time_column: str | None
) -> tuple[list[str], str]:
    """Flags win; else what the model was trained with (its metadata); else the laser table's."""
    table = model.metadata.get("table", {})
    units = list(unit_columns or table.get("unit_columns") or LASER_UNIT_COLUMNS)
    time = time_column or table.get("time_column") or LASER_TIME_COLUMN
    return units, str(time)


def score_frame(
    model: ForestModel,
    frame: pd.DataFrame,
    *,
    unit_columns: Sequence[str] | None = None,
    time_column: str | None = None,
) -> tuple[pd.DataFrame, ScoringSummary]:
    units, time = table_columns(model, unit_columns, time_column)
    table = sensor_table(frame, unit_columns=units, time_column=time, channels=model.feature_names)
    scores = score_table(model, table, top_k=1)
    names = np.array(
        [""]
        + [
            explanation_name(c, model.feature_names)
            for c in range((1 + len(DEVIATION_KINDS)) * model.n_features)
        ],
        dtype=object,
    )
    top = (
        names[scores.top_code[:, 0].astype(np.int64) + 1]
        if scores.top_code.shape[1]
        else np.full(len(frame), "")
    )
    out = frame.copy()
    out["score"] = table.to_input_order(scores.score)
    out["is_anomaly"] = table.to_input_order(scores.flagged.astype(np.int8))
    out["top_feature"] = table.to_input_order(np.where(scores.flagged, top, ""))
    flagged_units = len(np.unique(table.unit[scores.flagged]))
    summary = ScoringSummary(
        rows=len(frame),
        units=table.n_units,
        flagged_rows=int(scores.flagged.sum()),
        learning_rows=int(scores.learning.sum()),
        flagged_units=flagged_units,
    )
    return out, summary


def score_csv(
    model_path: str | os.PathLike[str],
    data_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    **columns: Any,
) -> ScoringSummary:
    model = ForestModel.load(model_path)
    try:
        frame = pd.read_csv(data_path)
    except (OSError, ValueError) as exc:
        raise TableError(f"cannot read {os.fspath(data_path)!r}: {exc}") from None
    scored, summary = score_frame(model, frame, **columns)
    tmp = f"{os.fspath(out_path)}.tmp"
    scored.to_csv(tmp, index=False)
    os.replace(tmp, out_path)  # a reader never sees half a file
    return summary
