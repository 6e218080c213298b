"""Per-unit baseline features (C++ ``UnitBaselineFeatures``): each unit against its own baseline.

One streaming implementation for training (a time-sorted table pushed frame by frame) and live
scoring. Per unit and channel: z = (x - mu) / sigma against the unit's first ``baseline_s``
seconds, s = rolling sample std over the last ``window`` frames / sigma, and the fraction of
frames with a non-finite reading in the window. Output columns: ``feature_names(channels)``.
See cpp/include/laserguard/features/unit_baseline_features.hpp for the exact definitions and
docs/benchmarks.md (detection quality) for why and what it measures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from laserguard import _core

CHANNELS: Final[tuple[str, ...]] = tuple(_core.CHANNELS)  # the laser schema (wire.codec.CHANNELS)

DEFAULT_BASELINE_S: Final[float] = 600.0
DEFAULT_WINDOW: Final[int] = 30
DEFAULT_SIGMA_FLOOR: Final[float] = 1e-6


def feature_names(channels: Sequence[str] = CHANNELS) -> list[str]:
    return [f"z_{c}" for c in channels] + [f"s_{c}" for c in channels] + ["nan_frac"]


class UnitBaselineFeatures:
    """Stateful extractor for a fixed set of units; push frames in time order."""

    def __init__(
        self,
        n_units: int,
        n_channels: int = len(CHANNELS),
        *,
        baseline_s: float = DEFAULT_BASELINE_S,
        window: int = DEFAULT_WINDOW,
        sigma_floor: float = DEFAULT_SIGMA_FLOOR,
    ) -> None:
        if n_units < 1 or n_channels < 1:
            raise ValueError(f"n_units and n_channels must be positive, got {n_units} and {n_channels}")
        if window < 2:
            raise ValueError(f"window must be at least 2 frames, got {window}")
        self._core = _core.UnitBaselineFeatures(n_units, n_channels, baseline_s, window, sigma_floor)

    @property
    def n_features(self) -> int:
        return int(self._core.n_features)

    def baseline_frozen(self, unit: int) -> bool:
        return bool(self._core.baseline_frozen(unit))

    def push_frames(self, times: npt.ArrayLike, frames: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """times (n_frames,), frames (n_frames, n_units, n_channels) -> (n_frames, n_units, n_features)."""
        t = np.ascontiguousarray(times, dtype=np.float64)
        x = np.ascontiguousarray(frames, dtype=np.float32)
        out: npt.NDArray[np.float64] = self._core.push_frames(t, x)
        return out


def table_features(
    frame: pd.DataFrame,
    *,
    channels: Sequence[str] = CHANNELS,
    baseline_s: float = DEFAULT_BASELINE_S,
    window: int = DEFAULT_WINDOW,
) -> npt.NDArray[np.float64]:
    """Features for a ``sim.generate``-style table (rows sorted by time, then lcc, unit; every
    unit present at every time), in the table's row order: (rows, 2 * len(channels) + 1)."""
    n_units = int(frame.groupby(["lcc", "unit"]).ngroups)
    if n_units == 0 or len(frame) % n_units != 0:
        raise ValueError(f"{len(frame)} rows are not a whole number of frames of {n_units} units")
    n_frames = len(frame) // n_units
    values = frame[list(channels)].to_numpy(np.float32).reshape(n_frames, n_units, len(channels))
    times = frame["time_s"].to_numpy(np.float64).reshape(n_frames, n_units)
    if not np.all(times == times[:, :1]):
        raise ValueError("rows are not grouped by time: every frame must list all units at one time")
    extractor = UnitBaselineFeatures(n_units, len(channels), baseline_s=baseline_s, window=window)
    out = extractor.push_frames(times[:, 0], values)
    return out.reshape(len(frame), extractor.n_features)
