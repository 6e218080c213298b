"""Scoring engines compared in the benchmarks, each behind the same tiny interface.

An engine is built from a fitted Pipeline(StandardScaler, IsolationForest) and returns a
callable mapping a float64 matrix to sklearn's decision_function values. Optional engines
(ONNX Runtime, treelite GTIL, tl2cgen) are skipped when their packages are missing.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import laserguard

Scorer = Callable[[np.ndarray], np.ndarray]
N_TRAIN = 2000
N_FEATURES = 12


@dataclass(frozen=True)
class Config:
    name: str
    n_estimators: int
    max_samples: int | float | str
    max_features: float = 1.0


CONFIGS = [
    Config("100 trees, psi=256", 100, 256),
    Config("300 trees, psi=256", 300, 256),
    Config("300 trees, max_samples=0.8N", 300, 0.8),
    Config("300 trees, psi=256, max_features=0.6", 300, 256, 0.6),
]


def training_data(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(N_TRAIN, N_FEATURES)) * np.arange(1, N_FEATURES + 1) + 3.0


def fit_pipeline(config: Config, seed: int = 0) -> Pipeline:
    forest = IsolationForest(
        n_estimators=config.n_estimators,
        max_samples=config.max_samples,
        max_features=config.max_features,
        random_state=seed,
    )
    return Pipeline([("scaler", StandardScaler()), ("model", forest)]).fit(training_data(seed))


def _exported(pipeline: Pipeline, workdir: str) -> laserguard.ForestModel:
    path = os.path.join(workdir, "model.lgf")
    laserguard.export_model(pipeline, path)
    return laserguard.ForestModel.load(path)


def laserguard_engine(pipeline: Pipeline, workdir: str) -> Scorer:
    """As shipped: the kernel the load-time calibration chose on this CPU."""
    return _exported(pipeline, workdir).decision_function


def laserguard_libm_engine(pipeline: Pipeline, workdir: str) -> Scorer:
    return _exported(pipeline, workdir).decision_function_native


def laserguard_kernel_engine(kernel: str) -> Callable[[Pipeline, str], Scorer]:
    """One batch kernel forced, to show what the calibration chose between."""

    def build(pipeline: Pipeline, workdir: str) -> Scorer:
        model = _exported(pipeline, workdir)
        if kernel not in model.supported_kernels:
            raise RuntimeError(f"kernel {kernel} is not available on this CPU")
        model.use_kernel(kernel)
        return model.decision_function

    return build


def chosen_kernel(score: Scorer) -> str | None:
    model = getattr(score, "__self__", None)
    return str(model.kernel) if isinstance(model, laserguard.ForestModel) else None


def sklearn_engine(pipeline: Pipeline, workdir: str) -> Scorer:
    return pipeline.decision_function


def onnxruntime_engine(pipeline: Pipeline, workdir: str) -> Scorer:
    import onnxruntime as ort
    from skl2onnx import to_onnx

    onx = to_onnx(pipeline, training_data()[:1].astype(np.float32), target_opset={"": 17, "ai.onnx.ml": 3})
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(onx.SerializeToString(), options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    score_index = [o.name for o in session.get_outputs()].index("scores")

    def score(X: np.ndarray) -> np.ndarray:
        out = session.run(None, {input_name: X.astype(np.float32)})[score_index]
        return np.asarray(out, dtype=np.float64).ravel()

    return score


def _treelite_parts(pipeline: Pipeline) -> tuple[StandardScaler, IsolationForest, object]:
    import treelite.sklearn

    scaler, forest = pipeline[0], pipeline[-1]
    return scaler, forest, treelite.sklearn.import_model(forest)


def treelite_gtil_engine(pipeline: Pipeline, workdir: str) -> Scorer:
    import treelite

    scaler, forest, model = _treelite_parts(pipeline)
    offset = forest.offset_

    def score(X: np.ndarray) -> np.ndarray:
        raw = treelite.gtil.predict(model, scaler.transform(X).astype(np.float32), nthread=1)
        return -np.asarray(raw, dtype=np.float64).ravel() - offset

    return score


def tl2cgen_engine(pipeline: Pipeline, workdir: str) -> Scorer:
    import tl2cgen

    scaler, forest, model = _treelite_parts(pipeline)
    libpath = os.path.join(workdir, "tl2cgen_model.so")
    tl2cgen.export_lib(model, toolchain="gcc", libpath=libpath, params={"parallel_comp": 8}, verbose=False)
    predictor = tl2cgen.Predictor(libpath, nthread=1, verbose=False)
    offset = forest.offset_

    def score(X: np.ndarray) -> np.ndarray:
        raw = predictor.predict(tl2cgen.DMatrix(scaler.transform(X).astype(np.float32)))
        return -np.asarray(raw, dtype=np.float64).ravel() - offset

    return score


ENGINES: dict[str, Callable[[Pipeline, str], Scorer]] = {
    "laserguard": laserguard_engine,
    "laserguard, kernel portable": laserguard_kernel_engine("portable"),
    "laserguard, kernel avx512_gather": laserguard_kernel_engine("avx512_gather"),
    "laserguard, kernel avx512_blend": laserguard_kernel_engine("avx512_blend"),
    "laserguard (libm pow)": laserguard_libm_engine,
    "sklearn": sklearn_engine,
    "onnxruntime": onnxruntime_engine,
    "treelite GTIL": treelite_gtil_engine,
    "tl2cgen": tl2cgen_engine,
}

OPTIONAL_MODULES = {
    "onnxruntime": ("onnxruntime", "skl2onnx"),
    "treelite GTIL": ("treelite",),
    "tl2cgen": ("treelite", "tl2cgen"),
}


def engine_available(name: str) -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in OPTIONAL_MODULES.get(name, ()))


def scratch_dir() -> str:
    return tempfile.mkdtemp(prefix="laserguard-bench-")
