"""The per-unit baseline stage (C++) against its definitions, and its carriage in model format 2.0."""

from __future__ import annotations

import struct
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import laserguard
from laserguard import ModelFormatError
from laserguard.model.baseline import BaselineParams, BaselineStage, explanation_name

REFERENCE = Path(__file__).resolve().parent.parent / "models" / "reference" / "reference.lgf"


def params(**changes: object) -> BaselineParams:
    base = BaselineParams(
        n_channels=3,
        sigma_floor=(1e-9,) * 3,
        stuck_run=(0, 0, 0),
        scored=(0, 2),
        level_scale=(3.0, 4.0),
        spread_scale=(2.0, 2.5),
        baseline_samples=40,
        window=8,
        threshold=1.5,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def reference_decisions(p: BaselineParams, x: np.ndarray) -> np.ndarray:
    """The stage's definition for one unit, written out in numpy (float32 readings, float64 maths)."""
    x64 = x.astype(np.float32).astype(np.float64)
    b = p.baseline_samples
    mu = x64[:b].mean(axis=0)
    sigma = np.maximum(x64[:b].std(axis=0), p.sigma_floor)
    out = np.full(len(x), np.nan)
    for i in range(b, len(x)):
        window = x64[max(0, i - p.window + 1) : i + 1]
        d = 0.0
        for j, c in enumerate(p.scored):
            d = max(d, abs((x64[i, c] - mu[c]) / sigma[c]) / p.level_scale[j])
            s = window[:, c].std(ddof=1) / sigma[c]
            d = max(d, abs(np.log(max(s, 1e-3))) / p.spread_scale[j])
        out[i] = 1.0 - d / p.threshold
    return out


def test_stage_matches_its_definition() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal([5.0, 1.0, -2.0], [0.1, 0.2, 0.3], size=(200, 3))
    x[150:, 2] += 3.0  # a 10-sigma step on a scored channel
    p = params()
    result = BaselineStage(p, 1).push(np.zeros(200), np.arange(200.0), x, 2)
    expected = reference_decisions(p, x)
    assert result.learning.tolist() == [True] * 40 + [False] * 160
    np.testing.assert_allclose(result.decision[40:], expected[40:], rtol=1e-9, atol=1e-9)
    flagged = result.decision < 0
    assert flagged[150:].all() and flagged[40:150].mean() < 0.05
    names = [explanation_name(3 + int(c), ("a", "b", "c")) for c in result.top_code[150:, 0]]
    assert set(names) == {"c:level"}


def test_units_are_independent_and_rows_may_interleave() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 100, 3))
    together = BaselineStage(params(), 2).push(
        np.tile([0, 1], 100), np.repeat(np.arange(100.0), 2), np.stack([x[0], x[1]], axis=1).reshape(200, 3)
    )
    for unit in (0, 1):
        alone = BaselineStage(params(), 1).push(np.zeros(100), np.arange(100.0), x[unit])
        np.testing.assert_array_equal(together.decision[unit::2], alone.decision)


def test_a_level_only_channel_is_never_judged_on_spread() -> None:
    x = np.random.default_rng(6).normal(size=(120, 3))
    x[80:, 2] *= 20.0  # its variability explodes, its level stays
    level_only = BaselineStage(params(judge_spread=(1, 0)), 1).push(np.zeros(120), np.arange(120.0), x, 3)
    both = BaselineStage(params(), 1).push(np.zeros(120), np.arange(120.0), x, 3)
    names = lambda r: {explanation_name(3 + int(c), ("a", "b", "c")) for c in r.top_code.ravel() if c >= 0}  # noqa: E731
    assert "c:spread" in names(both)
    assert "c:spread" not in names(level_only)


