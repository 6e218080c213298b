"""Engine comparison: laserguard vs sklearn (and ONNX Runtime / treelite / tl2cgen if installed).

Run:  pytest benchmarks/test_bench_engines.py --benchmark-json=bench.json
Table: python benchmarks/engine_report.py   (runs this file and writes docs/benchmarks.md)
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from engines import (
    CONFIGS,
    ENGINES,
    N_FEATURES,
    Config,
    chosen_kernel,
    engine_available,
    fit_pipeline,
    scratch_dir,
)

BATCHES = {"frame 64x12": 64, "single row": 1, "batch 10000": 10_000}


@functools.cache
def fitted(config: Config):  # type: ignore[no-untyped-def]
    return fit_pipeline(config)


@functools.cache
def scorer(config: Config, engine: str):  # type: ignore[no-untyped-def]
    try:
        return ENGINES[engine](fitted(config), scratch_dir())
    except Exception as exc:  # an engine that cannot take this model is a result, not a crash
        return exc


def batch(rows: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.normal(size=(rows, N_FEATURES)) * np.arange(1, N_FEATURES + 1) * 1.3 + 3.0


def _cases():  # type: ignore[no-untyped-def]
    for config in CONFIGS:
        for batch_name in BATCHES:
            # 10k-row batches and single rows only on the headline config keep the run short.
            if batch_name != "frame 64x12" and config.name != "300 trees, psi=256":
                continue
            for engine in ENGINES:
                # Forced kernels differ only in how batches of 16 rows are walked.
                if ", kernel " in engine and batch_name != "frame 64x12":
                    continue
                yield pytest.param(config, batch_name, engine, id=f"{config.name}|{batch_name}|{engine}")


@pytest.mark.parametrize(("config", "batch_name", "engine"), list(_cases()))
def test_engine(benchmark, config: Config, batch_name: str, engine: str) -> None:  # type: ignore[no-untyped-def]
    if not engine_available(engine):
        pytest.skip(f"{engine} not installed (pip install '.[bench]')")
    X = batch(BATCHES[batch_name])
    score = scorer(config, engine)
    if isinstance(score, Exception):
        pytest.skip(f"{engine} cannot convert this model: {type(score).__name__}: {score}")
    reference = fitted(config).decision_function(X)
    got = score(X)
    benchmark.group = f"{config.name} | {batch_name}"
    benchmark.extra_info.update(
        engine=engine,
        config=config.name,
        batch=batch_name,
        max_abs_delta=float(np.max(np.abs(got - reference))),
        bitwise_fraction=float(np.mean(got.view(np.int64) == reference.view(np.int64))),
        labels_agree=bool(np.array_equal(got < 0, reference < 0)),
        kernel=chosen_kernel(score) if engine == "laserguard" else None,
    )
    benchmark(score, X)


def _evict_caches(buffer: np.ndarray) -> None:
    buffer += 1.0  # touch 64 MiB so the model's nodes leave L1/L2


@pytest.mark.parametrize("engine", ["laserguard", "sklearn"])
def test_engine_cold_cache(benchmark, engine: str) -> None:  # type: ignore[no-untyped-def]
    config = CONFIGS[1]
    X = batch(64)
    score = scorer(config, engine)
    buffer = np.zeros(8 << 20)
    benchmark.group = f"{config.name} | frame 64x12 | cold cache"
    benchmark.extra_info.update(engine=engine, config=config.name, batch="frame 64x12 (cold cache)")
    benchmark.pedantic(score, args=(X,), setup=lambda: _evict_caches(buffer), rounds=200, iterations=1)
