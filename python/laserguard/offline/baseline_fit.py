"""Fitting the baseline stage of detection engine v2 on nominal data (``laserguard train``).

1. Push the nominal rows through the C++ stage with unit scales to get every row's raw
   deviations (|z| and |ln s| per scored channel, after each unit's baseline is learned).
2. ``level_scale`` / ``spread_scale``: their ``SCALE_QUANTILE`` percentile, so every deviation
   is measured in "how unusual for a healthy unit".
3. ``fleet_cut``: the forest flags at most ``fleet_share`` of the false-positive budget.
4. ``threshold``: the smallest D that keeps the union of both stages at ``target_fpr`` of the
   nominal rows the rules (missing, stuck) leave; the rules' own share is reported apart.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from laserguard.model.baseline import BaselineParams, BaselineStage

SCALE_QUANTILE: Final[float] = 99.9
# A channel whose healthy readings repeat exactly this often is quantised: no stuck rule for it.
MAX_HEALTHY_RUN_FOR_STUCK_RULE: Final[int] = 20
# The fleet forest is the backstop for units odd from commissioning; on a fleet with faults it also
# flags healthy neighbours through the shared supply channels, so it gets a small share.
DEFAULT_FLEET_SHARE: Final[float] = 0.05
MIN_SCALE: Final[float] = 1e-6


@dataclass(frozen=True)
class BaselineFit:
    params: BaselineParams
    nominal_rows: int  # rows after each unit's baseline was learned
    nominal_fpr: float  # of both stages together on those rows
    fleet_flagged: int
    missing_flagged: int
    baseline_flagged: int
    # v3: "tail" when the held-out rows were too few to read the target quantile (context_fit)
    threshold_from: str = "quantile"

    def report(self) -> dict[str, Any]:
        return {
            "params": self.params.as_dict(),
            "nominal_rows": self.nominal_rows,
            "nominal_fpr": self.nominal_fpr,
            "flagged_by": {
                "fleet": self.fleet_flagged,
                "missing": self.missing_flagged,
                "baseline": self.baseline_flagged,
            },
        }


def sigma_floors(values: npt.NDArray[np.float64]) -> tuple[float, ...]:
    """Per channel 1e-6 of its typical magnitude: a constant channel still gets a finite z."""
    with np.errstate(all="ignore"):
        typical = np.nanpercentile(np.abs(values), 99, axis=0)
    typical = np.where(np.isfinite(typical), typical, 0.0)
    return tuple(float(max(1e-6 * t, 1e-12)) for t in typical)


def longest_runs(unit: npt.NDArray[np.uint32], values: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Per channel, the longest run of identical consecutive finite readings of any unit."""
    order = np.argsort(unit, kind="stable")  # each unit's rows, still in time order
    u, x = unit[order], values[order]
    same = (x[1:] == x[:-1]) & (u[1:] == u[:-1])[:, None] & np.isfinite(x[1:])
    longest = np.ones(values.shape[1], dtype=np.int64)
    for c in range(values.shape[1]):
        run = best = 1
        for flag in same[:, c]:
            run = run + 1 if flag else 1
            best = max(best, run)
        longest[c] = best
    return longest


def stuck_runs(unit: npt.NDArray[np.uint32], values: npt.NDArray[np.float64]) -> tuple[int, ...]:
    """Per channel: two more than the longest healthy run (at least 3), 0 for a quantised channel."""
    return tuple(
        0 if r > MAX_HEALTHY_RUN_FOR_STUCK_RULE else max(int(r) + 2, 3) for r in longest_runs(unit, values)
    )


def _run(params: BaselineParams, n_units: int, unit: Any, time_s: Any, values: Any, raw: bool = False) -> Any:
    return BaselineStage(params, n_units).push(unit, time_s, values, 0, raw=raw)


