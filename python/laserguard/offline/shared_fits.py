"""Sharing tree fits between grid-search candidates that differ only in size or contamination.

With a fixed integer ``random_state``, sklearn's IsolationForest draws one seed per tree from
the same sequence, so the first k trees of a 300-tree forest are the trees of a k-tree forest
(this is what ``warm_start`` relies on), and ``contamination`` only sets ``offset_`` after the
trees are built. A search over n_estimators x contamination on the same fold therefore needs
one forest per (fold, other parameters): the others are prefixes of it. The tests check that
this gives bitwise the same forests and scores as fitting each candidate from scratch.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from sklearn.ensemble import IsolationForest

# Parameters that do not change the trees (n_estimators is handled by taking prefixes).
_NOT_TREE_PARAMS = frozenset({"n_estimators", "contamination", "warm_start", "n_jobs", "verbose"})
# Per-tree fitted attributes of IsolationForest (sklearn 1.4 - 1.9), sliced to take a prefix.
_PER_TREE_ATTRIBUTES = (
    "estimators_",
    "estimators_features_",
    "_decision_path_lengths",
    "_average_path_length_per_tree",
)


# Memory held by a fitted sklearn tree per node: the node record (64 bytes), its value (8) and
# the two per-node float64 arrays IsolationForest caches (16).
_BYTES_PER_NODE = 88
# The forests kept for sharing grow with the data (max_samples is a fraction of the rows), so
# they are kept within a budget; an evicted forest is refitted if asked for again.
DEFAULT_MAX_BYTES = 3 * 2**30


class SharedForestFits:
    """Fitted forests keyed by (training data, tree parameters), grown on demand with warm_start."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        # Least recently used first; all dict updates happen under self._guard.
        self._forests: OrderedDict[tuple[str, str], tuple[IsolationForest, int]] = OrderedDict()
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()
        # score_samples depends on the trees and X only, not on contamination: candidates that
        # differ in contamination score the same folds with the same trees.
        self._scores: dict[tuple[tuple[str, str], int, str], np.ndarray] = {}
        self.trees_built = 0  # trees actually fitted
        self.trees_served = 0  # trees the candidates asked for
        self.scorings = 0  # score_samples computed (the rest came from the cache)
        self.evictions = 0  # forests dropped to stay within max_bytes

    @staticmethod
    def key(X: np.ndarray, params: dict[str, Any]) -> tuple[str, str] | None:
        """None when fits cannot be shared (no fixed integer seed)."""
        if not isinstance(params.get("random_state"), (int, np.integer)):
            return None
        tree_params = repr(sorted((k, repr(v)) for k, v in params.items() if k not in _NOT_TREE_PARAMS))
        return _digest(X), tree_params

    def score_samples(
        self, key: tuple[str, str], n_trees: int, X: np.ndarray, compute: Callable[[], np.ndarray]
    ) -> np.ndarray:
        """score_samples of the first `n_trees` trees of `key`'s forest on X, computed once."""
        score_key = (key, n_trees, _digest(X))
        with self._guard:
            cached = self._scores.get(score_key)
        if cached is None:
            # Computed outside the lock; a rare duplicate computation gives the same values.
            cached = compute()
            with self._guard:
                self._scores[score_key] = cached
                self.scorings += 1
        return cached.copy()

    def fit_prefix(self, target: IsolationForest, key: tuple[str, str], X: Any) -> None:
        """Give `target` the first target.n_estimators trees of the shared forest for `key`.

        The shared forest is fitted (or grown with warm_start) as needed. `target` keeps its
        own parameters; its ``offset_`` is left for the caller to set.
        """
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        params = target.get_params(deep=False)
        n_trees = int(params["n_estimators"])
        with lock:
            with self._guard:
                entry = self._forests.get(key)
            forest = None if entry is None else entry[0]
            built_before = 0 if forest is None else len(forest.estimators_)
            if forest is None:
                tree_params = {k: v for k, v in params.items() if k not in _NOT_TREE_PARAMS}
                # 'auto' contamination: sklearn then skips scoring the training data.
                forest = IsolationForest(
                    **tree_params, n_estimators=n_trees, contamination="auto", warm_start=True
                )
                forest.fit(X)
            elif built_before < n_trees:
                forest.set_params(n_estimators=n_trees).fit(X)
            size = _BYTES_PER_NODE * sum(int(tree.tree_.node_count) for tree in forest.estimators_)
            with self._guard:
                self._forests[key] = (forest, size)
                self._forests.move_to_end(key)
                self._evict(keep=key)
                self.trees_built += len(forest.estimators_) - built_before
                self.trees_served += n_trees
            state = {k: v for k, v in vars(forest).items() if k.endswith("_") or k.startswith("_")}
            for name in _PER_TREE_ATTRIBUTES:
                if hasattr(forest, name):  # the last two are cached by newer sklearn only
                    state[name] = getattr(forest, name)[:n_trees]  # a copy: later growth does not leak in
        # warm_start keeps only the seeds of its last batch; drop them rather than keep a wrong list.
        state.pop("_seeds", None)
        state.pop("offset_", None)
        vars(target).update(state)
        target.set_params(**params)

    def _evict(self, keep: tuple[str, str]) -> None:
        """Drop least recently used forests (never `keep`) until the budget holds; under _guard."""
        total = sum(size for _, size in self._forests.values())
        for key in list(self._forests):
            if total <= self.max_bytes:
                break
            if key != keep:
                total -= self._forests.pop(key)[1]
                self.evictions += 1

    @property
    def forest_bytes(self) -> int:
        with self._guard:
            return sum(size for _, size in self._forests.values())


def _digest(X: np.ndarray) -> str:
    digest = hashlib.sha256(f"{X.dtype.str}{X.shape}".encode())
    digest.update(np.ascontiguousarray(X).tobytes())
    return digest.hexdigest()


_active: SharedForestFits | None = None
_active_guard = threading.Lock()


def active_shared_fits() -> SharedForestFits | None:
    return _active


@contextlib.contextmanager
def sharing_forest_fits(max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[SharedForestFits]:
    """Within this block, EngineScoredIsolationForest.fit reuses trees across candidates."""
    global _active
    with _active_guard:
        if _active is not None:
            raise RuntimeError("sharing_forest_fits() blocks cannot be nested or run concurrently")
        _active = SharedForestFits(max_bytes)
        shared = _active
    try:
        yield shared
    finally:
        with _active_guard:
            _active = None
