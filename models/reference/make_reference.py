"""Regenerate the committed reference model (format stability check, tests/test_reference_model.py).

    python models/reference/make_reference.py

Writes, next to this script:
  reference.lgf            Pipeline(StandardScaler, IsolationForest(25 trees)) on 4 features
  input.npy                52 x 4 float64 rows: training-like, NaN, split thresholds, extremes
  expected_decision.npy    sklearn's decision_function on input.npy (float64)
  expected_depths.npy      sklearn's summed path lengths on input.npy (float64, CPU independent)

Everything derives from fixed seeds, so with the same sklearn version the files come out
byte for byte identical. Regenerating is a format change: do it only together with a
model format version bump.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.ensemble._iforest import _parallel_compute_tree_depths
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

HERE = Path(__file__).resolve().parent
FEATURE_NAMES = ["power_w", "temperature_c", "current_a", "wavelength_nm"]


def training_data() -> np.ndarray:
    rng = np.random.default_rng(20260101)
    centre = np.array([40.0, 25.0, 1.5, 1064.0])
    spread = np.array([2.0, 0.8, 0.05, 0.02])
    return centre + spread * rng.normal(size=(400, 4))


def build_estimator() -> Pipeline:
    forest = IsolationForest(n_estimators=25, max_samples=128, contamination=0.1, random_state=7)
    return Pipeline([("scaler", StandardScaler()), ("model", forest)]).fit(training_data())


def build_input(estimator: Pipeline) -> np.ndarray:
    rng = np.random.default_rng(99)
    train = training_data()
    X = train[rng.integers(0, len(train), 30)] + rng.normal(scale=0.5, size=(30, 4))
    X[2, 1] = np.nan
    X[5] = np.nan
    X[7, [0, 3]] = np.nan
    X[11] *= 1.3  # clear outliers
    X[12] *= 0.6
    # Raw inputs that land exactly on the scaled split thresholds of the first tree, and on
    # their float64 neighbours.
    scaler, forest = estimator[0], estimator[-1]
    tree = forest.estimators_[0].tree_
    inner = np.flatnonzero(tree.children_left != -1)[:6]
    extra = []
    for node in inner:
        j = tree.feature[node]
        raw = tree.threshold[node] * scaler.scale_[j] + scaler.mean_[j]
        for value in (raw, np.nextafter(raw, np.inf), np.nextafter(raw, -np.inf)):
            row = scaler.mean_.copy()
            row[j] = value
            extra.append(row)
    extreme = np.array(
        [
            [1e300, 25.0, 1.5, 1064.0],
            [40.0, -1e300, 1.5, 1064.0],
            [5e-324, 25.0, -5e-324, 1064.0],
            [3.5e38, 25.0, 1.5, 1e-300],
        ]
    )
    return np.vstack([X, np.array(extra)[:18], extreme])


def sklearn_depths(estimator: Pipeline, X: np.ndarray) -> np.ndarray:
    """sklearn's per-row path-length sums, via sklearn's own helper (as in _compute_score_samples)."""
    forest = estimator[-1]
    X32 = estimator[0].transform(X).astype(np.float32)
    depths = np.zeros(len(X), order="f")
    lock = threading.Lock()
    for i, tree in enumerate(forest.estimators_):
        _parallel_compute_tree_depths(
            tree,
            X32,
            None,
            forest._decision_path_lengths[i],
            forest._average_path_length_per_tree[i],
            depths,
            lock,
        )
    return depths


def export_reference(estimator: Pipeline, path: Path) -> str:
    from laserguard import export_model, hash_training_data

    return export_model(
        estimator,
        path,
        feature_names=FEATURE_NAMES,
        training_data_sha256=hash_training_data(training_data()),
        extra_metadata={"purpose": "format stability reference (models/reference/make_reference.py)"},
    )


def main() -> None:
    from laserguard import ForestModel

    estimator = build_estimator()
    export_reference(estimator, HERE / "reference.lgf")
    X = build_input(estimator)
    with np.errstate(over="ignore"):
        expected = estimator.decision_function(X)
        depths = sklearn_depths(estimator, X)
    np.save(HERE / "input.npy", X)
    np.save(HERE / "expected_decision.npy", expected)
    np.save(HERE / "expected_depths.npy", depths)
    ours = ForestModel.load(HERE / "reference.lgf").decision_function(X)
    same = int(np.sum(ours.view(np.int64) == expected.view(np.int64)))
    print(f"wrote {HERE}: {len(X)} rows, laserguard bitwise equal to sklearn on {same}/{len(X)}")


if __name__ == "__main__":
    main()
