"""The native two-stage scorer: its fleet stage is sklearn's decision_function bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import laserguard
from laserguard.model.default_model import default_model_path
from laserguard.model.numpy_power import power_loop
from laserguard.model.unit_scoring import STAGE_BASELINE, STAGE_FLEET, UnitScorer

REFERENCE = Path(__file__).resolve().parent.parent / "models" / "reference" / "reference.lgf"


def test_numpy_power_loop_is_found_and_verified() -> None:
    # Without it the scorer falls back to libm's pow and is no longer bitwise (this test says so).
    assert power_loop() is not None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fleet_decision_is_the_exact_decision_function(dtype: type) -> None:
    model = laserguard.ForestModel.load(default_model_path())
    rng = np.random.default_rng(9)
    rows = 4096
    x = laserguard.sim.generate(rows / 3600 / 64, rate_hz=1.0, lccs=2, seed=9, fault_mix="all")
    values = x[list(model.feature_names)].to_numpy(dtype)[:rows].copy()
    values[rng.integers(0, len(values), 40), rng.integers(0, 11, 40)] = np.nan
    values[rng.integers(0, len(values), 10), rng.integers(0, 11, 10)] = np.inf
    unit = np.arange(len(values)) % 64
    scores = UnitScorer(model, 64).score(unit, np.arange(len(values)) // 64, values)
    expected = model.decision_function(np.where(np.isinf(values), dtype(np.nan), values))
    np.testing.assert_array_equal(scores.fleet_decision.view(np.int64), expected.view(np.int64))


def test_a_forest_only_model_scores_exactly_as_before() -> None:
    model = laserguard.ForestModel.load(REFERENCE)
    assert model.baseline is None
    X = np.random.default_rng(3).normal(size=(2000, model.n_features)) * 3
    scores = UnitScorer(model, 1).score(np.zeros(len(X)), np.arange(len(X)), X, top_k=3)
    decision = model.decision_function(X)
    np.testing.assert_array_equal(scores.score, decision)
    np.testing.assert_array_equal(scores.flagged, decision < 0)
    assert not scores.learning.any()
    assert set(np.unique(scores.stage)) <= {0, STAGE_FLEET}
    flagged = np.flatnonzero(scores.flagged)
    assert flagged.size > 0
    top, weights = model.top_features(X[flagged], 3)
    np.testing.assert_array_equal(scores.top_code[flagged], top)
    np.testing.assert_array_equal(scores.top_weight[flagged], weights)
    assert (scores.top_code[~scores.flagged] == -1).all()


def test_score_is_the_lower_stage_and_learning_units_are_never_flagged(tmp_path: Path) -> None:
    from laserguard.model.baseline import BaselineParams

    X = np.random.default_rng(5).normal(size=(400, 3))
    pipe = Pipeline([("s", StandardScaler()), ("m", IsolationForest(n_estimators=20, random_state=0))]).fit(X)
    params = BaselineParams(
        n_channels=3, sigma_floor=(1e-9,) * 3, stuck_run=(0, 0, 0), scored=(0, 1, 2),
        level_scale=(3.0,) * 3, spread_scale=(2.0,) * 3, baseline_samples=30, window=10,
        threshold=1.5, fleet_cut=-0.05,
    )  # fmt: skip
    laserguard.export_model(pipe, tmp_path / "m.lgf", baseline=params)
    model = laserguard.ForestModel.load(tmp_path / "m.lgf")
    x = np.random.default_rng(6).normal(size=(200, 3))
    x[150:, 1] += 8.0  # a step the unit's own baseline sees
    s = UnitScorer(model, 1).score(np.zeros(200), np.arange(200.0), x)
    fleet = s.fleet_decision - params.fleet_cut
    assert s.learning[:30].all() and not s.flagged[:30].any()
    np.testing.assert_array_equal(s.score[:30], np.maximum(fleet[:30], 0.0))
    np.testing.assert_array_equal(s.score[30:], np.fmin(fleet[30:], s.baseline_decision[30:]))
    np.testing.assert_array_equal(s.flagged[30:], s.score[30:] < 0)
    assert (s.stage[150:] == STAGE_BASELINE).all()
    assert (s.top_code[150:, 0] == 3 + 1 * 7 + 0).all()  # channel 1, level (7 kinds per channel)
