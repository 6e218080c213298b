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
(local DIFFI), ``n_features + channel * 7 + kind`` the unit stage's deviations; ``explanation_names``
names them all, so every explanation says which stage flagged and on what channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from laserguard import _core
from laserguard.model.baseline import BaselineStage, deviation_names
from laserguard.model.forest import ForestModel
from laserguard.model.numpy_power import power_loop

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
    """The forest plus the baseline state of ``n_units`` units (index 0..n_units-1).

    One native call per ``score`` (C++ ``UnitScorer``, GIL released): the forest's exact
    decision function (finished with numpy's own power loop, ``numpy_power``), the baseline
    stage, the combined score and the explanations of flagged rows.
    """

    def __init__(self, model: ForestModel, n_units: int) -> None:
        self.model = model
        self.n_units = n_units
        loop, data = power_loop() or (0, 0)
        self._core = _core.UnitScorer(model.core, n_units, loop, data)
        params = model.baseline
        core_stage = self._core.stage
        self.stage = None if params is None else BaselineStage.wrapping(core_stage, params, model.context)
        self.fleet_cut = float(self._core.fleet_cut)

    def score(
        self,
        unit: npt.ArrayLike,
        time_s: npt.ArrayLike,
        values: npt.ArrayLike,
        top_k: int = 3,
        *,
        setpoint: npt.ArrayLike | None = None,
        state: npt.ArrayLike | None = None,
    ) -> UnitScores:
        """Rows in time order per unit; values (rows x n_features), float32 or float64.

        ``setpoint`` (A per row, NaN unknown) and ``state`` (UnitState codes per row) are the
        operating context a v3 model (format 2.1) expects each channel's value from; None means
        unknown / every unit on. A v2 or forest-only model ignores them.
        """
        x = np.asarray(values)
        if x.dtype != np.float32 and x.dtype != np.float64:
            x = x.astype(np.float64)
        if not x.flags.c_contiguous:
            x = np.ascontiguousarray(x)
        k = top_k if self.stage is not None else min(top_k, self.model.n_features)
        u = np.ascontiguousarray(unit, dtype=np.uint32)
        t = np.ascontiguousarray(time_s, dtype=np.float64)
        sp = None if setpoint is None else np.ascontiguousarray(setpoint, dtype=np.float32)
        st = None if state is None else np.asarray(state)
        score, flagged, learning, stage, fleet, baseline, codes, weights = self._core.score(
            u, t, x, k, sp, st
        )
        # uint8 0/1 from C++, viewed (not copied) as bool.
        return UnitScores(
            score, flagged.view(np.bool_), learning.view(np.bool_), stage, fleet, baseline, codes, weights
        )
