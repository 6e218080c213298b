"""Exactness: laserguard's ForestModel versus sklearn 1.9's own IsolationForest (issue 2, item 4).

Hypothesis draws the model parameters and the inputs; inputs include split thresholds taken
from the fitted trees (and their float32 neighbours / float64 preimages), huge, tiny and
subnormal magnitudes, values beyond float32 range, NaN and +-inf. Every comparison goes
through ``parity_support.assert_parity``; the bitwise fractions are printed in pytest's
terminal summary (see conftest.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pytest
import sklearn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.utils._chunking import get_chunk_n_rows

from laserguard.model.numpy_power import power_loop
from parity_support import ForestConfig, ModelCache, assert_parity, bitwise_equal, build_input, sklearn_depths

# LASERGUARD_PARITY_SCALE=10 multiplies the number of examples for a thorough local run.
EXAMPLES_SCALE = float(os.environ.get("LASERGUARD_PARITY_SCALE", "1"))


def slow_ok(max_examples: int) -> settings:
    return settings(
        max_examples=max(1, round(max_examples * EXAMPLES_SCALE)),
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
        ],
    )


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelCache]:
    yield ModelCache(tmp_path_factory.mktemp("parity_models"))


def layouts(X: np.ndarray) -> Iterator[np.ndarray]:
    """The same logical matrix as float64/float32, C and F order, and strided views."""
    yield np.ascontiguousarray(X)
    yield np.asfortranarray(X)
    with np.errstate(over="ignore"):
        x32 = X.astype(np.float32)
    yield x32
    yield np.asfortranarray(x32)
    # Non-contiguous views, one with negative strides in both dimensions.
    padded = np.full((2 * X.shape[0], 3 * X.shape[1]), 7.0)
    padded[::2, ::3] = X
    yield padded[::2, ::3]
    reverse = np.full((2 * X.shape[0], 2 * X.shape[1]), -7.0)
    view = reverse[::-2, ::-2]
    view[...] = X
    yield view


@st.composite
def forest_configs(draw: st.DrawFn) -> ForestConfig:
    n_features = draw(st.integers(1, 6))
    n_train = draw(st.sampled_from([30, 300, 700]))
    # Mostly small forests (fast); sometimes the large ones.
    n_estimators = draw(st.one_of(st.integers(1, 12), st.integers(1, 12), st.sampled_from([60, 150, 500])))
    return ForestConfig(
        n_estimators=n_estimators,
        # int (incl. 1, and > 256 for deep trees, and > n_train which sklearn clips), float, 'auto'.
        max_samples=draw(
            st.one_of(
                st.just("auto"),
                st.integers(1, 4),
                st.integers(5, 800),
                st.floats(2.0 / n_train, 1.0),  # sklearn needs int(max_samples * n) >= 1
            )
        ),
        max_features=draw(st.one_of(st.just(1.0), st.floats(0.05, 1.0), st.integers(1, n_features))),
        bootstrap=draw(st.booleans()),
        contamination=draw(st.one_of(st.just("auto"), st.floats(0.01, 0.5))),
        scaler=draw(
            st.sampled_from(["none", "pipeline_only_forest", "standard", "no_mean", "no_std", "neither"])
        ),
        n_features=n_features,
        n_train=n_train,
        train_kind=draw(st.sampled_from(["normal", "ties", "nan", "wide", "huge"])),
        seed=draw(st.integers(0, 3)),
        grown_from=min(n_estimators, draw(st.sampled_from([0, 0, 0, 1, 5]))),
    )


@st.composite
def input_specs(draw: st.DrawFn) -> tuple[int, int, float, bool]:
    n_rows = draw(st.one_of(st.integers(1, 40), st.sampled_from([63, 64, 65, 129, 257, 1000])))
    return (
        draw(st.integers(0, 2**32 - 1)),
        n_rows,
        draw(st.sampled_from([0.0, 0.02, 0.2])),
        draw(st.booleans()),
    )


def free_floats(n_features: int) -> st.SearchStrategy[np.ndarray]:
    """A few rows of arbitrary float64 values, NaN and infinities included (hypothesis shrinks these)."""
    return hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 4), st.just(n_features)),
        elements=st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
    )


@slow_ok(45)
@given(config=forest_configs(), spec=input_specs(), data=st.data())
def test_random_configurations_match_sklearn(
    cache: ModelCache, config: ForestConfig, spec: tuple[int, int, float, bool], data: st.DataObject
) -> None:
    case = cache.get(config)
    seed, n_rows, special_rate, non_finite = spec
    X = build_input(case, seed, n_rows, special_rate, non_finite)
    X = np.vstack([X, data.draw(free_floats(config.n_features), label="free rows")])
    for layout in layouts(X):
        assert_parity(case, layout)


# Corner models that random drawing hits rarely, each checked against many inputs.
CORNER_CONFIGS = [
    ForestConfig(n_estimators=500, max_samples=256, n_features=6, n_train=700),
    ForestConfig(n_estimators=100, max_samples=700, n_features=5, n_train=700, scaler="standard"),  # deep
    ForestConfig(
        n_estimators=60, max_samples=0.9, max_features=0.5, bootstrap=True, n_features=6, n_train=700
    ),
    ForestConfig(n_estimators=40, max_features=2, contamination=0.1, scaler="standard", n_features=6),
    ForestConfig(n_estimators=30, max_samples=1, n_features=3),  # denominator 0: sklearn's score is -1
    ForestConfig(n_estimators=30, max_samples=2, n_features=3, contamination=0.3),
    ForestConfig(n_estimators=1, n_features=1, scaler="no_mean"),
    ForestConfig(n_estimators=50, train_kind="nan", max_features=0.5, scaler="standard", n_features=4),
    ForestConfig(n_estimators=50, train_kind="ties", bootstrap=True, contamination=0.05, n_features=3),
    ForestConfig(n_estimators=50, train_kind="wide", scaler="no_std", n_features=5),
    ForestConfig(n_estimators=30, train_kind="huge", scaler="standard", n_features=3),
    ForestConfig(n_estimators=30, train_kind="huge", n_features=3, max_features=0.7),
    ForestConfig(n_estimators=25, grown_from=10, max_samples=100, scaler="standard", contamination=0.2),
    # Depth 20 and a tree of > 65,536 nodes (no 16-bit node index can hold it).
    ForestConfig(n_estimators=2, max_samples=600_000, n_features=2, n_train=600_000),
]


@pytest.mark.parametrize(
    "config", CORNER_CONFIGS, ids=lambda c: f"{c.n_estimators}t-{c.max_samples}-{c.scaler}"
)
@slow_ok(6)
@given(spec=input_specs())
def test_corner_models_match_sklearn(
    cache: ModelCache, config: ForestConfig, spec: tuple[int, int, float, bool]
) -> None:
    case = cache.get(config)
    X = build_input(case, *spec)
    for layout in layouts(X):
        assert_parity(case, layout)


def test_the_large_tree_is_large(cache: ModelCache) -> None:
    case = cache.get(CORNER_CONFIGS[-1])
    assert max(e.tree_.node_count for e in case.forest.estimators_) > 65_536
    assert max(e.tree_.max_depth for e in case.forest.estimators_) == 20
    assert case.model.n_nodes == sum(e.tree_.node_count for e in case.forest.estimators_)


def test_every_threshold_and_its_float32_neighbours(cache: ModelCache) -> None:
    """Each threshold-derived value, fed alone in every column, routes exactly like sklearn."""
    for config in (CORNER_CONFIGS[2], CORNER_CONFIGS[3]):
        case = cache.get(config)
        values = np.unique(np.concatenate(case.threshold_inputs))
        X = np.repeat(values[:, None], config.n_features, axis=1)
        assert len(X) > 100  # the models really have thresholds to probe
        assert_parity(case, X)
        assert_parity(case, X.astype(np.float32))


def test_nan_routing_follows_missing_go_to_left(cache: ModelCache) -> None:
    """A model trained with NaN learns missing_go_to_left on both sides; NaN inputs follow it."""
    case = cache.get(CORNER_CONFIGS[7])
    sides = np.concatenate(
        [e.tree_.missing_go_to_left[e.tree_.children_left != -1] for e in case.forest.estimators_]
    )
    assert set(np.unique(sides)) == {0, 1}
    rng = np.random.default_rng(5)
    X = case.config.training_data()[:200].copy()
    X[rng.random(X.shape) < 0.4] = np.nan
    X[0] = np.nan
    assert_parity(case, X)


def test_sklearn_errors_are_raised_alike(cache: ModelCache) -> None:
    """Infinity through a scaler: sklearn raises ValueError, so must we (every layout)."""
    case = cache.get(CORNER_CONFIGS[3])
    X = build_input(case, 1, 10, 0.0, False)
    X[3, 2] = np.inf
    for layout in layouts(X):
        with pytest.raises(ValueError, match="infinity"):
            case.model.decision_function(layout)
        with pytest.raises(ValueError, match="infinity"):
            case.estimator.decision_function(layout)
    # Without a scaler sklearn accepts infinity (and 1e300, which becomes float32 inf).
    plain = cache.get(CORNER_CONFIGS[0])
    X = build_input(plain, 2, 10, 0.0, False)
    X[0, :] = np.inf
    X[1, :] = -np.inf
    X[2, :] = 1e300
    assert_parity(plain, X)


def test_sklearn_chunked_scoring(cache: ModelCache) -> None:
    """With a tiny working_memory sklearn scores in chunks of a few rows; nothing changes."""
    case = cache.get(CORNER_CONFIGS[2])
    X = build_input(case, 3, 3000, 0.02, True)
    with sklearn.config_context(working_memory=0.001):
        chunk_rows = get_chunk_n_rows(row_bytes=16 * case.forest._max_features, max_n_rows=len(X))
        assert chunk_rows < 100  # really chunked
        assert_parity(case, X)


@pytest.mark.parametrize(
    "config", [CORNER_CONFIGS[0], CORNER_CONFIGS[1], CORNER_CONFIGS[7]], ids=["psi256", "deep", "nan"]
)
def test_every_kernel_matches_sklearn_bit_for_bit(cache: ModelCache, config: ForestConfig) -> None:
    """Calibration may pick any kernel on a given CPU, so each one is held to sklearn's bits."""
    case = cache.get(config)
    X = build_input(case, 11, 257, 0.2, False)  # 16 blocks of 16 rows and a 1-row tail
    expected = case.estimator.decision_function(X)
    depths = sklearn_depths(case, X)
    chosen = case.model.kernel
    assert chosen in case.model.supported_kernels
    try:
        for kernel in case.model.supported_kernels:
            case.model.use_kernel(kernel)
            assert bitwise_equal(case.model.path_length_sums(X), depths).all(), kernel
            assert bitwise_equal(case.model.decision_function(X), expected).all(), kernel
    finally:
        case.model.use_kernel(chosen)