def test_baseline_by_duration_and_rules() -> None:
    p = params(baseline_samples=0, baseline_s=10.0, stuck_run=(0, 3, 0))
    x = np.random.default_rng(3).normal(size=(40, 3))
    x[30:, 1] = x[29, 1]  # stuck channel (not scored, still judged by the rule)
    x[20, 0] = np.nan
    r = BaselineStage(p, 1).push(np.zeros(40), np.arange(40.0) * 0.5, x, 1)
    assert r.learning[:20].all() and not r.learning[20:].any()  # 10 s at 2 Hz
    assert explanation_name(3 + int(r.top_code[20, 0]), ("a", "b", "c")) == "a:missing"
    assert r.decision[20] <= -1
    assert explanation_name(3 + int(r.top_code[33, 0]), ("a", "b", "c")) == "b:stuck"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"window": 1}, "window"),
        ({"baseline_s": 3.0}, "exactly one"),
        ({"threshold": float("nan")}, "threshold"),
        ({"level_scale": (3.0, 0.0)}, "level_scale"),
        ({"scored": (2, 0)}, "strictly increasing"),
        ({"scored": (0, 3)}, "outside"),
        ({"sigma_floor": (1.0, 1.0)}, "sigma floors"),
        ({"stuck_run": (1, 0, 0)}, "stuck_run"),
        ({"judge_spread": (1, 2)}, "judge_spread"),
    ],
)
def test_invalid_params_are_refused_by_name(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        params(**change)


def test_state_round_trip_is_exact_and_refuses_corruption(tmp_path: Path) -> None:
    x = np.random.default_rng(4).normal(size=(120, 3))
    stage = BaselineStage(params(), 1)
    stage.push(np.zeros(60), np.arange(60.0), x[:60])
    path = tmp_path / "lcc1.state"
    stage.save_state_file(path)
    assert not list(tmp_path.glob("*.tmp.*"))  # renamed into place
    restored = BaselineStage(params(), 1)
    restored.load_state_file(path)
    a = restored.push(np.zeros(60), np.arange(60.0, 120.0), x[60:]).decision
    b = stage.push(np.zeros(60), np.arange(60.0, 120.0), x[60:]).decision
    np.testing.assert_array_equal(a, b)
    data = bytearray(path.read_bytes())
    data[40] ^= 0xFF
    with pytest.raises(ValueError, match="CRC"):
        restored.load_state(bytes(data))
    with pytest.raises(ValueError, match="1 units x 3 channels, window 8"):
        BaselineStage(params(), 2).load_state(path.read_bytes())


def _pipeline() -> Pipeline:
    X = np.random.default_rng(5).normal(size=(300, 3))
    return Pipeline([("s", StandardScaler()), ("m", IsolationForest(n_estimators=5, random_state=0))]).fit(X)


def test_model_2_0_carries_the_stage_and_1_0_files_still_load(tmp_path: Path) -> None:
    path = tmp_path / "v2.lgf"
    laserguard.export_model(_pipeline(), path, baseline=params())
    model = laserguard.ForestModel.load(path)
    assert model.format_version == (2, 0) and model.baseline == params()
    assert path.read_bytes()[8:10] == b"\x02\x00"
    v1 = laserguard.ForestModel.load(REFERENCE)  # committed before format 2.0 existed
    assert v1.format_version == (1, 0) and v1.baseline is None
    with pytest.raises(ValueError, match="3 features"):
        laserguard.export_model(
            _pipeline(),
            tmp_path / "bad.lgf",
            baseline=params(n_channels=4, sigma_floor=(1.0,) * 4, stuck_run=(0,) * 4),
        )


def _reseal(data: bytes) -> bytes:
    payload = data[32:]
    header = bytearray(data[:32])
    struct.pack_into("<I", header, 24, zlib.crc32(payload, zlib.crc32(bytes(header[:24]))))
    return bytes(header) + payload


def test_loader_validates_the_baseline_fields(tmp_path: Path) -> None:
    path = tmp_path / "v2.lgf"
    laserguard.export_model(_pipeline(), path, baseline=params())
    data = path.read_bytes()
    # The section's layout (docs/model-format.md): threshold sits 8 + 8 bytes after mean_tau_s.
    section = data.rindex(struct.pack("<I", 3) + struct.pack("<I", 40))
    threshold_at = section + 4 + 4 + 8 + 4 + 4 + 8
    assert struct.unpack_from("<d", data, threshold_at)[0] == 1.5
    bad = bytearray(data)
    struct.pack_into("<d", bad, threshold_at, float("nan"))
    with pytest.raises(ModelFormatError, match="baseline stage: threshold"):
        laserguard.ForestModel.from_bytes(_reseal(bytes(bad)))
    with pytest.raises(ModelFormatError, match="truncated"):
        laserguard.ForestModel.from_bytes(_reseal(data[:-4]))
