"""Reading numeric matrices from CSV, .npy, .npz and .mat files."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np


def load_matrix(path: str | os.PathLike[str], feature_names: Sequence[str] | None = None) -> np.ndarray:
    """Return a 2-D float64 array from `path`.

    CSV: if `feature_names` are all columns of the file they are selected in that order,
    otherwise every numeric column is used. .npz/.mat: the array named ``X`` (or the only one).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"data file not found: {path!r}")
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".csv":
        import pandas as pd

        frame = pd.read_csv(path)
        if feature_names and all(name in frame.columns for name in feature_names):
            frame = frame[list(feature_names)]
        else:
            frame = frame.select_dtypes("number")
        arr = frame.to_numpy(dtype=np.float64)
    elif suffix == ".npy":
        arr = np.load(path, allow_pickle=False)
    elif suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            arr = _pick_x(dict(archive), path)
    elif suffix == ".mat":
        import scipy.io

        contents = {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
        arr = _pick_x(contents, path)
    else:
        raise ValueError(f"unsupported data file type {suffix!r} for {path!r}: use .csv, .npy, .npz or .mat")
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{path!r}: expected a 2-D matrix, got shape {arr.shape}")
    return arr


def _pick_x(arrays: dict[str, np.ndarray], path: str) -> np.ndarray:
    if "X" in arrays:
        return arrays["X"]
    if len(arrays) == 1:
        return next(iter(arrays.values()))
    raise ValueError(f"{path!r} holds arrays {sorted(arrays)}; expected one named 'X'")
