"""ForestModel: load a .lgf model file and score with sklearn's exact semantics."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from laserguard import _core
from laserguard._core import ModelFormatError
from laserguard.model.baseline import BaselineParams
from laserguard.model.context import ContextParams
from laserguard.model.numpy_power import power_loop

FloatArray = npt.NDArray[np.float64]
_NATIVE_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class ForestModel:
    """An exported (StandardScaler +) IsolationForest, scored by the C++ core.

    ``decision_function``, ``score_samples`` and ``predict`` match sklearn's methods of
    the exported estimator bit for bit, each in one C++ call (GIL released): path-length sums
    equal sklearn's, and the final ``2 ** x`` runs numpy's own float64 power loop, which
    sklearn uses (laserguard.model.numpy_power). Where that loop cannot be verified, the
    finish falls back to numpy ufuncs from Python, slower but still exact.
    """

    def __init__(self, core: _core.ForestModel) -> None:
        self._core = core
        # Same 1-element float64 array sklearn divides by (n_estimators * c(max_samples_)).
        self._denominator = np.array([core.denominator], dtype=np.float64)
        self._offset = np.float64(core.offset)
        self._power = power_loop()
        # The C++ loader treats names and metadata as bytes; decode them here, once, so a
        # bad file fails at load time with ModelFormatError rather than on first use.
        try:
            self._feature_names = tuple(core.feature_names)
            metadata = json.loads(core.metadata_json) if core.metadata_json else {}
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError
            raise ModelFormatError(f"feature names or metadata are not valid UTF-8 JSON: {exc}") from None
        if not isinstance(metadata, dict):
            raise ModelFormatError(f"metadata must be a JSON object, got {type(metadata).__name__}")
        self._metadata: dict[str, Any] = metadata
        raw_baseline = core.baseline
        self._baseline = None if raw_baseline is None else BaselineParams.from_dict(raw_baseline)
        raw_context = core.context
        self._context = None if raw_context is None else ContextParams.from_dict(raw_context)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ForestModel:
        """Load and validate a model file; raises ModelFormatError if it is not sound."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"model file not found: {path!r}")
        core = _core.ForestModel.load(path)
        try:
            return cls(core)
        except ModelFormatError as exc:
            raise ModelFormatError(f"{path!r}: {exc}") from None

    @classmethod
    def from_bytes(cls, data: bytes) -> ForestModel:
        return cls(_core.ForestModel.from_bytes(data))

    @property
    def n_features(self) -> int:
        return int(self._core.n_features)

    @property
    def n_trees(self) -> int:
        return int(self._core.n_trees)

    @property
    def n_nodes(self) -> int:
        return int(self._core.n_nodes)

    @property
    def kernel(self) -> str:
        """The batch kernel in use: the fastest on this CPU, timed when the model was loaded."""
        return str(self._core.kernel)

    @property
    def supported_kernels(self) -> tuple[str, ...]:
        return tuple(self._core.supported_kernels)

    def use_kernel(self, name: str) -> None:
        """Walk batches with this kernel (all give the same bits; benchmarks compare them)."""
        self._core.use_kernel(name)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self._feature_names

    @property
    def offset(self) -> float:
        return float(self._offset)

    @property
    def core(self) -> _core.ForestModel:
        """The C++ model (for native scorers built on it)."""
        return self._core

    @property
    def baseline(self) -> BaselineParams | None:
        """The per-unit baseline stage (model format 2.0), None for a forest-only 1.0 file."""
        return self._baseline

    @property
    def context(self) -> ContextParams | None:
        """The context stage of detection engine v3 (model format 2.1/2.2), None before."""
        return self._context

    @property
    def format_version(self) -> tuple[int, int]:
        if self._context is not None:
            # As the writer decides it: 2.2 only when a 2.2 field is used (2.1 otherwise).
            return (2, 2) if any(self._context.gain_sd) or any(self._context.jump_scale) else (2, 1)
        return (1, 0) if self._baseline is None else (2, 0)

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self._metadata)

    @property
    def version(self) -> str:
        """Short model identifier: the file's metadata ``model_version`` or its content hash."""
        return str(self._metadata.get("model_version", "unversioned"))

    def _as_input(self, X: Any) -> np.ndarray:
        """Convert once at the boundary, choosing the dtype sklearn would compute in."""
        if type(X) is np.ndarray and X.dtype in _NATIVE_DTYPES and X.ndim == 2 and X.shape[0] > 0:
            return X  # the common case, checked first: a single row costs about 3 us in all
        scipy_sparse = sys.modules.get("scipy.sparse")  # no sparse matrix exists unless scipy is loaded
        if scipy_sparse is not None and scipy_sparse.issparse(X):
            # sklearn routes NaN differently for sparse input (no missing_go_to_left); refuse clearly.
            raise TypeError(f"sparse input ({type(X).__name__}) is not supported; pass a dense 2-D array")
        compute_dtype = np.float64 if self._core.has_scaler else np.float32
        dtypes = getattr(X, "dtypes", None)
        if not isinstance(X, np.ndarray) and isinstance(dtypes, Iterable):
            # A DataFrame with nullable (extension) columns holds pd.NA: convert it straight to
            # the compute dtype, NA -> NaN, as sklearn's check_array does.
            if any(not isinstance(d, np.dtype) for d in dtypes):
                X = X.astype(compute_dtype)
        arr = X if isinstance(X, np.ndarray) else np.asarray(X)
        if np.iscomplexobj(arr):  # casting would silently drop the imaginary part
            raise ValueError(f"Complex data not supported (dtype {arr.dtype})")
        if arr.dtype == np.float16 and self._core.has_scaler:
            raise TypeError("float16 input is not supported with a scaler; pass float32 or float64")
        if arr.dtype not in (np.float32, np.float64):
            # sklearn's StandardScaler computes in float64; a bare IsolationForest casts to float32.
            arr = arr.astype(compute_dtype)
        if arr.ndim == 2 and arr.shape[0] == 0:
            raise ValueError(
                f"Found array with 0 sample(s) (shape={arr.shape}) while a minimum of 1 is required"
            )
        return arr

    def path_length_sums(self, X: Any) -> FloatArray:
        """sklearn's ``depths``: each row's path length summed over all trees, in tree order."""
        return self._core.path_length_sums(self._as_input(X))  # type: ignore[no-any-return]

    def score_samples(self, X: Any) -> FloatArray:
        if self._power is not None:
            return self._core.score_samples(self._as_input(X), *self._power)  # type: ignore[no-any-return]
        return self._finish(self.path_length_sums(X))

    def decision_function(self, X: Any) -> FloatArray:
        if self._power is not None:
            return self._core.decision_function(self._as_input(X), *self._power)  # type: ignore[no-any-return]
        scores = self._finish(self.path_length_sums(X))
        np.subtract(scores, self._offset, out=scores)
        return scores

    def _finish(self, depths: FloatArray) -> FloatArray:
        """sklearn's `-2 ** (-depths / denominator)`, computed in place on `depths`.

        The fallback when numpy's power loop cannot be called from C++: same ufuncs on the
        same values as IsolationForest._compute_score_samples, so the bits are the same.
        """
        if self._denominator[0] != 0:
            np.divide(depths, self._denominator, out=depths)
        else:  # a single-sample forest: sklearn's `where=` leaves the ratio at 1
            depths.fill(1.0)
        np.negative(depths, out=depths)
        np.power(2.0, depths, out=depths)
        np.negative(depths, out=depths)
        return depths

    def decision_function_native(self, X: Any) -> FloatArray:
        """decision_function computed entirely in C++ (libm pow: within 2 ulp of sklearn)."""
        return self._core.decision_function(self._as_input(X))  # type: ignore[no-any-return]

    def feature_attribution(self, X: Any) -> npt.NDArray[np.float32]:
        """Per-row, per-feature local DIFFI attribution: larger = isolates the row sooner."""
        return self._core.feature_attribution(self._as_input(X))  # type: ignore[no-any-return]

    def top_features(self, X: Any, k: int = 3) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.float32]]:
        """Indices (int16) and weights (float32) of each row's k most contributing features."""
        attribution = self.feature_attribution(X)
        k = min(k, attribution.shape[1])
        order = np.argsort(-attribution, axis=1, kind="stable")[:, :k]
        return order.astype(np.int16), np.take_along_axis(attribution, order, axis=1)

    def predict(self, X: Any) -> npt.NDArray[np.int64]:
        """+1 for inliers, -1 for outliers, like sklearn's IsolationForest.predict."""
        decision = self.decision_function(X)
        labels = np.ones(decision.shape[0], dtype=np.int64)
        labels[decision < 0] = -1
        return labels

    def __repr__(self) -> str:
        return f"ForestModel(n_trees={self.n_trees}, n_features={self.n_features}, version={self.version!r})"
