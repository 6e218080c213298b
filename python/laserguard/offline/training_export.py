"""Clean rows (from MongoDB) -> lxx_data.csv and psu_data.csv, exactly per docs/data-contracts.md.

The supply rail is written per unit (``psu_data.csv`` keyed by time, lcc, unit, plus the ``psu``
index as an extra column): several supplies share one LCC, so (time, lcc) alone is not unique.
``lxx_data.csv`` carries each unit's ``setpoint_a`` and ``state`` (empty when unknown); they are
context, not readings, so the missing-value policy looks only at the 11 channels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import numpy as np
import pandas as pd

from laserguard.offline.training_data import (
    LXX_EXPORT_COLUMNS,
    LXX_FILE,
    PSU_CHANNELS,
    PSU_FILE,
    UNIT_CHANNELS,
)

MissingPolicy = Literal["drop", "ffill", "keep"]
MISSING_POLICIES: Final = ("drop", "ffill", "keep")
PSU_EXPORT_COLUMNS: Final = ("time", "lcc", "unit", "psu", *PSU_CHANNELS)
CHANNELS: Final = UNIT_CHANNELS + PSU_CHANNELS


@dataclass(frozen=True)
class ExportSummary:
    rows_read: int
    rows_written: int
    rows_dropped_missing: int
    cells_filled: int
    lxx_path: Path
    psu_path: Path


def contract_times(times: pd.Series) -> pd.Series:
    """BSON dates (UTC) as the contract's fixed text format, e.g. 2026-01-01T00:00:00.000Z."""
    stamps = pd.to_datetime(times, utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
    return stamps.str[:-3] + "Z"


def apply_missing_policy(rows: pd.DataFrame, policy: MissingPolicy) -> tuple[pd.DataFrame, int, int]:
    """(rows, rows dropped, cells filled). Rows must be sorted by time within each unit."""
    channels = list(CHANNELS)
    if policy == "keep":
        return rows, 0, 0
    filled = 0
    if policy == "ffill":
        before = int(rows[channels].isna().to_numpy().sum())
        rows = rows.copy()
        # Each unit's own last reading, never a neighbour's.
        rows[channels] = rows.groupby(["lcc", "unit"], sort=False)[channels].ffill()
        filled = before - int(rows[channels].isna().to_numpy().sum())
    elif policy != "drop":
        raise ValueError(f"unknown missing-value policy {policy!r}; one of {', '.join(MISSING_POLICIES)}")
    complete = rows[channels].notna().all(axis=1)
    return rows[complete], int((~complete).sum()), filled


def write_training_csvs(rows: pd.DataFrame, out_dir: Path, missing: MissingPolicy = "keep") -> ExportSummary:
    """Write the two contract files from clean rows (clean_store.read_clean_rows)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ordered = rows.sort_values(["time", "lcc", "unit"], kind="stable").reset_index(drop=True)
    kept, dropped, filled = apply_missing_policy(ordered, missing)
    frame = kept.assign(time=contract_times(kept["time"]) if len(kept) else kept["time"])
    frame = frame.assign(
        label=frame["label"].astype(np.int64),
        fault_type=frame["fault_type"].fillna("none").astype(str),
    )
    lxx_path, psu_path = out_dir / LXX_FILE, out_dir / PSU_FILE
    frame[list(LXX_EXPORT_COLUMNS)].to_csv(lxx_path, index=False, na_rep="", lineterminator="\n")
    frame[list(PSU_EXPORT_COLUMNS)].to_csv(psu_path, index=False, na_rep="", lineterminator="\n")
    return ExportSummary(len(rows), len(frame), dropped, filled, lxx_path, psu_path)
