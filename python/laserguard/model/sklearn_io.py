"""Loading sklearn estimators without unpickling untrusted files."""

from __future__ import annotations

import os
from typing import Any

# Types a skops file of a (StandardScaler +) IsolationForest legitimately contains that skops
# does not trust by default. Anything else in the file is refused.
TRUSTED_SKOPS_TYPES = frozenset({"sklearn.tree._tree.Tree"})


def load_sklearn_model(path: str | os.PathLike[str], *, trust_pickle: bool = False) -> Any:
    """Load a .skops file (safe), or a pickle/joblib file only when `trust_pickle` is set."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"sklearn model file not found: {path!r}")
    if path.endswith(".skops"):
        import skops.io as sio

        untrusted = set(sio.get_untrusted_types(file=path))
        unexpected = sorted(untrusted - TRUSTED_SKOPS_TYPES)
        if unexpected:
            raise ValueError(f"{path!r} contains types laserguard does not trust: {unexpected}")
        return sio.load(path, trusted=sorted(untrusted))
    if not trust_pickle:
        raise ValueError(
            f"{path!r} is not a .skops file; loading a pickle runs arbitrary code, "
            "pass --trust-pickle (trust_pickle=True) only for files you created yourself"
        )
    import joblib

    return joblib.load(path)
