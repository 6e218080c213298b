"""Per-unit baseline features vs raw channels (the features are C++; the scorers are prototypes).

    python benchmarks/unit_baseline_features.py      # writes the quality-features section of docs/benchmarks.md

Measures how much issue 5's detection quality improves when the IsolationForest sees each
unit relative to its *own* baseline instead of raw channels. Features per unit and channel c
(causal: every value uses only samples up to now):
- z_c: (x_c - mu_c) / sigma_c, with mu/sigma the unit's mean/std over its first BASELINE_S
  seconds (its commissioning window, fault-free by construction here);
- s_c: rolling std over the last WINDOW_S seconds / sigma_c (oscillation, ripple, spikes, and
  a stuck channel, whose rolling std drops to 0);
- nan_frac: fraction of NaN readings of the unit over the last WINDOW_S seconds (dropout).
The features come from the C++ extractor (laserguard.model.unit_baseline, streaming, the same code a
training run and a live detector would call); the two scorers below are prototypes that are not
wired into `train` or `detect` (see docs/benchmarks.md).
Same test set, threshold rule and metrics as benchmarks/detection_quality.py; the threshold
set is a 1 Hz nominal run (the rolling window is in samples at 1 Hz).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest

from laserguard import sim
from laserguard.model import unit_baseline
from laserguard.offline import detection_quality as dq
from laserguard.wire.codec import CHANNELS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report_sections import machine_line, write_section

BASELINE_S = 600.0
WINDOW_S = 30
TRAIN = {"hours": 1.0, "rate_hz": 1.0, "lccs": 2, "seed": 1}
NORMAL = {"hours": 1.0, "rate_hz": 1.0, "lccs": 8, "seed": 12}
PARAMS = {"n_estimators": 200, "max_samples": 256, "random_state": 0}
COMMAND = "python benchmarks/unit_baseline_features.py"


def unit_baseline_features(frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """The C++ features (laserguard.model.unit_baseline) in the frame's row order, and their names."""
    features = unit_baseline.table_features(frame, baseline_s=BASELINE_S, window=WINDOW_S)
    return features, unit_baseline.feature_names()


def after_baseline(frame: pd.DataFrame) -> np.ndarray:
    return frame["time_s"].to_numpy() >= BASELINE_S


# PSU current and temperature follow the sum of all 16 units' loads, so a fault on one unit
# moves them for its healthy neighbours: they belong to a supply-level check, not to the unit's.
DEVIATION_CHANNELS = tuple(c for c in CHANNELS if c not in ("psu_current_a", "psu_temp_c"))
DEVIATION_QUANTILE = 99.9


