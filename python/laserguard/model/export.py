"""Export a fitted sklearn IsolationForest (optionally behind a StandardScaler) to .lgf."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from laserguard import _core
from laserguard.model.baseline import BaselineParams
from laserguard.model.context import ContextParams

# scikit-learn is imported inside the functions: it takes ~1 s to import and the scoring
# services, which import laserguard but never export, should start without it.
if TYPE_CHECKING:
    from sklearn.ensemble import IsolationForest
    from sklearn.preprocessing import StandardScaler


def hash_training_data(X: Any) -> str:
    """sha256 over dtype, shape and C-order bytes of the training matrix (for model metadata)."""
    arr = np.ascontiguousarray(np.asarray(X))
    digest = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
    digest.update(arr.tobytes())
    return digest.hexdigest()


def split_estimator(estimator: Any) -> tuple[StandardScaler | None, IsolationForest]:
    """Return (scaler or None, forest), refusing anything that is not one of the supported shapes."""
    from sklearn.ensemble import IsolationForest
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if isinstance(estimator, IsolationForest):
        return None, estimator
    if isinstance(estimator, Pipeline):
        steps = [step for _, step in estimator.steps if step not in (None, "passthrough")]
        if len(steps) == 1 and isinstance(steps[0], IsolationForest):
            return None, steps[0]
        if len(steps) == 2 and type(steps[0]) is StandardScaler and isinstance(steps[1], IsolationForest):
            return steps[0], steps[1]
        kinds = [type(s).__name__ for s in steps]
        raise TypeError(
            f"unsupported Pipeline steps {kinds}: "
            "expected [StandardScaler, IsolationForest] or [IsolationForest]"
        )
    raise TypeError(
        f"cannot export {type(estimator).__name__}: expected a fitted IsolationForest or a Pipeline "
        "of an optional StandardScaler followed by an IsolationForest"
    )


def _json_safe(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    return repr(value)


def _tree_arrays(forest: IsolationForest, index: int, map_features: bool) -> dict[str, np.ndarray]:
    estimator = forest.estimators_[index]
    tree = estimator.tree_
    leaf = tree.children_left == -1
    local = tree.feature.astype(np.int64)
    if map_features:
        # sklearn scores X[:, estimators_features_[i]] with this tree; map back to X's columns.
        columns = np.asarray(forest.estimators_features_[index], dtype=np.int64)
        global_feature = np.where(leaf, -1, columns[np.where(leaf, 0, local)])
    else:
        global_feature = np.where(leaf, -1, local)
    # The exact per-node term sklearn adds to `depths` (_parallel_compute_tree_depths).
    if hasattr(forest, "_decision_path_lengths"):
        depth = forest._decision_path_lengths[index]
        avg = forest._average_path_length_per_tree[index]
    else:  # older sklearn: recompute with the same functions sklearn uses at fit time
        from sklearn.ensemble._iforest import _average_path_length

        depth = tree.compute_node_depths()
        avg = _average_path_length(tree.n_node_samples)
    value = depth + avg - 1.0
    return {
        "left": tree.children_left.astype(np.int32),
        "right": tree.children_right.astype(np.int32),
        "feature": global_feature.astype(np.int32),
        "threshold": tree.threshold.astype(np.float64),
        "missing_go_left": np.asarray(tree.missing_go_to_left, dtype=np.uint8)
        if hasattr(tree, "missing_go_to_left")
        else np.zeros(tree.node_count, dtype=np.uint8),
        "value": np.asarray(value, dtype=np.float64),
    }


def export_model(
    estimator: Any,
    path: str | os.PathLike[str],
    *,
    feature_names: Sequence[str] | None = None,
    training_data_sha256: str | None = None,
    extra_metadata: dict[str, Any] | None = None,
    baseline: BaselineParams | None = None,
    context: ContextParams | None = None,
) -> str:
    """Write `estimator` as a laserguard model file (docs/model-format.md); returns its model version.

    Accepts a fitted IsolationForest or a Pipeline of an optional StandardScaler and an
    IsolationForest (e.g. ``GridSearchCV(...).best_estimator_``). With ``baseline`` (the
    per-unit baseline stage, detection engine v2) the file is format 2.0, otherwise 1.0; with
    ``context`` too (the context stage of detection engine v3) it is 2.1, or 2.2 when it uses ``gain_sd`` or ``jump_scale``.
    """
    import sklearn
    from sklearn.ensemble._iforest import _average_path_length
    from sklearn.pipeline import Pipeline
    from sklearn.utils.validation import check_is_fitted

    scaler, forest = split_estimator(estimator)
    check_is_fitted(forest)
    if scaler is not None:
        check_is_fitted(scaler)
    n_features = int(forest.n_features_in_)
    if scaler is not None and int(scaler.n_features_in_) != n_features:
        raise ValueError(f"scaler has {scaler.n_features_in_} features but the forest has {n_features}")

    if feature_names is None:
        source = scaler if scaler is not None else forest
        fitted_names = getattr(source, "feature_names_in_", None)
        names = (
            [str(n) for n in fitted_names]
            if fitted_names is not None
            else [f"x{i}" for i in range(n_features)]
        )
    else:
        if isinstance(feature_names, str):  # a str is a Sequence of its characters
            raise TypeError(f"feature_names must be a sequence of names, got the string {feature_names!r}")
        names = [str(n) for n in feature_names]
        if len(names) != n_features:
            raise ValueError(f"feature_names has {len(names)} entries, the model has {n_features} features")

    map_features = forest._max_features != n_features
    trees = [_tree_arrays(forest, i, map_features) for i in range(len(forest.estimators_))]
    # Computed with sklearn's own function, exactly as in _compute_score_samples.
    denominator = float(len(forest.estimators_) * _average_path_length([forest._max_samples])[0])

    if scaler is not None:
        with_mean, with_std = bool(scaler.with_mean), bool(scaler.with_std)
        mean = np.asarray(scaler.mean_, dtype=np.float64) if with_mean else np.zeros(n_features)
        scale = np.asarray(scaler.scale_, dtype=np.float64) if with_std else np.ones(n_features)
    else:
        with_mean = with_std = False
        mean = scale = np.zeros(0)

    metadata: dict[str, Any] = {
        "format": "laserguard-forest",
        "sklearn_version": sklearn.__version__,
        "estimator": "Pipeline" if isinstance(estimator, Pipeline) else "IsolationForest",
        "has_scaler": scaler is not None,
        "params": {k: _json_safe(v) for k, v in sorted(forest.get_params().items())},
        "max_samples_": int(forest.max_samples_),
        "n_estimators": len(forest.estimators_),
        "offset": float(forest.offset_),
        "feature_names": names,
        "training_data_sha256": training_data_sha256,
    }
    if scaler is not None:
        metadata["scaler_params"] = {k: _json_safe(v) for k, v in sorted(scaler.get_params().items())}
    metadata.update(extra_metadata or {})
    if baseline is not None and baseline.n_channels != n_features:
        raise ValueError(
            f"baseline stage has {baseline.n_channels} channels, the model has {n_features} features"
        )
    if context is not None and baseline is None:
        raise ValueError(
            "a context stage needs the baseline stage (its learning period, rules and threshold)"
        )
    if context is not None and context.n_channels != n_features:
        raise ValueError(
            f"context stage has {context.n_channels} channels, the model has {n_features} features"
        )
    # The version names the content, so two exports of the same model share it.
    fingerprint = hashlib.sha256(json.dumps(metadata, sort_keys=True).encode())
    if baseline is not None:
        fingerprint.update(json.dumps(baseline.as_dict(), sort_keys=True).encode())
    if context is not None:
        fingerprint.update(json.dumps(context.as_dict(), sort_keys=True).encode())
    for t in trees:
        for key in ("left", "feature", "threshold", "value"):
            fingerprint.update(t[key].tobytes())
    metadata.setdefault("model_version", fingerprint.hexdigest()[:12])

    _core.write_forest_file(
        os.fspath(path),
        n_features,
        scaler is not None,
        with_mean,
        with_std,
        mean,
        scale,
        float(forest.offset_),
        denominator,
        names,
        json.dumps(metadata, sort_keys=True),
        trees,
        None if baseline is None else baseline.as_dict(),
        None if context is None else context.as_dict(),
    )
    return str(metadata["model_version"])
