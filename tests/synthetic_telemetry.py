"""A tiny labelled-CSV generator for training tests and timing runs.

Not a physics simulator (that is laserguard.sim): channels are Gaussian around per-unit
means, and each fault type shifts a few channels by an amount proportional to its severity.
It writes lxx_data.csv and psu_data.csv in the docs/data-contracts.md format.

    python tests/synthetic_telemetry.py --rows 100000 --out /tmp/telemetry
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

UNIT_MEANS = {
    "drive_current_a": (10.0, 0.05),
    "forward_voltage_v": (1.65, 0.005),
    "optical_power_w": (9.0, 0.05),
    "monitor_pd_ma": (4.5, 0.03),
    "diode_temp_c": (35.0, 0.2),
    "heatsink_temp_c": (25.0, 0.1),
    "tec_current_a": (1.2, 0.02),
}
PSU_MEANS = {
    "psu_voltage_v": (12.0, 0.02),
    "psu_current_a": (20.0, 0.1),
    "psu_temp_c": (40.0, 0.3),
    "psu_ripple_mv": (15.0, 1.0),
}
# channel -> shift per unit severity, in units of that channel's noise sigma
UNIT_FAULTS = {
    "facet_damage": {"optical_power_w": -12.0, "monitor_pd_ma": -12.0},
    "thermal_runaway": {"diode_temp_c": 10.0, "heatsink_temp_c": 8.0, "optical_power_w": -4.0},
    "driver_fault": {"drive_current_a": 9.0, "forward_voltage_v": 5.0},
}
PSU_FAULT = ("psu_sag", {"psu_voltage_v": -15.0, "psu_ripple_mv": 6.0})


def generate(
    n_rows: int, *, seed: int = 0, n_lcc: int = 2, units_per_lcc: int = 8, anomaly_fraction: float = 0.25
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (lxx, psu) frames with about `n_rows` unit rows."""
    rng = np.random.default_rng(seed)
    n_units = n_lcc * units_per_lcc
    n_steps = max(1, n_rows // n_units)
    times = pd.date_range("2026-01-01", periods=n_steps, freq="s").strftime("%Y-%m-%dT%H:%M:%S.000Z")
    time_col = np.repeat(times.to_numpy(), n_units)
    lcc_col = np.tile(np.repeat(np.arange(1, n_lcc + 1), units_per_lcc), n_steps)
    unit_col = np.tile(np.arange(n_units) % units_per_lcc + 1, n_steps)
    n = len(time_col)

    lxx = pd.DataFrame({"time": time_col, "lcc": lcc_col, "unit": unit_col})
    unit_offset = rng.normal(0.0, 1.0, size=(n_units, len(UNIT_MEANS)))  # manufacturing spread
    for j, (name, (mean, sigma)) in enumerate(UNIT_MEANS.items()):
        lxx[name] = mean + sigma * (unit_offset[np.arange(n) % n_units, j] + rng.normal(size=n))
    psu = pd.DataFrame(
        {"time": np.repeat(times.to_numpy(), n_lcc), "lcc": np.tile(np.arange(1, n_lcc + 1), n_steps)}
    )
    for name, (mean, sigma) in PSU_MEANS.items():
        psu[name] = mean + sigma * rng.normal(size=len(psu))

    fault_type = np.full(n, "none", dtype=object)
    severity = np.zeros(n)
    # Unit faults hit single rows; a PSU fault hits every unit of that LCC at that instant.
    share = anomaly_fraction / (len(UNIT_FAULTS) + 1)
    unit_anomalous = rng.random(n) < share * len(UNIT_FAULTS)
    chosen = rng.integers(0, len(UNIT_FAULTS), size=n)
    for k, (kind, shifts) in enumerate(UNIT_FAULTS.items()):
        rows = np.flatnonzero(unit_anomalous & (chosen == k))
        sev = rng.uniform(0.1, 1.0, size=len(rows))
        fault_type[rows], severity[rows] = kind, sev
        for name, shift in shifts.items():
            lxx.loc[rows, name] += shift * sev * UNIT_MEANS[name][1]
    psu_faulty = rng.random(len(psu)) < share
    psu_severity = np.where(psu_faulty, rng.uniform(0.1, 1.0, size=len(psu)), 0.0)
    for name, shift in PSU_FAULT[1].items():
        psu[name] += shift * psu_severity * PSU_MEANS[name][1]
    psu_of_row = (np.arange(n) // n_units) * n_lcc + (lcc_col - 1)
    hit = psu_faulty[psu_of_row]
    fault_type[hit], severity[hit] = PSU_FAULT[0], psu_severity[psu_of_row][hit]
    anomalous = fault_type != "none"
    lxx["fault_type"] = fault_type
    lxx["severity"] = severity
    lxx["label"] = anomalous.astype(int)
    return lxx, psu


def write_csvs(out: Path, n_rows: int, seed: int = 0) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    lxx, psu = generate(n_rows, seed=seed)
    lxx.to_csv(out / "lxx_data.csv", index=False)
    psu.to_csv(out / "psu_data.csv", index=False)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="write synthetic lxx_data.csv / psu_data.csv")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    write_csvs(args.out, args.rows, args.seed)
    print(f"wrote {args.out}/lxx_data.csv and psu_data.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
