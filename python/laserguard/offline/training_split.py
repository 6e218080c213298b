"""How `laserguard train` holds data out: time series stay time series.

A random row split cuts every unit's series apart, so the per-unit stages are fitted and judged on
scattered rows, and rows of the same minute land on both sides. Instead:

- **held-out units**: a seeded share of the units (``unit_share``, at least one when there are four
  or more units) is never trained on: a new unit, as the deployed model meets it;
- **held-out time**: of every other unit, the last ``test_size`` of its rows (in time order): the
  future of a unit whose past was trained on.

The fleet forest's cut is the one threshold a stage sets from scores of its own training rows;
``out_of_fold_fleet_decisions`` gives those rows scores from forests that never saw them (folds of
whole units, or contiguous blocks of time when there are too few units), so the cut holds on units
the forest has not seen.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

DEFAULT_HELD_OUT_UNIT_SHARE: Final[float] = 0.125
MIN_UNITS_TO_HOLD_OUT: Final[int] = 4
FLEET_FOLDS: Final[int] = 4


@dataclass(frozen=True)
class TimeSplit:
    """Per row: in the training part, in a training unit's held-out future, or in a held-out unit."""

    train: npt.NDArray[np.bool_]
    held_time: npt.NDArray[np.bool_]
    held_units: npt.NDArray[np.bool_]
    held_unit_ids: tuple[int, ...]
    test_size: float
    unit_share: float
    seed: int

    @property
    def test(self) -> npt.NDArray[np.bool_]:
        held: npt.NDArray[np.bool_] = self.held_time | self.held_units
        return held

    def describe(self) -> str:
        return (
            f"time split: the last {self.test_size:g} of each unit's series held out, and "
            f"{len(self.held_unit_ids)} whole unit(s) (share {self.unit_share:g}, seed {self.seed})"
        )


def time_split(
    unit: npt.NDArray[np.uint32],
    *,
    test_size: float,
    unit_share: float = DEFAULT_HELD_OUT_UNIT_SHARE,
    seed: int = 0,
) -> TimeSplit:
    """Split rows already in time order (per unit) into training rows and the two held-out parts."""
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size!r}")
    if not 0.0 <= unit_share < 1.0:
        raise ValueError(f"the held-out unit share must be in [0, 1), got {unit_share!r}")
    units = np.unique(unit)
    n_held = 0
    if len(units) >= MIN_UNITS_TO_HOLD_OUT and unit_share > 0:
        n_held = min(max(1, round(unit_share * len(units))), len(units) - 1)
    held_ids = np.sort(np.random.default_rng(seed).choice(units, size=n_held, replace=False))
    held_units = np.isin(unit, held_ids)
    # Position of each row within its unit's series, and the unit's row count.
    order = np.argsort(unit, kind="stable")
    counts = np.bincount(unit, minlength=int(unit.max()) + 1 if len(unit) else 0)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.empty(len(unit), dtype=np.int64)
    rank[order] = np.arange(len(unit)) - np.repeat(starts, counts)
    kept = np.floor((1.0 - test_size) * counts).astype(np.int64)
    held_time = ~held_units & (rank >= kept[unit])
    return TimeSplit(
        train=~held_units & ~held_time,
        held_time=held_time,
        held_units=held_units,
        held_unit_ids=tuple(int(u) for u in held_ids),
        test_size=test_size,
        unit_share=unit_share,
        seed=seed,
    )


def fleet_folds(unit: npt.NDArray[np.uint32], folds: int = FLEET_FOLDS) -> npt.NDArray[np.int64]:
    """Fold of every row: whole units dealt round-robin when there are enough, else contiguous
    blocks of each unit's series (a one-unit table: blocks of time)."""
    units = np.unique(unit)
    if len(units) >= folds:
        fold_of_unit = np.zeros(int(units.max()) + 1, dtype=np.int64)
        fold_of_unit[units] = np.arange(len(units)) % folds
        by_unit: npt.NDArray[np.int64] = fold_of_unit[unit]
        return by_unit
    out = np.empty(len(unit), dtype=np.int64)
    for u in units:
        rows = np.flatnonzero(unit == u)
        out[rows] = np.minimum(np.arange(len(rows)) * folds // max(len(rows), 1), folds - 1)
    return out


def out_of_fold_fleet_decisions(
    X: npt.NDArray[np.float64],
    unit: npt.NDArray[np.uint32],
    fit: Callable[[npt.NDArray[np.float64]], Any],
    folds: int = FLEET_FOLDS,
) -> npt.NDArray[np.float64]:
    """Each row's forest decision from a forest fitted (``fit(X) -> pipeline``) without its fold."""
    fold = fleet_folds(unit, folds)
    out = np.full(len(X), np.nan)
    for k in np.unique(fold):
        inside = fold == k
        if inside.all():
            continue  # one fold only: nothing to fit on
        out[inside] = fit(X[~inside]).decision_function(X[inside])
    if np.isnan(out).any():
        raise ValueError(f"need at least two folds of rows for out-of-fold forest scores, got {folds}")
    return out


def split_summary(split: TimeSplit, label: npt.NDArray[np.int64]) -> Mapping[str, Any]:
    def part(mask: npt.NDArray[np.bool_]) -> dict[str, int]:
        return {"rows": int(mask.sum()), "anomalous": int((mask & (label == 1)).sum())}

    return {
        "split": split.describe(),
        "train": part(split.train),
        "held_out_time": part(split.held_time),
        "held_out_units": {**part(split.held_units), "units": list(split.held_unit_ids)},
        "test_size": split.test_size,
        "held_out_unit_share": split.unit_share,
        "fleet_cut": f"from out-of-fold forest scores ({FLEET_FOLDS} folds of whole training units, "
        "or of contiguous time when fewer units)",
    }
