"""Recorded telemetry as frames: a CSV file or a MongoDB collection, regrouped per (time, LCC).

A recording has one row per unit-sample: a time (``time_s`` in seconds, or ``time`` as seconds or
an ISO-8601 timestamp), ``lcc``, ``unit`` and every channel of ``codec.CHANNELS``. This is what
`laserguard simulate` writes (telemetry.csv), what ``replay --to-mongo`` writes, and (with the
channels nested under ``values`` and ``ts_ns`` as the time) the store's ``telemetry`` collection.
Rows of one LCC at one time become one frame; a unit missing from a frame is sent as NaN (a
dropout is data, not an error) and counted.

Each unit's operating context rides along when the recording has it: ``setpoint_a`` (A) and
``state`` (a name of ``codec.UNIT_STATES``). A recording made before they existed (no such
columns, or empty cells) replays as an unknown setpoint (NaN) and state "on", which is what
such a unit was doing.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from laserguard.wire.codec import CHANNELS, STATE_ON, UNIT_STATES


class RecordingError(ValueError):
    """A recording that cannot be replayed; the message names the offending column or value."""


@dataclass(frozen=True)
class RecordedFrame:
    time_s: float
    lcc_id: int
    values: npt.NDArray[np.float32]  # (n_units, len(CHANNELS)); NaN rows for missing units
    present: npt.NDArray[np.bool_]  # (n_units,) which units had a row
    setpoint_a: npt.NDArray[np.float32]  # (n_units,) A; NaN = unknown (also for missing units)
    state: npt.NDArray[np.uint8]  # (n_units,) codes into UNIT_STATES; "on" for missing units


class Recording:
    """Rows sorted by (time, lcc, unit); iterate ``frames()`` in send order."""

    def __init__(self, table: pd.DataFrame, channels: Sequence[str] = CHANNELS) -> None:
        self.channels = tuple(channels)
        self.table = normalise(table, self.channels)
        # Every frame of an LCC has the same size: its largest unit index + 1.
        self.units_per_lcc: dict[int, int] = {
            int(lcc): int(units) + 1 for lcc, units in self.table.groupby("lcc")["unit"].max().items()
        }

    def __len__(self) -> int:
        return len(self.table)

    @property
    def n_frames(self) -> int:
        return int(self.table[["time_s", "lcc"]].drop_duplicates().shape[0])

    @property
    def duration_s(self) -> float:
        times = self.table["time_s"]
        return float(times.iloc[-1] - times.iloc[0]) if len(times) else 0.0

    def frames(self) -> Iterator[RecordedFrame]:
        times = self.table["time_s"].to_numpy()
        lccs = self.table["lcc"].to_numpy()
        units = self.table["unit"].to_numpy()
        values = self.table[list(self.channels)].to_numpy(dtype=np.float32)
        setpoints = self.table["setpoint_a"].to_numpy(dtype=np.float32)
        states = self.table["state"].to_numpy(dtype=np.uint8)
        change = np.flatnonzero((times[1:] != times[:-1]) | (lccs[1:] != lccs[:-1])) + 1
        bounds = np.concatenate([[0], change, [len(times)]])
        for begin, end in itertools.pairwise(bounds.tolist()):
            lcc = int(lccs[begin])
            n_units = self.units_per_lcc[lcc]
            frame = np.full((n_units, len(self.channels)), np.nan, dtype=np.float32)
            present = np.zeros(n_units, dtype=bool)
            setpoint = np.full(n_units, np.nan, dtype=np.float32)
            state = np.full(n_units, STATE_ON, dtype=np.uint8)
            rows = units[begin:end]
            frame[rows] = values[begin:end]
            present[rows] = True
            setpoint[rows] = setpoints[begin:end]
            state[rows] = states[begin:end]
            yield RecordedFrame(float(times[begin]), lcc, frame, present, setpoint, state)


def _show(value: Any) -> str:
    """repr of a cell, as Python (not numpy) would print it."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _time_seconds(table: pd.DataFrame) -> pd.Series:
    if "time_s" in table.columns:
        column = "time_s"
        numeric = pd.to_numeric(table[column], errors="coerce")
    elif "time" in table.columns:
        column = "time"
        if pd.api.types.is_numeric_dtype(table[column]):
            numeric = pd.to_numeric(table[column], errors="coerce")
        else:  # ISO-8601 text (data-contracts.md) or datetimes from MongoDB
            stamps = pd.to_datetime(table[column], utc=True, errors="coerce", format="ISO8601")
            numeric = (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    else:
        raise RecordingError(
            f"a recording needs a 'time_s' or 'time' column; found columns {sorted(map(str, table.columns))}"
        )
    bad = numeric.isna() | ~np.isfinite(numeric.astype(float))
    if bad.any():
        raise RecordingError(
            f"column {column!r} has a value that is not a time: {_show(table[column][bad].iloc[0])} "
            f"(row {int(np.flatnonzero(bad.to_numpy())[0])})"
        )
    return numeric.astype(float)


def _integer_column(table: pd.DataFrame, column: str, upper: int) -> pd.Series:
    if column not in table.columns:
        raise RecordingError(f"a recording needs a {column!r} column; found columns {sorted(table.columns)}")
    numeric = pd.to_numeric(table[column], errors="coerce")
    bad = numeric.isna() | (numeric < 0) | (numeric >= upper) | (numeric != np.floor(numeric))
    if bad.any():
        raise RecordingError(
            f"column {column!r} must hold integers in [0, {upper}), got {_show(table[column][bad].iloc[0])} "
            f"(row {int(np.flatnonzero(bad.to_numpy())[0])})"
        )
    return numeric.astype(np.int64)


def _blank(column: pd.Series) -> pd.Series:
    """Cells that hold nothing: NaN/None, or empty text."""
    return column.isna() | (column.astype(str).str.strip() == "")


def _setpoint_column(table: pd.DataFrame) -> pd.Series:
    """Setpoints in A; NaN where unknown (no column, empty cell, None from a store document)."""
    if "setpoint_a" not in table.columns:
        return pd.Series(np.nan, index=table.index, dtype=np.float64)
    raw = table["setpoint_a"]
    numeric = pd.to_numeric(raw, errors="coerce")
    bad = numeric.isna() & ~_blank(raw) & ~raw.astype(str).str.strip().str.lower().isin(["nan"])
    if bad.any():
        raise RecordingError(
            f"column 'setpoint_a' has a value that is not a number: {_show(raw[bad].iloc[0])} "
            f"(row {int(np.flatnonzero(bad.to_numpy())[0])})"
        )
    return numeric.astype(np.float64)


def _state_column(table: pd.DataFrame) -> pd.Series:
    """State codes (uint8); "on" where unknown (no column, empty cell)."""
    if "state" not in table.columns:
        return pd.Series(STATE_ON, index=table.index, dtype=np.uint8)
    raw = table["state"]
    blank = _blank(raw)
    names = raw.astype(str).str.strip()
    bad = ~blank & ~names.isin(UNIT_STATES)
    if bad.any():
        raise RecordingError(
            f"column 'state' has {_show(raw[bad].iloc[0])}, not a unit state "
            f"(row {int(np.flatnonzero(bad.to_numpy())[0])}); known states are {', '.join(UNIT_STATES)}"
        )
    codes = names.map({name: code for code, name in enumerate(UNIT_STATES)})
    return codes.where(~blank, STATE_ON).astype(np.uint8)


def normalise(table: pd.DataFrame, channels: Sequence[str] = CHANNELS) -> pd.DataFrame:
    """Columns time_s, lcc, unit, channels..., setpoint_a (A, NaN = unknown), state (uint8 codes into
    UNIT_STATES); sorted; raises RecordingError on bad input."""
    missing = [c for c in channels if c not in table.columns]
    if missing:
        raise RecordingError(
            f"the recording lacks channel column(s) {missing}; it needs all of {list(channels)}"
        )
    out = pd.DataFrame(
        {
            "time_s": _time_seconds(table),
            "lcc": _integer_column(table, "lcc", 2**32),
            # A frame holds at most 65535 units (uint16 unit indices in the feedback).
            "unit": _integer_column(table, "unit", 65535),
        }
    )
    for channel in channels:
        numeric = pd.to_numeric(table[channel], errors="coerce")
        # Empty cells are NaN (a dropout) and stay NaN; text that is not a number is an error.
        bad = numeric.isna() & table[channel].notna() & (table[channel].astype(str).str.strip() != "")
        bad &= ~table[channel].astype(str).str.strip().str.lower().isin(["nan", "inf", "-inf"])
        if bad.any():
            raise RecordingError(
                f"channel {channel!r} has a value that is not a number: {_show(table[channel][bad].iloc[0])} "
                f"(row {int(np.flatnonzero(bad.to_numpy())[0])})"
            )
        out[channel] = numeric.astype(np.float64)
    out["setpoint_a"] = _setpoint_column(table)
    out["state"] = _state_column(table)
    out = out.sort_values(["time_s", "lcc", "unit"], kind="stable").reset_index(drop=True)
    duplicated = out.duplicated(["time_s", "lcc", "unit"])
    if duplicated.any():
        row = out[duplicated].iloc[0]
        raise RecordingError(
            f"the recording has two rows for time {float(row['time_s'])!r}, lcc {int(row['lcc'])}, unit {int(row['unit'])}"
        )
    if out.empty:
        raise RecordingError("the recording has no rows")
    return out


def read_csv(path: str | Path) -> Recording:
    """A CSV recording; channels as in codec.CHANNELS, setpoint_a and state when present, extra
    columns (labels, psu, op_event) are ignored."""
    try:
        table = pd.read_csv(path, low_memory=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise RecordingError(f"cannot read recording {str(path)!r}: {exc}") from exc
    return Recording(table)


def _flatten(doc: dict[str, Any]) -> dict[str, Any]:
    row = {k: v for k, v in doc.items() if k != "values"}
    nested = doc.get("values")
    if isinstance(nested, dict):
        row.update(nested)
    if "time_s" not in row and "time" not in row:
        if "ts_ns" in row:
            row["time_s"] = int(row["ts_ns"]) / 1e9
        elif "ts" in row:
            row["time"] = row["ts"]
    return row


def _frame_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The store's frame document (``n_units`` float32 columns) as one row per unit."""
    n_units = int(doc["n_units"])
    columns = {name: np.frombuffer(data, "<f4").tolist() for name, data in doc["values"].items()}
    setpoints = np.frombuffer(doc["setpoint_a"], "<f4").tolist() if "setpoint_a" in doc else None
    states = np.frombuffer(doc["state"], "u1").tolist() if "state" in doc else None
    return [
        {
            "time_s": int(doc["ts_ns"]) / 1e9,
            "lcc": doc["lcc"],
            "unit": unit,
            **{name: values[unit] for name, values in columns.items()},
            **({"setpoint_a": setpoints[unit]} if setpoints is not None else {}),
            **({"state": UNIT_STATES[states[unit]]} if states is not None else {}),
        }
        for unit in range(n_units)
    ]


def read_collection(collection: Any) -> Recording:
    """A MongoDB collection of unit-sample documents (flat, or the store's nested ``values``) or
    the store's frame documents (``frames``: one per frame, per-unit float32 columns)."""
    docs = [
        row
        for doc in collection.find({}, {"_id": 0})
        for row in (_frame_rows(doc) if "n_units" in doc else [_flatten(doc)])
    ]
    if not docs:
        raise RecordingError(f"collection {collection.full_name!r} is empty")
    return Recording(pd.DataFrame(docs))
