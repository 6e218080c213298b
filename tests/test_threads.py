"""Concurrent scoring: several threads share one ForestModel and get exactly the serial results."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from laserguard import ForestModel, export_model
from parity_support import NOTES, bitwise_equal

N_THREADS = 6


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Pipeline, ForestModel, bytes]:
    rng = np.random.default_rng(11)
    train = rng.normal(size=(600, 5))
    est = make_pipeline(
        StandardScaler(), IsolationForest(n_estimators=60, max_samples=300, max_features=0.8, random_state=4)
    )
    est.fit(train)
    path = tmp_path_factory.mktemp("threads") / "m.lgf"
    export_model(est, path)
    return est, ForestModel.load(path), path.read_bytes()


def batches(n: int) -> list[np.ndarray]:
    """Inputs of different sizes, dtypes and layouts (each thread's scratch buffer differs)."""
    rng = np.random.default_rng(n)
    out = []
    for i in range(n):
        X = rng.normal(size=(int(rng.integers(1, 3000)), 5)) * 2
        X[rng.random(X.shape) < 0.02] = np.nan
        if i % 3 == 1:
            X = np.asfortranarray(X.astype(np.float32))
        elif i % 3 == 2:
            X = np.repeat(X, 2, axis=0)[::2]  # strided view
        out.append(X)
    return out


def run_concurrently(fn: Callable[[np.ndarray], np.ndarray], inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Calls fn on every input from N_THREADS threads, all released at once by a barrier."""
    barrier = threading.Barrier(N_THREADS)

    def worker(k: int) -> list[tuple[int, np.ndarray]]:
        barrier.wait()
        return [(i, fn(inputs[i])) for i in range(k, len(inputs), N_THREADS)]

    with ThreadPoolExecutor(N_THREADS) as pool:
        parts = list(pool.map(worker, range(N_THREADS)))
    results: list[np.ndarray] = [np.empty(0)] * len(inputs)
    for part in parts:
        for i, r in part:
            results[i] = r
    return results


@pytest.mark.parametrize(
    "method",
    ["decision_function", "score_samples", "predict", "path_length_sums", "decision_function_native"],
)
def test_concurrent_calls_equal_serial(fitted: tuple[Pipeline, ForestModel, bytes], method: str) -> None:
    _, model, _ = fitted
    inputs = batches(36)
    fn = getattr(model, method)
    serial = [fn(X) for X in inputs]
    for _ in range(2):
        concurrent = run_concurrently(fn, inputs)
        for X, a, b in zip(inputs, serial, concurrent, strict=True):
            assert a.shape == b.shape == (len(X),)
            assert bitwise_equal(a, b).all()


def test_concurrent_results_equal_sklearn(fitted: tuple[Pipeline, ForestModel, bytes]) -> None:
    est, model, _ = fitted
    inputs = batches(12)
    for X, ours in zip(inputs, run_concurrently(model.decision_function, inputs), strict=True):
        assert np.max(np.abs(ours - est.decision_function(X))) <= 1e-12


def test_all_threads_share_one_input_array(fitted: tuple[Pipeline, ForestModel, bytes]) -> None:
    _, model, _ = fitted
    X = batches(1)[0]
    expected = model.decision_function(X)
    results = run_concurrently(model.decision_function, [X] * (3 * N_THREADS))
    assert all(bitwise_equal(r, expected).all() for r in results)


def test_loading_while_others_score(fitted: tuple[Pipeline, ForestModel, bytes], tmp_path: Path) -> None:
    """Loading models in some threads while others score: loaders get working, equal models."""
    _, model, raw = fitted
    X = batches(2)[1]
    expected = model.decision_function(X)

    def load_or_score(i: np.ndarray) -> np.ndarray:
        if int(i[0, 0]) % 2:
            return ForestModel.from_bytes(raw).decision_function(X)
        return model.decision_function(X)

    flags = [np.full((1, 1), float(i)) for i in range(4 * N_THREADS)]
    assert all(bitwise_equal(r, expected).all() for r in run_concurrently(load_or_score, flags))


def test_large_batches_from_many_threads(fitted: tuple[Pipeline, ForestModel, bytes]) -> None:
    _, model, _ = fitted
    big = np.random.default_rng(0).normal(size=(100_000, 5))
    expected = model.decision_function(big)
    results = run_concurrently(model.decision_function, [big] * N_THREADS)
    assert all(bitwise_equal(r, expected).all() for r in results)


def test_gil_is_released_while_scoring(fitted: tuple[Pipeline, ForestModel, bytes]) -> None:
    """Deterministic, no timing: with a huge switch interval CPython never forces the GIL
    from a thread, so the main thread can run while the scorer is inside a call only if that
    call released the GIL itself."""
    _, model, _ = fitted
    big = np.random.default_rng(1).normal(size=(300_000, 5))
    state = {"in_call": False}
    seen: list[bool] = []

    def score() -> None:
        state["in_call"] = True
        for _ in range(3):
            model.path_length_sums(big)
        state["in_call"] = False

    previous = sys.getswitchinterval()
    sys.setswitchinterval(100.0)
    try:
        scorer = threading.Thread(target=score)
        scorer.start()
        while scorer.is_alive():
            time.sleep(0.001)  # blocks without the GIL; waking up needs it back
            seen.append(state["in_call"])
        scorer.join()
    finally:
        sys.setswitchinterval(previous)
    assert any(seen), "the main thread never ran while the scorer was inside the C++ call"
    NOTES.append(f"GIL: main thread ran {sum(seen)} times while another thread was scoring in C++")
