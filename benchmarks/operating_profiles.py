"""Operating profiles: changes per unit-hour, and the shipped model's false alarms under them.

    python benchmarks/operating_profiles.py [--json out.json]

1. Operating changes per unit-hour, by kind, counted from `op_event` (an HVAC step counts once
   on every unit of its LCC): `lab` over 24 h and `production` over 7 days, 2 LCCs x 32 units,
   seed 0, no faults (sampling at 0.1 Hz / 1/60 Hz: the schedule does not depend on the rate).
2. False-positive rate of models/default.lgf on healthy unit-rows, exactly as a user would
   measure it: `laserguard simulate --profile P --fault-mix none --hours 1` (2 x 32 units at
   1 Hz, seed 0) then `laserguard score --model models/default.lgf`, split by the unit's state
   and by the time since the unit's last operating change. Printed as a markdown table for
   docs/simulator.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from laserguard import sim

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "default.lgf"
RATE_RUNS = {"lab": (24.0, 0.1), "production": (7 * 24.0, 1 / 60)}
SINCE_BUCKETS = [(0.0, 60.0), (60.0, 600.0), (600.0, np.inf)]


def change_rates(profile: str) -> dict[str, float]:
    hours, rate_hz = RATE_RUNS[profile]
    frame = sim.generate(hours, rate_hz=rate_hz, seed=0, fault_mix="none", profile=profile)
    unit_hours = frame.groupby(["lcc", "unit"]).ngroups * hours
    events = frame.op_event.astype(str)
    rates = {kind: float(n) / unit_hours for kind, n in events[events != ""].value_counts().items()}
    rates["all"] = float((events != "").sum()) / unit_hours
    return rates


def seconds_since_change(scored: pd.DataFrame) -> np.ndarray:
    """Per row: seconds since its unit's last operating change (inf before the first)."""
    since = np.full(len(scored), np.inf)
    for _, rows in scored.groupby(["lcc", "unit"]).groups.items():
        index = np.asarray(rows)
        t = scored.time_s.to_numpy()[index]
        changed = scored.op_event.to_numpy()[index] != ""
        last = np.maximum.accumulate(np.where(changed, t, -np.inf))
        since[index] = t - last
    return since


def false_alarms(profile: str, workdir: Path) -> dict[str, Any]:
    out = workdir / profile
    cli = [sys.executable, "-m", "laserguard.cli"]
    subprocess.run(
        [
            *cli,
            "simulate",
            "--profile",
            profile,
            "--fault-mix",
            "none",
            "--hours",
            "1",
            "--seed",
            "0",
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    scored_path = out / "scored.csv"
    subprocess.run(
        [
            *cli,
            "score",
            "--model",
            str(MODEL),
            "--data",
            str(out / "telemetry.csv"),
            "--out",
            str(scored_path),
        ],
        check=True,
        capture_output=True,
    )
    scored = pd.read_csv(scored_path, keep_default_na=False, dtype={"op_event": str, "state": str})
    healthy = scored[scored.label == 0]
    flagged = healthy.is_anomaly.astype(int).to_numpy()
    since = seconds_since_change(healthy)
    result: dict[str, Any] = {
        "rows": len(healthy),
        "flagged": int(flagged.sum()),
        "fpr": float(flagged.mean()),
        "units_ever_flagged": int(healthy[flagged == 1].groupby(["lcc", "unit"]).ngroups),
        "units": int(healthy.groupby(["lcc", "unit"]).ngroups),
        "by_state": {
            state: {"rows": len(rows), "fpr": float(rows.is_anomaly.mean())}
            for state, rows in healthy.groupby("state")
        },
        "by_time_since_change": {},
    }
    buckets = [("no change yet", np.isinf(since))] + [
        (f"{lo:g}-{hi:g} s", (since >= lo) & (since < hi)) for lo, hi in SINCE_BUCKETS
    ]
    for name, mask in buckets:
        if mask.any():
            result["by_time_since_change"][name] = {
                "rows": int(mask.sum()),
                "fpr": float(flagged[mask].mean()),
            }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for profile in ("steady", "lab", "production"):
            report[profile] = {
                "changes_per_unit_hour": change_rates(profile) if profile in RATE_RUNS else {"all": 0.0},
                "false_alarms_1h": false_alarms(profile, Path(tmp)),
            }
    print(
        "| profile | changes per unit-hour | healthy unit-rows flagged (1 h, 64 units) | units ever flagged |"
    )
    print("|---|---|---|---|")
    for profile, r in report.items():
        fa = r["false_alarms_1h"]
        print(
            f"| `{profile}` | {r['changes_per_unit_hour']['all']:.2f} | "
            f"{fa['flagged']:,} of {fa['rows']:,} ({100 * fa['fpr']:.2f} %) | {fa['units_ever_flagged']} of {fa['units']} |"
        )
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
