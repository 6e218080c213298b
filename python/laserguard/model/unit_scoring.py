"""One score per unit sample from the two stages of detection engine v2.

- **fleet**: the exported IsolationForest (bit-exact sklearn ``decision_function``), which sees
  a unit that is odd against the fleet (e.g. faulty from commissioning); it flags where its
  decision is below the model's ``fleet_cut``.
- **baseline**: the unit against its own baseline (``laserguard.model.baseline``), which sees
  drift, steps and sensor faults.

``score = min(decision - fleet_cut, baseline decision)``: sklearn's convention (lower is more
anomalous, < 0 flagged). A unit still learning its baseline is never flagged and scores by
the fleet stage alone, floored at 0. A forest-only (format 1.0) model scores exactly as before: the forest's
decision, flagged below 0. Explanation codes: ``0..n_features-1`` are the forest's features
(local DIFFI), ``n_features + channel * 4 + kind`` the baseline's deviations; ``explanation_names``
names them all, so every explanation says which stage flagged and on what channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from laserguard.model.baseline import BaselineStage, deviation_names
from laserguard.model.forest import ForestModel

STAGE_NONE: Final = 0
STAGE_FLEET: Final = 1
STAGE_BASELINE: Final = 2
STAGE_NAMES: Final[tuple[str, ...]] = ("none", "fleet", "baseline")


def explanation_names(model: ForestModel) -> list[str]:
    """Name of every explanation code the model's scores can carry."""
    names = list(model.feature_names)
    if model.baseline is not None:
        names += deviation_names(model.feature_names)
    return names


@dataclass(frozen=True)
class UnitScores:
    score: npt.NDArray[np.float64]  # min of the two stages, < 0 flagged
    flagged: npt.NDArray[np.bool_]
    learning: npt.NDArray[np.bool_]  # the unit is still learning its baseline (never flagged)
    stage: npt.NDArray[np.int8]  # STAGE_* that flagged the row (the lower score), STAGE_NONE if not flagged
    fleet_decision: npt.NDArray[np.float64]  # the forest's exact sklearn decision_function
    baseline_decision: npt.NDArray[np.float64]  # NaN while learning or for a 1.0 model
    top_code: npt.NDArray[np.int16]  # (rows, k) explanation codes of flagged rows, -1 = empty
    top_weight: npt.NDArray[np.float32]


class UnitScorer:
    """The forest plus the baseline state of ``n_units`` units (index 0..n_units-1)."""

    def __init__(self, model: ForestModel, n_units: int) -> None:
        self.model = model
        self.n_units = n_units
        params = model.baseline
        self.stage = None if params is None else BaselineStage(params, n_units)
        self.fleet_cut = 0.0 if params is None else params.fleet_cut

    def score(
        self,
        unit: npt.ArrayLike,
        time_s: npt.ArrayLike,
        values: npt.ArrayLike,
        top_k: int = 3,
    ) -> UnitScores:
        """Rows in time order per unit; values (rows x n_features), float32 or float64."""
        x = np.asarray(values)
        if x.dtype not in (np.float32, np.float64):
            x = x.astype(np.float64)
        # An infinite reading is a sensor fault, not a number: the forest scores it as
        # missing (StandardScaler would refuse inf); the baseline stage counts it as missing.
        inf = np.isinf(x)
        forest_x = np.where(inf, x.dtype.type(np.nan), x) if inf.any() else x
        fleet = self.model.decision_function(forest_x)
        n = fleet.shape[0]
        k = min(top_k, self.model.n_features) if self.stage is None else top_k
        fleet_score = fleet - self.fleet_cut
        if self.stage is None:
            baseline = np.full(n, np.nan)
            learning = np.zeros(n, dtype=bool)
            score = fleet_score
            flagged = score < 0
            stage = np.where(flagged, STAGE_FLEET, STAGE_NONE).astype(np.int8)
            codes = np.full((n, k), -1, dtype=np.int16)
            weights = np.zeros((n, k), dtype=np.float32)
        else:
            result = self.stage.push(unit, time_s, x, top_k)
            baseline, learning = result.decision, result.learning
            # A unit learning its baseline is not judged: its score is the fleet's, floored at 0,
            # so "< 0 flagged" holds for every row.
            score = np.where(learning, np.maximum(fleet_score, 0.0), np.fmin(fleet_score, baseline))
            flagged = (score < 0) & ~learning
            by_baseline = flagged & (baseline <= fleet_score)
            stage = np.where(by_baseline, STAGE_BASELINE, np.where(flagged, STAGE_FLEET, STAGE_NONE)).astype(
                np.int8
            )
            codes = np.where(
                by_baseline[:, None], result.top_code + np.int16(self.model.n_features), np.int16(-1)
            )
            codes = np.where(result.top_code >= 0, codes, np.int16(-1)).astype(np.int16)
            weights = np.where(by_baseline[:, None], result.top_weight, np.float32(0)).astype(np.float32)
        by_fleet = np.flatnonzero(stage == STAGE_FLEET)
        if by_fleet.size and k:
            kf = min(k, self.model.n_features)
            idx, w = self.model.top_features(forest_x[by_fleet], kf)
            codes[by_fleet, :kf] = idx
            weights[by_fleet, :kf] = w
        return UnitScores(score, flagged, learning, stage, fleet, baseline, codes, weights)
