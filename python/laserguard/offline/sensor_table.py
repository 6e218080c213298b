"""Any multichannel sensor table as the detector sees it: unit index, time, channel matrix.

Real LCC logs will not have our column names: a table names its unit column(s) (one unit per
distinct combination), its time column (seconds, or anything pandas reads as a datetime) and
its channels. Rows are put in time order (stable, so simultaneous rows keep their order), which
is each unit's time order, the order in which the baseline stage must see them.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from laserguard.wire.codec import STATE_ON, UNIT_STATES


class TableError(ValueError):
    """A table that cannot be scored or trained on, with the offending column or value."""


@dataclass(frozen=True)
class SensorTable:
    unit: npt.NDArray[np.uint32]  # unit index per row, in processing (time) order
    time_s: npt.NDArray[np.float64]
    values: npt.NDArray[np.float64]  # rows x channels
    order: npt.NDArray[np.int64]  # processing position -> input row position
    unit_keys: list[tuple[object, ...]]  # unit index -> its unit-column values
    channels: tuple[str, ...]
    # Each row's operating context when the table has the columns (SETPOINT_COLUMN, STATE_COLUMN):
    # commanded current in A (NaN unknown) and state wire code; None: unknown / every unit on.
    setpoint: npt.NDArray[np.float32] | None = None
    state: npt.NDArray[np.uint8] | None = None

    @property
    def n_units(self) -> int:
        return len(self.unit_keys)

    def to_input_order(self, column: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
        """A per-row result in processing order, put back in the input table's row order."""
        out = np.empty_like(column)
        out[self.order] = column
        return out


SETPOINT_COLUMN: Final = "setpoint_a"
STATE_COLUMN: Final = "state"


def unit_context(
    frame: pd.DataFrame,
) -> tuple[npt.NDArray[np.float32] | None, npt.NDArray[np.uint8] | None]:
    """The table's per-row setpoint (A, NaN unknown) and state codes, when it has the columns.

    States are names (``on``) or wire codes; an empty state is unknown and read as ``on``, as a
    recording without states replays (docs/data-contracts.md)."""
    setpoint: npt.NDArray[np.float32] | None = None
    state: npt.NDArray[np.uint8] | None = None
    if SETPOINT_COLUMN in frame.columns:
        bad = first_non_numeric(frame[SETPOINT_COLUMN])
        if bad is not None:
            raise TableError(f"column {SETPOINT_COLUMN!r} is not numeric: row {bad[0]} has {bad[1]!r}")
        setpoint = pd.to_numeric(frame[SETPOINT_COLUMN], errors="coerce").to_numpy(np.float32)
    if STATE_COLUMN in frame.columns:
        column = frame[STATE_COLUMN]
        if pd.api.types.is_numeric_dtype(column):
            codes = column.fillna(STATE_ON).to_numpy(np.float64)
            bad_rows = np.flatnonzero((codes < 0) | (codes >= len(UNIT_STATES)) | (codes != np.round(codes)))
            if bad_rows.size:
                raise TableError(
                    f"column {STATE_COLUMN!r} has state code {column.iloc[bad_rows[0]]} at row {bad_rows[0]}; "
                    f"codes are 0-{len(UNIT_STATES) - 1} ({', '.join(UNIT_STATES)})"
                )
            state = codes.astype(np.uint8)
        else:
            names = column.fillna("").astype(str).str.strip().replace("", UNIT_STATES[STATE_ON])
            lookup = {name: code for code, name in enumerate(UNIT_STATES)}
            mapped = names.map(lookup)
            if mapped.isna().any():
                row = int(np.flatnonzero(mapped.isna().to_numpy())[0])
                raise TableError(
                    f"column {STATE_COLUMN!r} has unknown state {column.iloc[row]!r} at row {row}; "
                    f"one of {', '.join(UNIT_STATES)} or empty"
                )
            state = mapped.to_numpy(np.uint8)
    return setpoint, state


def time_seconds(column: pd.Series) -> npt.NDArray[np.float64]:
    """Numeric seconds as they are; datetimes (or ISO strings) as seconds since the epoch."""
    if pd.api.types.is_numeric_dtype(column):
        seconds: npt.NDArray[np.float64] = column.to_numpy(np.float64)
        return seconds
    try:
        stamps = pd.to_datetime(column, utc=True)
    except (ValueError, TypeError) as exc:
        raise TableError(
            f"time column {column.name!r} is neither numeric seconds nor datetimes: {exc}"
        ) from None
    since_epoch: npt.NDArray[np.float64] = (
        (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(np.float64)
    )
    return since_epoch


def first_non_numeric(column: pd.Series) -> tuple[int, object] | None:
    """Row position and value of the column's first cell that is neither empty nor a number."""
    if pd.api.types.is_numeric_dtype(column):
        return None
    parsed = pd.to_numeric(column, errors="coerce")
    bad = (parsed.isna() & column.notna()).to_numpy()
    if not bad.any():
        return None
    row = int(np.flatnonzero(bad)[0])
    return row, column.iloc[row]


def infer_channels(frame: pd.DataFrame, reserved: Collection[object]) -> list[str]:
    """The channels of a table that does not name them: every other column holding numbers.

    A column with some numbers is a channel even where other cells are not (``sensor_table``
    then names the first bad cell); one without a single number (a serial, a site name) is not.
    """
    others = [c for c in frame.columns if c not in reserved]
    channels = [c for c in others if pd.to_numeric(frame[c], errors="coerce").notna().any()]
    if not channels:
        described = ", ".join(
            f"{c!r} (first value {frame[c].dropna().iloc[0]!r})"
            if frame[c].notna().any()
            else f"{c!r} (empty)"
            for c in others
        )
        raise TableError(
            f"no numeric channel column: {described or 'no column besides the unit, time and label ones'}; "
            "name the channels with --channels"
        )
    return [str(c) for c in channels]


def sensor_table(
    frame: pd.DataFrame,
    *,
    unit_columns: Sequence[str],
    time_column: str,
    channels: Sequence[str],
) -> SensorTable:
    """Validate the named columns and put the rows in processing order."""
    missing = [c for c in [*unit_columns, time_column, *channels] if c not in frame.columns]
    if missing:
        raise TableError(f"column(s) {missing} not in the table (columns: {list(frame.columns)})")
    if not unit_columns:
        raise TableError("at least one unit column is needed")
    if not channels:
        raise TableError("at least one channel is needed")
    for channel in channels:
        bad = first_non_numeric(frame[channel])
        if bad is not None:
            row, value = bad
            raise TableError(f"channel column {channel!r} is not numeric: row {row} has {value!r}")
    time_s = time_seconds(frame[time_column])
    bad_time = ~np.isfinite(time_s)
    if bad_time.any():
        row = int(np.flatnonzero(bad_time)[0])
        raise TableError(f"time column {time_column!r} has a missing or non-finite value at row {row}")
    if frame[list(unit_columns)].isna().any().any():
        raise TableError(f"unit column(s) {list(unit_columns)} have missing values")
    codes, keys = pd.MultiIndex.from_frame(frame[list(unit_columns)]).factorize()
    order = np.argsort(time_s, kind="stable")
    values = frame[list(channels)].to_numpy(np.float64)
    setpoint, state = unit_context(frame)
    return SensorTable(
        unit=codes[order].astype(np.uint32),
        time_s=time_s[order],
        values=np.ascontiguousarray(values[order]),
        order=order.astype(np.int64),
        unit_keys=[tuple(k) for k in keys],
        channels=tuple(channels),
        setpoint=None if setpoint is None else setpoint[order],
        state=None if state is None else state[order],
    )
