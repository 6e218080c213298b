"""An IsolationForest whose scoring runs in the exact C++ engine (for fast grid searches)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.sparse import issparse
from sklearn.ensemble import IsolationForest

from laserguard.model.export import export_model
from laserguard.model.forest import ForestModel
from laserguard.offline.shared_fits import SharedForestFits, active_shared_fits

# A full search exports a few GB of candidate forests; keep those files in memory when a
# tmpfs is available rather than on disk.
_SCRATCH_DIR = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def forest_engine(forest: IsolationForest) -> ForestModel:
    """Export a fitted forest to a temporary .lgf and load it into the C++ engine.

    Only the path lengths and the normalising constant of the result are meant to be used:
    during ``fit`` sklearn asks for scores before ``offset_`` exists, so a placeholder offset
    may be written to the file.
    """
    placeholder = not hasattr(forest, "offset_")
    if placeholder:
        forest.offset_ = -0.5
    try:
        with tempfile.TemporaryDirectory(prefix="laserguard_engine_", dir=_SCRATCH_DIR) as tmp:
            path = Path(tmp) / "candidate.lgf"
            export_model(forest, path)
            return ForestModel.load(path)
    finally:
        if placeholder:
            del forest.offset_


class EngineScoredIsolationForest(IsolationForest):  # type: ignore[misc]
    """sklearn's IsolationForest with ``_score_samples`` computed by the C++ engine.

    Tree building is sklearn's own; every score it computes (the contamination offset at
    fit time, ``score_samples``, ``decision_function``, ``predict``) comes from the exported
    trees, which the engine evaluates bitwise equal to sklearn. Inside a
    ``sharing_forest_fits()`` block, candidates that differ only in n_estimators or
    contamination take their trees from one shared fit (laserguard.offline.shared_fits).
    Only the search uses this class: the model that is saved and shipped is a plain
    IsolationForest refitted with the same parameters and seed, which yields the same trees.
    """

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> EngineScoredIsolationForest:
        self._engine: ForestModel | None = None
        self._shared: tuple[SharedForestFits, tuple[str, str]] | None = None
        shared = active_shared_fits()
        key = None
        if shared is not None and sample_weight is None and isinstance(X, np.ndarray):
            key = shared.key(X, self.get_params(deep=False))
        if shared is None or key is None:
            super().fit(X, y, sample_weight)
            return self
        shared.fit_prefix(self, key, X)
        self._shared = (shared, key)
        if self.contamination == "auto":
            self.offset_ = -0.5
        else:
            # As sklearn's fit does, on the float32 copy of X sklearn would have made.
            training_scores = self._score_samples(np.asarray(X, dtype=np.float32))
            self.offset_ = np.percentile(training_scores, 100.0 * self.contamination)
        return self

    def _score_samples(self, X: Any) -> npt.NDArray[np.float64]:
        if issparse(X):
            raise TypeError("EngineScoredIsolationForest scores dense arrays only, got a sparse matrix")
        shared: tuple[SharedForestFits, tuple[str, str]] | None = getattr(self, "_shared", None)
        if shared is None:
            return self._engine_scores(X)
        fits, key = shared
        return fits.score_samples(key, len(self.estimators_), np.asarray(X), lambda: self._engine_scores(X))

    def _engine_scores(self, X: Any) -> npt.NDArray[np.float64]:
        engine = getattr(self, "_engine", None)
        if engine is None:
            engine = self._engine = forest_engine(self)
        return engine.score_samples(X)
