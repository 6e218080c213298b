"""The C++ per-unit baseline features against a direct numpy/pandas computation of the definitions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from laserguard import sim
from laserguard.model import unit_baseline


def _reference(times: np.ndarray, x: np.ndarray, baseline_s: float, window: int) -> np.ndarray:
    """(frames, units, channels) float64 -> (frames, units, 2C+1), written from the definitions."""
    n_frames = x.shape[0]
    base = x[times - times[0] < baseline_s]
    mu = np.nanmean(base, axis=0)
    sigma = np.maximum(np.nanstd(base, axis=0), unit_baseline.DEFAULT_SIGMA_FLOOR)
    z = (x - mu) / sigma
    flat = pd.DataFrame(x.reshape(n_frames, -1))
    s = flat.rolling(window, min_periods=2).std().to_numpy().reshape(x.shape) / sigma
    bad = pd.DataFrame((~np.isfinite(x)).any(axis=2).astype(np.float64))
    nan_frac = bad.rolling(window, min_periods=1).mean().to_numpy()
    frozen = (times - times[0] >= baseline_s)[:, None, None]
    z, s = np.where(frozen, z, np.nan), np.where(frozen, s, np.nan)
    return np.concatenate([z, s, nan_frac[:, :, None]], axis=2)


def test_features_match_their_definition_with_nan_and_stuck_readings() -> None:
    rng = np.random.default_rng(5)
    n_frames, n_units, n_channels = 80, 3, 4
    x = (
        rng.normal(size=(n_frames, n_units, n_channels)) * [1.0, 10.0, 0.1, 3.0] + [0.0, 100.0, 5.0, -2.0]
    ).astype(np.float32)
    x[30:50, 1, 2] = np.nan  # dropout
    x[55:, 2, 0] = x[55, 2, 0]  # stuck
    x[10, 0, 3] = np.nan  # a NaN inside the baseline window is skipped
    times = np.arange(n_frames, dtype=np.float64) * 0.5
    extractor = unit_baseline.UnitBaselineFeatures(n_units, n_channels, baseline_s=10.0, window=7)
    got = extractor.push_frames(times, x)
    expected = _reference(times, x.astype(np.float64), 10.0, 7)
    assert got.shape == (n_frames, n_units, 2 * n_channels + 1)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)
    assert np.all(got[62:, 2, n_channels] == 0.0)  # stuck channel: rolling std 0
    assert extractor.baseline_frozen(0)


def test_pushing_frame_by_frame_equals_pushing_the_table() -> None:
    frame = sim.generate(0.05, rate_hz=1.0, lccs=1, units=4, units_per_psu=4, seed=2, fault_mix="all")
    batch = unit_baseline.table_features(frame, baseline_s=60.0, window=10)
    x = frame[list(unit_baseline.CHANNELS)].to_numpy(np.float32).reshape(-1, 4, len(unit_baseline.CHANNELS))
    times = frame["time_s"].to_numpy()[::4]
    streaming = unit_baseline.UnitBaselineFeatures(4, baseline_s=60.0, window=10)
    rows = [streaming.push_frames(times[k : k + 1], x[k : k + 1]) for k in range(len(times))]
    np.testing.assert_array_equal(np.concatenate(rows).reshape(batch.shape), batch)
    assert np.isfinite(batch[frame["time_s"].to_numpy() >= 70.0, :11]).mean() > 0.9


def test_bad_input_is_refused_with_the_offending_value() -> None:
    extractor = unit_baseline.UnitBaselineFeatures(2, 3)
    with pytest.raises(ValueError, match=r"shape \(n_frames, 2, 3\), got \(1, 2, 4\)"):
        extractor.push_frames([0.0], np.zeros((1, 2, 4), np.float32))
    extractor.push_frames([5.0], np.zeros((1, 2, 3), np.float32))
    with pytest.raises(ValueError, match="before the previous frame"):
        extractor.push_frames([4.0], np.zeros((1, 2, 3), np.float32))
    with pytest.raises(ValueError, match="window must be at least 2"):
        unit_baseline.UnitBaselineFeatures(2, 3, window=1)
    with pytest.raises(ValueError, match="baseline_s"):
        unit_baseline.UnitBaselineFeatures(2, 3, baseline_s=-1.0)
