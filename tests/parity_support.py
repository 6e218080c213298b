"""Shared by the parity tests: fit real sklearn models, export them, and compare with sklearn.

Nothing here re-derives sklearn's formulas: the reference path-length sums are computed by
calling sklearn's own private helpers on the input sklearn itself validated.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.ensemble._iforest import _average_path_length, _parallel_compute_tree_depths
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import validate_data

from laserguard import ForestModel, export_model

TOLERANCE = 1e-12
F32_MAX = float(np.finfo(np.float32).max)

# Values that stress the float64 -> float32 boundary and the comparisons.
SPECIAL_VALUES = np.array(
    [
        0.0,
        -0.0,
        1e300,
        -1e300,
        1e-300,
        -1e-300,
        5e-324,  # smallest float64 subnormal
        -5e-324,
        2.2250738585072014e-308,  # smallest normal float64
        1e-45,  # float32 subnormal range
        1.401298464324817e-45,  # smallest float32 subnormal
        F32_MAX,
        -F32_MAX,
        np.nextafter(F32_MAX, np.inf),  # rounds to FLT_MAX in float32
        3.4028235677973366e38,  # just past the float32 rounding boundary -> inf
        3.5e38,
        -3.5e38,
        1.7976931348623157e308,
        16777217.0,  # 2**24 + 1: not representable in float32
        0.1,
        1.0000000596046448,  # halfway between 1 and the next float32 (ties to even)
    ]
)
NON_FINITE = np.array([np.nan, np.inf, -np.inf])


@dataclass(frozen=True)
class ForestConfig:
    """Everything that determines a fitted model (the key of the model cache)."""

    n_estimators: int = 10
    max_samples: int | float | str = "auto"
    max_features: int | float = 1.0
    bootstrap: bool = False
    contamination: float | str = "auto"
    scaler: str = "none"  # none | pipeline_only_forest | standard | no_mean | no_std | neither
    n_features: int = 4
    n_train: int = 300
    train_kind: str = "normal"  # normal | ties | nan | wide | huge
    seed: int = 0
    # > 0: first fit this many trees on other data, then grow to n_estimators (warm_start).
    grown_from: int = 0

    def training_data(self) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        X = rng.normal(size=(self.n_train, self.n_features)) * rng.uniform(0.5, 20, self.n_features)
        X += rng.uniform(-50, 50, self.n_features)
        if self.train_kind == "ties":  # duplicate values: leaves with n_node_samples > 1
            X = np.round(X / 10.0)
        elif self.train_kind == "nan":  # trees learn missing_go_to_left
            X[rng.random(X.shape) < 0.1] = np.nan
        elif self.train_kind == "wide":  # huge and tiny magnitudes in training
            X *= np.logspace(-30, 30, self.n_features)
        elif self.train_kind == "huge":  # beyond float32 range: mean_/scale_ overflow in float32
            X[:, 0] *= 1e38
            X[:, -1] *= 1e-42
        return X

    def estimator(self) -> Any:
        forest = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=self.max_samples,
            max_features=self.max_features,
            bootstrap=self.bootstrap,
            contamination=self.contamination,
            random_state=self.seed,
            warm_start=self.grown_from > 0,
        )
        if self.scaler == "none":
            return forest
        if self.scaler == "pipeline_only_forest":
            return Pipeline([("scaler", "passthrough"), ("model", forest)])
        with_mean = self.scaler in ("standard", "no_std")
        with_std = self.scaler in ("standard", "no_mean")
        return Pipeline(
            [("scaler", StandardScaler(with_mean=with_mean, with_std=with_std)), ("model", forest)]
        )


@dataclass
class FittedCase:
    config: ForestConfig
    estimator: Any
    model: ForestModel
    forest: IsolationForest
    scaler: StandardScaler | None
    train: np.ndarray
    # Per input column: float64 inputs that land on, next to, or round onto split thresholds.
    threshold_inputs: list[np.ndarray]


def forest_param(estimator: Any, name: str) -> str:
    return name if isinstance(estimator, IsolationForest) else f"model__{name}"


def split_pipeline(estimator: Any) -> tuple[StandardScaler | None, IsolationForest]:
    if isinstance(estimator, IsolationForest):
        return None, estimator
    scaler = estimator.steps[0][1]
    return (scaler if isinstance(scaler, StandardScaler) else None), estimator.steps[-1][1]


def _f32_neighbours(values: np.ndarray) -> np.ndarray:
    """Threshold t -> t, float32(t), its float32 neighbours, and float64 values rounding to float32(t)."""
    t64 = values[np.isfinite(values)]
    with np.errstate(over="ignore"):
        t32 = t64.astype(np.float32)
    up32 = np.nextafter(t32, np.float32(np.inf))
    down32 = np.nextafter(t32, np.float32(-np.inf))
    t32d, up, down = t32.astype(np.float64), up32.astype(np.float64), down32.astype(np.float64)
    # Midpoints between float32 neighbours are the float64 rounding boundaries (ties to even).
    mid_up, mid_down = (t32d + up) / 2, (t32d + down) / 2
    parts = [
        t64,
        np.nextafter(t64, np.inf),
        np.nextafter(t64, -np.inf),
        t32d,
        up,
        down,
        mid_up,
        mid_down,
        np.nextafter(mid_up, -np.inf),
        np.nextafter(mid_down, np.inf),
        np.nextafter(mid_up, np.inf),
        np.nextafter(mid_down, -np.inf),
    ]
    out = np.concatenate(parts)
    return out[np.isfinite(out)]


def _threshold_inputs(
    forest: IsolationForest, scaler: StandardScaler | None, n_features: int
) -> list[np.ndarray]:
    per_column: list[list[np.ndarray]] = [[] for _ in range(n_features)]
    subsets = forest._max_features != n_features
    for tree, columns in zip(forest.estimators_, forest.estimators_features_, strict=True):
        inner = tree.tree_.children_left != -1
        local = tree.tree_.feature[inner]
        glob = np.asarray(columns)[local] if subsets else local
        for j in range(n_features):
            per_column[j].append(tree.tree_.threshold[inner][glob == j])
    out = []
    for j in range(n_features):
        candidates = _f32_neighbours(np.concatenate(per_column[j]) if per_column[j] else np.zeros(0))
        if scaler is not None and candidates.size:
            # Map scaled-space candidates back to raw inputs, plus float64 neighbours of those
            # (the exact preimage rarely exists).
            mean = scaler.mean_[j] if scaler.with_mean else 0.0
            scale = scaler.scale_[j] if scaler.with_std else 1.0
            with np.errstate(over="ignore", invalid="ignore"):
                raw = candidates * scale + mean
            raw = raw[np.isfinite(raw)]
            candidates = np.concatenate(
                [raw, np.nextafter(raw, np.inf), np.nextafter(raw, -np.inf), candidates]
            )
        out.append(np.unique(candidates) if candidates.size else np.zeros(1))
    return out


class ModelCache:
    """Fits each ForestConfig once per test module and keeps the exported model."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cases: dict[ForestConfig, FittedCase] = {}

    def get(self, config: ForestConfig) -> FittedCase:
        if config not in self._cases:
            train = config.training_data()
            estimator = config.estimator()
            with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore"):
                warnings.simplefilter("ignore")  # max_samples > n_samples, overflow in casts
                if config.grown_from:
                    estimator.set_params(**{forest_param(estimator, "n_estimators"): config.grown_from})
                    estimator.fit(train[: len(train) // 2] * 2)
                    estimator.set_params(**{forest_param(estimator, "n_estimators"): config.n_estimators})
                estimator.fit(train)
            path = self.directory / f"model{len(self._cases)}.lgf"
            export_model(estimator, path)
            scaler, forest = split_pipeline(estimator)
            self._cases[config] = FittedCase(
                config=config,
                estimator=estimator,
                model=ForestModel.load(path),
                forest=forest,
                scaler=scaler,
                train=train,
                threshold_inputs=_threshold_inputs(forest, scaler, config.n_features),
            )
        return self._cases[config]


def build_input(
    case: FittedCase, seed: int, n_rows: int, special_rate: float, non_finite: bool
) -> np.ndarray:
    """Rows mixing training-like values, threshold-derived values and extreme values."""
    rng = np.random.default_rng(seed)
    n_features = case.config.n_features
    finite_train = np.where(np.isfinite(case.train), case.train, 0.0)
    X = finite_train[rng.integers(0, len(case.train), n_rows)] * rng.uniform(0.5, 1.5, (n_rows, n_features))
    for j in range(n_features):
        at_threshold = rng.random(n_rows) < 0.5
        X[at_threshold, j] = rng.choice(case.threshold_inputs[j], int(at_threshold.sum()))
    special = rng.random(X.shape) < special_rate
    X[special] = rng.choice(SPECIAL_VALUES, int(special.sum()))
    if non_finite:
        bad = rng.random(X.shape) < 0.05
        X[bad] = rng.choice(NON_FINITE, int(bad.sum()))
    return X


def sklearn_depths(case: FittedCase, X: np.ndarray) -> np.ndarray:
    """sklearn's per-row path-length sums, computed by sklearn's own code path."""
    forest = case.forest
    with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow casting huge values to float32
        Xs = case.scaler.transform(X) if case.scaler is not None else X
        X32 = validate_data(
            forest, Xs, accept_sparse="csr", dtype=np.float32, reset=False, ensure_all_finite=False
        )
    subsets = forest._max_features != X32.shape[1]
    depths = np.zeros(X32.shape[0], order="f")
    lock = threading.Lock()
    for i, (tree, features) in enumerate(zip(forest.estimators_, forest.estimators_features_, strict=True)):
        _parallel_compute_tree_depths(
            tree,
            X32,
            features if subsets else None,
            forest._decision_path_lengths[i],
            forest._average_path_length_per_tree[i],
            depths,
            lock,
        )
    return depths


@dataclass
class ParityStats:
    """Accumulated over a test session and printed in the terminal summary."""

    rows: int = 0
    decision_bitwise: int = 0
    score_bitwise: int = 0
    depth_bitwise: int = 0
    native_bitwise: int = 0
    max_delta: float = 0.0
    max_native_delta: float = 0.0
    raised_alike: int = 0
    configs: set[ForestConfig] = field(default_factory=set)

    def lines(self) -> list[str]:
        if not self.rows:
            return []

        def pct(n: int) -> str:
            return f"{n}/{self.rows} ({100.0 * n / self.rows:.2f} %)"

        return [
            f"models: {len(self.configs)}, rows compared: {self.rows}, "
            f"inputs where both raised: {self.raised_alike}",
            f"decision_function max |delta| {self.max_delta:.3e}, "
            f"bitwise identical {pct(self.decision_bitwise)}",
            f"score_samples bitwise identical {pct(self.score_bitwise)}",
            f"path-length sums bitwise identical {pct(self.depth_bitwise)}",
            f"decision_function_native max |delta| {self.max_native_delta:.3e}, "
            f"bitwise identical {pct(self.native_bitwise)}",
        ]


STATS = ParityStats()
# Free-form measurements other test modules want shown in the terminal summary.
NOTES: list[str] = []


def bitwise_equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64).view(np.int64) == np.asarray(b, dtype=np.float64).view(np.int64)


def call(fn: Any, X: np.ndarray) -> tuple[Any, BaseException | None]:
    with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # sklearn's float32 cast of huge values
        try:
            return fn(X), None
        except Exception as exc:  # the comparison is the point: any exception type
            return None, exc


def assert_parity(case: FittedCase, X: np.ndarray) -> None:
    """laserguard equals sklearn on X: values within TOLERANCE, same labels, same exceptions."""
    STATS.configs.add(case.config)
    est, model = case.estimator, case.model
    for method in ("decision_function", "score_samples", "predict"):
        expected, sk_exc = call(getattr(est, method), X)
        got, lg_exc = call(getattr(model, method), X)
        if sk_exc is not None:
            assert lg_exc is not None, f"sklearn raised {sk_exc!r} on {method} but laserguard returned {got}"
            assert type(lg_exc) is type(sk_exc), f"{method}: sklearn raised {sk_exc!r}, laserguard {lg_exc!r}"
            _, native_exc = call(model.decision_function_native, X)
            assert type(native_exc) is type(sk_exc), f"native: sklearn raised {sk_exc!r}, got {native_exc!r}"
            if method == "predict":
                STATS.raised_alike += 1
            continue
        assert lg_exc is None, f"laserguard raised {lg_exc!r} on {method} where sklearn returned {expected}"
        assert got.shape == expected.shape
        if method == "predict":
            np.testing.assert_array_equal(got, expected)
            continue
        delta = np.abs(got - expected)
        assert np.all(delta <= TOLERANCE), f"{method}: max |delta| {delta.max():.3e} at row {delta.argmax()}"
        if method == "score_samples":
            STATS.score_bitwise += int(bitwise_equal(got, expected).sum())
            continue
        # decision_function
        STATS.rows += len(X)
        STATS.max_delta = max(STATS.max_delta, float(delta.max()))
        STATS.decision_bitwise += int(bitwise_equal(got, expected).sum())

        depths = sklearn_depths(case, X)
        # Sanity of the reference itself: these depths give sklearn's own scores.
        with np.errstate(over="ignore"):
            denominator = len(case.forest.estimators_) * _average_path_length([case.forest._max_samples])
            rebuilt = -(
                2 ** (-np.divide(depths, denominator, out=np.ones_like(depths), where=denominator != 0))
            )
        np.testing.assert_array_equal(rebuilt - case.forest.offset_, expected)
        ours = model.path_length_sums(X)
        same = bitwise_equal(ours, depths)
        STATS.depth_bitwise += int(same.sum())
        assert same.all(), f"path-length sums differ at rows {np.flatnonzero(~same)[:10]}"

        native, native_exc = call(model.decision_function_native, X)
        assert native_exc is None, f"decision_function_native raised {native_exc!r}"
        native_delta = np.abs(native - expected)
        assert np.all(native_delta <= TOLERANCE), f"native: max |delta| {native_delta.max():.3e}"
        STATS.max_native_delta = max(STATS.max_native_delta, float(native_delta.max()))
        STATS.native_bitwise += int(bitwise_equal(native, expected).sum())