def deviation_parts(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(|z| and |log s| of DEVIATION_CHANNELS, nan_frac) from unit_baseline_features' columns."""
    n = len(CHANNELS)
    index = [CHANNELS.index(c) for c in DEVIATION_CHANNELS]
    z, s = features[:, :n][:, index], features[:, n : 2 * n][:, index]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_s = np.log(np.clip(s, 1e-3, None))
    return np.column_stack([np.abs(z), np.abs(log_s)]), features[:, 2 * n]


class DeviationScore:
    """max_j |f_j| / q_j, q_j the DEVIATION_QUANTILE of |f_j| on nominal data; any NaN in the window flags."""

    def __init__(self, nominal_features: np.ndarray) -> None:
        parts, _ = deviation_parts(nominal_features)
        self.scale = np.nanpercentile(parts, DEVIATION_QUANTILE, axis=0)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        parts, nan_frac = deviation_parts(features)
        with np.errstate(invalid="ignore"):
            score = np.nanmax(parts / self.scale, axis=1)
        return np.where(nan_frac > 0, np.inf, score)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100.0 * value:.1f} %"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    started = time.perf_counter()

    def nominal(spec: dict[str, float]) -> pd.DataFrame:
        return sim.generate(
            spec["hours"],
            rate_hz=spec["rate_hz"],
            lccs=int(spec["lccs"]),
            seed=int(spec["seed"]),
            fault_mix="none",
        )

    train = nominal(TRAIN)
    train_F, names = unit_baseline_features(train)
    train_F = train_F[after_baseline(train)]
    normal = nominal(NORMAL)
    normal_F, _ = unit_baseline_features(normal)
    normal_F = normal_F[after_baseline(normal)]
    test = dq.sweep_frame()
    test_F, _ = unit_baseline_features(test)
    rows = after_baseline(test)
    test_F, test_rows = test_F[rows], test[rows].reset_index(drop=True)

    # Nominal training rows have no NaN; at scoring NaN routes as sklearn routes it.
    forest = IsolationForest(**PARAMS).fit(train_F)
    deviation = DeviationScore(train_F)
    scorers = {
        "iforest-unit-features": lambda F: -forest.decision_function(F),
        "unit-deviation-score": deviation,
    }
    results = {}
    for name, scorer in scorers.items():
        threshold = dq.threshold_at_fpr(scorer(normal_F))
        results[name] = dq.evaluate_detection(test_rows, scorer(test_F), threshold)
        print(name, json.dumps({k: results[name][k] for k in ("fpr", "fnr_moderate", "fnr_all")}), flush=True)
    seconds = time.perf_counter() - started
    if args.json:
        args.json.write_text(json.dumps({"features": names, "results": results}, indent=2) + "\n")
    lines = [
        "### Per-unit baseline features (C++ extractor; the scorers are prototypes, not wired into train/detect)",
        "",
        f"Reproduce: `{COMMAND}` ({seconds:.0f} s; {machine_line()}). Same test set, threshold rule "
        f"(FPR ≤ 0.01 on a nominal run, here {NORMAL['lccs']:g} LCCs x 32 units, 1 h at 1 Hz, seed "
        f"{NORMAL['seed']:g}) and metrics as above, on the samples after each unit's {BASELINE_S:.0f} s "
        f"baseline window (every fault starts later). Both are fitted on {TRAIN['hours']:g} h of nominal data "
        f"({TRAIN['lccs']:g} LCCs, seed {TRAIN['seed']:g}). Features per unit and channel: z = (x - mu) / sigma "
        f"against the unit's own first {BASELINE_S:.0f} s, s = {WINDOW_S}-sample rolling std / sigma, and the "
        "unit's fraction of NaN readings in the window.",
        "",
        f"- **iforest-unit-features**: IsolationForest `{json.dumps(PARAMS)}` on the {len(names)} features.",
        "- **unit-deviation-score**: max over the unit-level channels "
        f"({', '.join(DEVIATION_CHANNELS)}) of |z| and |ln s| (s clipped at 1e-3), each divided by its "
        f"{DEVIATION_QUANTILE:g}th percentile on the nominal training data; any NaN reading in the window flags.",
        "",
        "| scorer | FPR (test normal rows) | FNR at s = 0.5 | FNR, all severities | target met |",
        "|---|---|---|---|---|",
    ]
    for name, m in results.items():
        lines.append(
            f"| {name} | {_pct(m['fpr'])} | {_pct(m['fnr_moderate'])} | {_pct(m['fnr_all'])} | "
            f"{'yes' if dq.meets_target(m) else 'no'} |"
        )
    names_ = list(results)
    severities = list(results[names_[0]]["fnr_by_severity"])
    lines += ["", "| scorer | " + " | ".join(f"FNR s = {s}" for s in severities) + " |"]
    lines.append("|---|" + "---|" * len(severities))
    for name in names_:
        by = results[name]["fnr_by_severity"]
        lines.append(f"| {name} | " + " | ".join(_pct(by[s]) for s in severities) + " |")
    lines += [
        "",
        "| fault type | "
        + " | ".join(f"{n}: recall s = 0.5 | min s ≥ 90 % | median TTD" for n in names_)
        + " |",
        "|---|" + "---|---|---|" * len(names_),
    ]
    for kind in sorted(results[names_[0]]["per_fault_type"]):
        cells = []
        for name in names_:
            v = results[name]["per_fault_type"][kind]
            ttd, min_s = v["median_time_to_detect_s_moderate"], v["min_severity_at_recall"]
            cells += [
                _pct(v["recall_moderate"]),
                "—" if min_s is None else f"{min_s:g}",
                ("never" if ttd is None else f"{ttd:.0f} s")
                + f" ({v['events_moderate_detected']}/{v['events_moderate']})",
            ]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("quality-features", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
