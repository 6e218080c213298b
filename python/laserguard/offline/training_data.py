"""The training CSV contract (docs/data-contracts.md): lxx_data.csv joined with psu_data.csv."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from laserguard.offline.sensor_table import TableError, time_seconds
from laserguard.wire.codec import UNIT_STATES

LXX_FILE = "lxx_data.csv"
PSU_FILE = "psu_data.csv"

KEY_COLUMNS = ("time", "lcc", "unit")
UNIT_CHANNELS = (
    "drive_current_a",
    "forward_voltage_v",
    "optical_power_w",
    "monitor_pd_ma",
    "diode_temp_c",
    "heatsink_temp_c",
    "tec_current_a",
)
PSU_CHANNELS = ("psu_voltage_v", "psu_current_a", "psu_temp_c", "psu_ripple_mv")
# The model's input columns, in this order (the .lgf stores them as feature names).
FEATURE_COLUMNS = UNIT_CHANNELS + PSU_CHANNELS
LABEL_COLUMNS = ("fault_type", "severity", "label")
LXX_COLUMNS = KEY_COLUMNS + UNIT_CHANNELS + LABEL_COLUMNS  # required
# Optional: the unit's commanded drive current (A) and its state name (one of UNIT_STATES); an
# empty cell is unknown (data recorded before units reported them). Carried, never a feature.
CONTEXT_COLUMNS = ("setpoint_a", "state")
# What `laserguard analyze` writes.
LXX_EXPORT_COLUMNS = KEY_COLUMNS + UNIT_CHANNELS + CONTEXT_COLUMNS + LABEL_COLUMNS
UNKNOWN_STATE = ""  # TrainingData.state of a row whose state is not known
# psu_data.csv is keyed by (time, lcc), or by (time, lcc, unit) when it has a unit column.
PSU_COLUMNS = ("time", "lcc", *PSU_CHANNELS)
NORMAL_FAULT_TYPE = "none"


class SchemaError(ValueError):
    """A training CSV does not follow docs/data-contracts.md."""


@dataclass(frozen=True)
class TrainingData:
    """Rows sorted by (time, lcc, unit); X columns are FEATURE_COLUMNS."""

    X: npt.NDArray[np.float64]
    label: npt.NDArray[np.int64]  # 1 anomaly, 0 normal
    fault_type: npt.NDArray[np.str_]
    severity: npt.NDArray[np.float64]
    feature_names: tuple[str, ...] = FEATURE_COLUMNS
    # Per row, for the per-unit baseline stage: the unit (index over the unit columns' values)
    # and the time in seconds; rows are in time order.
    unit: npt.NDArray[np.uint32] | None = None
    time_s: npt.NDArray[np.float64] | None = None
    unit_columns: tuple[str, ...] = ("lcc", "unit")
    time_column: str = "time"
    # Per row, when lxx_data.csv has the context columns: setpoint in A (NaN unknown) and state
    # name (UNKNOWN_STATE unknown).
    setpoint_a: npt.NDArray[np.float64] | None = None
    state: npt.NDArray[np.str_] | None = None

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def subset(self, rows: npt.NDArray[np.intp]) -> TrainingData:
        return TrainingData(
            np.ascontiguousarray(self.X[rows]),
            self.label[rows],
            self.fault_type[rows],
            self.severity[rows],
            self.feature_names,
            None if self.unit is None else self.unit[rows],
            None if self.time_s is None else self.time_s[rows],
            self.unit_columns,
            self.time_column,
            None if self.setpoint_a is None else self.setpoint_a[rows],
            None if self.state is None else self.state[rows],
        )


def _require_columns(frame: Any, required: tuple[str, ...], path: Path) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise SchemaError(f"{str(path)!r}: missing column(s) {missing}; it has {list(frame.columns)}")


def _read_csv(path: Path) -> Any:
    import pandas as pd

    if not path.is_file():
        raise FileNotFoundError(f"training data file not found: {str(path)!r}")
    # Keys stay text so the join compares exactly what was written.
    return pd.read_csv(path, dtype={"time": str, "lcc": str, "unit": str}, keep_default_na=True)


def _numeric(frame: Any, column: str, path: Path) -> npt.NDArray[np.float64]:
    import pandas as pd

    values = pd.to_numeric(frame[column], errors="coerce")
    # Empty cells are NaN (a sensor dropout is data); text that is not a number is an error.
    bad = values.isna() & frame[column].notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise SchemaError(
            f"{str(path)!r}: column {column!r} has non-numeric value {frame[column].iloc[row]!r} "
            f"(data row {row + 1})"
        )
    return np.asarray(values.to_numpy(), dtype=np.float64)


def _check_unique(frame: Any, keys: list[str], path: Path) -> None:
    duplicated = frame.duplicated(subset=keys, keep="first")
    if duplicated.any():
        row = int(np.flatnonzero(duplicated.to_numpy())[0])
        key = {k: frame[k].iloc[row] for k in keys}
        raise SchemaError(f"{str(path)!r}: duplicate key {key} (data row {row + 1})")


def _states(frame: Any, path: Path) -> npt.NDArray[np.str_]:
    """The state column as names; empty is unknown, any other text is an error naming it."""
    text = frame["state"].fillna(UNKNOWN_STATE).astype(str).str.strip()
    bad = ~text.isin((*UNIT_STATES, UNKNOWN_STATE))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise SchemaError(
            f"{str(path)!r}: column 'state' has unknown state {frame['state'].iloc[row]!r} "
            f"(data row {row + 1}); one of {', '.join(UNIT_STATES)} or empty"
        )
    return np.asarray(text.to_numpy(dtype=str), dtype=np.str_)


def load_training_data(data_dir: str | os.PathLike[str]) -> TrainingData:
    """Read lxx_data.csv and psu_data.csv from `data_dir`, join them and validate the schema."""
    folder = Path(data_dir)
    lxx_path, psu_path = folder / LXX_FILE, folder / PSU_FILE
    lxx = _read_csv(lxx_path)
    psu = _read_csv(psu_path)
    _require_columns(lxx, LXX_COLUMNS, lxx_path)
    _require_columns(psu, PSU_COLUMNS, psu_path)
    clash = sorted(set(PSU_CHANNELS) & set(lxx.columns))
    if clash:
        raise SchemaError(f"{str(lxx_path)!r}: column(s) {clash} belong in {PSU_FILE}")

    join_keys = ["time", "lcc", "unit"] if "unit" in psu.columns else ["time", "lcc"]
    _check_unique(lxx, list(KEY_COLUMNS), lxx_path)
    _check_unique(psu, join_keys, psu_path)
    joined = lxx.merge(psu[[*join_keys, *PSU_CHANNELS]], on=join_keys, how="left", indicator=True)
    unmatched = joined["_merge"] != "both"
    if unmatched.any():
        row = int(np.flatnonzero(unmatched.to_numpy())[0])
        key = {k: joined[k].iloc[row] for k in join_keys}
        raise SchemaError(
            f"{int(unmatched.sum())} row(s) of {str(lxx_path)!r} have no {PSU_FILE} row, first {key}"
        )
    # Sorted so the model does not depend on the order the rows were exported in.
    joined = joined.sort_values(list(KEY_COLUMNS), kind="stable").reset_index(drop=True)

    X = np.column_stack(
        [_numeric(joined, c, lxx_path if c in UNIT_CHANNELS else psu_path) for c in FEATURE_COLUMNS]
    )
    label_values = _numeric(joined, "label", lxx_path)
    bad_labels = sorted(set(np.unique(label_values[~np.isnan(label_values)]).tolist()) - {0.0, 1.0})
    if bad_labels or np.isnan(label_values).any():
        shown = bad_labels or ["<empty>"]
        raise SchemaError(f"{str(lxx_path)!r}: column 'label' must be 0 or 1, found {shown}")
    severity = _numeric(joined, "severity", lxx_path)
    severity = np.where(np.isnan(severity), 0.0, severity)
    fault_type = joined["fault_type"].fillna(NORMAL_FAULT_TYPE).astype(str).to_numpy(dtype=np.str_)
    units, _ = pd.MultiIndex.from_frame(joined[["lcc", "unit"]]).factorize()
    try:
        time_s = time_seconds(joined["time"])
    except TableError as exc:
        raise SchemaError(f"{str(lxx_path)!r}: {exc}") from None
    return TrainingData(
        X=np.ascontiguousarray(X, dtype=np.float64),
        label=label_values.astype(np.int64),
        fault_type=fault_type,
        severity=severity,
        unit=units.astype(np.uint32),
        time_s=time_s,
        setpoint_a=_numeric(joined, "setpoint_a", lxx_path) if "setpoint_a" in joined.columns else None,
        state=_states(joined, lxx_path) if "state" in joined.columns else None,
    )