def fit_baseline(
    unit: npt.NDArray[np.uint32],
    time_s: npt.NDArray[np.float64],
    values: npt.NDArray[np.float64],
    *,
    n_units: int,
    scored: Sequence[int],
    judge_spread: Sequence[int] | None = None,
    baseline_samples: int = 0,
    baseline_s: float = 0.0,
    window: int = 30,
    mean_tau_s: float = 0.0,
    target_fpr: float = 0.01,
    fleet_decision: npt.NDArray[np.float64] | None = None,
    fleet_share: float = DEFAULT_FLEET_SHARE,
    confirm_rows: int = 1,
) -> BaselineFit:
    """Baseline-stage parameters from nominal rows (in time order per unit)."""
    if not 0.0 < target_fpr < 1.0:
        raise ValueError(f"target_fpr must be in (0, 1), got {target_fpr!r}")
    if not 0.0 <= fleet_share <= 1.0:
        raise ValueError(f"fleet_share must be in [0, 1], got {fleet_share!r}")
    n_channels = values.shape[1]
    n_scored = len(scored)
    probe = BaselineParams(
        n_channels=n_channels,
        sigma_floor=sigma_floors(values),
        stuck_run=(0,) * n_channels,
        scored=tuple(int(c) for c in scored),
        level_scale=(1.0,) * n_scored,
        spread_scale=(1.0,) * n_scored,
        judge_spread=tuple(int(v) for v in judge_spread) if judge_spread is not None else (1,) * n_scored,
        baseline_samples=baseline_samples,
        baseline_s=baseline_s,
        window=window,
        mean_tau_s=mean_tau_s,
        threshold=1.0,
        missing_flags=False,
    )
    raw = _run(probe, n_units, unit, time_s, values, raw=True)
    ready = ~raw.learning
    if not ready.any():
        raise ValueError(
            "no unit finished learning its baseline in the training data: give more rows per unit "
            f"or a shorter baseline (baseline_samples={baseline_samples}, baseline_s={baseline_s})"
        )
    with warnings.catch_warnings():  # a column never computed (spread not judged) is all NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        q = np.nanpercentile(raw.raw_deviation[ready], SCALE_QUANTILE, axis=0)
    q = np.where(np.isfinite(q), np.maximum(q, MIN_SCALE), 1.0)
    scaled = replace(
        probe,
        level_scale=tuple(float(v) for v in q[:n_scored]),
        spread_scale=tuple(float(v) for v in q[n_scored:]),
        stuck_run=stuck_runs(unit, values),
    )
    # D = 1 - decision at threshold 1 without the rules; the rules alone at an unreachable
    # threshold give decision -1 exactly where they fire.
    deviation = (
        1.0 - _run(replace(scaled, stuck_run=probe.stuck_run), n_units, unit, time_s, values).decision[ready]
    )
    rules = replace(scaled, threshold=1e300, missing_flags=True)
    missing = _run(rules, n_units, unit, time_s, values).decision[ready] < 0

    # The rules (a missing or stuck reading) are not tunable. Training data with missing cells (a
    # field log's dropouts) would let them take the whole budget and silence the stages: the budget
    # is a share of the rows they leave, and their own share is reported (missing_flagged).
    budget = math.floor(target_fpr * (int(ready.sum()) - int(missing.sum())))
    fleet_cut = 0.0
    fleet_flag = np.zeros(int(ready.sum()), dtype=bool)
    if fleet_decision is not None:
        fleet_ready = np.asarray(fleet_decision, dtype=np.float64)[ready]
        allowed = math.floor(fleet_share * budget)
        ordered = np.sort(fleet_ready)
        # fleet flags where decision < cut: the cut is the (allowed+1)-th lowest decision.
        fleet_cut = float(min(ordered[min(allowed, ordered.size - 1)], 0.0))
        fleet_flag = fleet_ready < fleet_cut
    others = ~(fleet_flag | missing)
    remaining = max(budget - int((fleet_flag & ~missing).sum()), 0)
    candidates = np.sort(deviation[others])
    threshold = float(candidates[max(candidates.size - 1 - remaining, 0)]) if candidates.size else 1.0
    threshold = max(threshold, MIN_SCALE)
    # The thresholds are set on single rows; confirmation only removes flags (the FPR reported
    # here is an upper bound for the shipped behaviour).
    params = replace(
        scaled, threshold=threshold, fleet_cut=fleet_cut, missing_flags=True, confirm_rows=confirm_rows
    )
    baseline_flag = others & (deviation > threshold)
    flagged = int((fleet_flag | missing | baseline_flag).sum())
    return BaselineFit(
        params=params,
        nominal_rows=int(ready.sum()),
        nominal_fpr=flagged / int(ready.sum()),
        fleet_flagged=int(fleet_flag.sum()),
        missing_flagged=int(missing.sum()),
        baseline_flagged=int(baseline_flag.sum()),
    )
