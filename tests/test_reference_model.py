"""Format stability: the committed reference model must keep loading and scoring byte for byte.

models/reference/ holds a .lgf written by make_reference.py, a small input (with NaN,
split thresholds and extreme values) and sklearn's outputs on it at the time it was made.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import sklearn
from sklearn.ensemble._iforest import _average_path_length

from laserguard import ForestModel

REFERENCE = Path(__file__).resolve().parent.parent / "models" / "reference"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_reference", REFERENCE / "make_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def model() -> ForestModel:
    return ForestModel.load(REFERENCE / "reference.lgf")


@pytest.fixture(scope="module")
def X() -> np.ndarray:
    return np.load(REFERENCE / "input.npy", allow_pickle=False)


def test_committed_files_are_small() -> None:
    files = {p.name: p.stat().st_size for p in REFERENCE.iterdir() if p.is_file()}
    assert {"reference.lgf", "input.npy", "expected_decision.npy", "expected_depths.npy"} <= set(files)
    assert sum(files.values()) < 100_000


def test_reference_file_parses_with_its_metadata(model: ForestModel, X: np.ndarray) -> None:
    assert (model.n_trees, model.n_features) == (25, 4)
    assert model.feature_names == ("power_w", "temperature_c", "current_a", "wavelength_nm")
    meta = model.metadata
    assert meta["format"] == "laserguard-forest"
    assert meta["estimator"] == "Pipeline" and meta["has_scaler"] is True
    assert meta["params"]["n_estimators"] == 25 and meta["params"]["max_samples"] == 128
    assert meta["params"]["contamination"] == 0.1 and meta["max_samples_"] == 128
    assert meta["sklearn_version"] == "1.9.1"
    assert len(meta["training_data_sha256"]) == 64
    assert meta["model_version"] == model.version
    assert X.shape == (52, 4) and np.isnan(X).any()


def test_path_length_sums_byte_for_byte(model: ForestModel, X: np.ndarray) -> None:
    """Routing and leaf values: pure additions, identical on every CPU."""
    expected = np.load(REFERENCE / "expected_depths.npy", allow_pickle=False)
    assert model.path_length_sums(X).tobytes() == expected.tobytes()


def test_decision_function_byte_for_byte(model: ForestModel, X: np.ndarray) -> None:
    expected = np.load(REFERENCE / "expected_decision.npy", allow_pickle=False)
    depths = np.load(REFERENCE / "expected_depths.npy", allow_pickle=False)
    ours = model.decision_function(X)
    assert ours.dtype == expected.dtype == np.float64
    # numpy's 2**x is SIMD on some CPUs and libm on others (1 ulp apart in a few % of rows,
    # design §5), so sklearn's own output is CPU dependent. Rows where this CPU's pow gives
    # the committed value must match byte for byte; any other row may differ by that 1 ulp.
    meta = model.metadata
    denominator = meta["n_estimators"] * _average_path_length([meta["max_samples_"]])  # as sklearn does
    this_cpu = -(2 ** (-(depths / denominator))) - model.offset
    same_pow = this_cpu.view(np.int64) == expected.view(np.int64)
    assert same_pow.mean() > 0.9
    assert ours[same_pow].tobytes() == expected[same_pow].tobytes()
    np.testing.assert_array_max_ulp(ours, expected, maxulp=2)
    np.testing.assert_array_equal(model.predict(X), np.where(expected < 0, -1, 1))


def test_native_decision_function_close(model: ForestModel, X: np.ndarray) -> None:
    expected = np.load(REFERENCE / "expected_decision.npy", allow_pickle=False)
    assert np.max(np.abs(model.decision_function_native(X) - expected)) <= 1e-12


@pytest.mark.skipif(sklearn.__version__ != "1.9.1", reason="the reference was fitted with sklearn 1.9.1")
def test_writer_reproduces_the_committed_bytes(tmp_path: Path) -> None:
    """Refitting with the same seeds and re-exporting gives exactly the committed file:
    the writer's format has not drifted."""
    generator = load_generator()
    estimator = generator.build_estimator()
    version = generator.export_reference(estimator, tmp_path / "again.lgf")
    assert version == ForestModel.load(REFERENCE / "reference.lgf").version
    assert (tmp_path / "again.lgf").read_bytes() == (REFERENCE / "reference.lgf").read_bytes()
    X = generator.build_input(estimator)
    assert X.tobytes() == np.load(REFERENCE / "input.npy").tobytes()
