"""A small raw-log dataset for the clean/analyze tests: 2 LCCs x 4 units, 30 min across midnight,
operated under the lab profile.

Defect rates are raised above the defaults so every rule has something to find in few rows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from laserguard.offline.raw_writer import DefectRates, write_raw_logs
from laserguard.sim import generate

START = datetime(2026, 1, 1, 23, 45, tzinfo=UTC)  # two UTC days -> two files per LCC
RATES = DefectRates(
    duplicate=0.01,
    late=0.004,
    time_format=0.03,
    unit_name=0.05,
    sentinel=0.01,
    glitch=0.005,
    truncated_last_line=1.0,
    gap_every_frames=400,
)


def simulated_frame(seed: int = 5) -> pd.DataFrame:
    # The lab profile, so the logs carry setpoint changes and units switched off and warming up.
    return generate(0.5, lccs=2, units=4, units_per_psu=2, seed=seed, fault_mix="all", profile="lab")


def write_dataset(out: Path, seed: int = 5) -> tuple[pd.DataFrame, dict[str, Any]]:
    frame = simulated_frame(seed)
    return frame, write_raw_logs(frame, out, start=START, seed=seed, rates=RATES)