def test_unknown_or_unavailable_kernel_is_refused_by_name(cache: ModelCache) -> None:
    case = cache.get(CORNER_CONFIGS[3])
    with pytest.raises(ValueError, match="unknown forest kernel 'fastest' \\(known: portable, avx512_gather"):
        case.model.use_kernel("fastest")
    assert case.model.supported_kernels[0] == "portable"


def test_finish_without_numpys_power_loop_is_still_exact(cache: ModelCache) -> None:
    """If numpy's loop cannot be verified, decision_function finishes with numpy from Python."""
    case = cache.get(CORNER_CONFIGS[0])
    X = build_input(case, 3, 100, 0.02, False)
    one_call = case.model.decision_function(X)
    assert case.model._power is not None  # the single native call is what normally runs
    case.model._power = None
    try:
        assert bitwise_equal(case.model.decision_function(X), one_call).all()
        assert bitwise_equal(case.model.decision_function(X), case.estimator.decision_function(X)).all()
    finally:
        case.model._power = power_loop()


def test_a_single_row_is_exact(cache: ModelCache) -> None:
    case = cache.get(CORNER_CONFIGS[0])
    X = build_input(case, 5, 1, 0.0, False)
    assert bitwise_equal(case.model.decision_function(X), case.estimator.decision_function(X)).all()
