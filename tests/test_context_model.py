"""Detection engine v3's context stage from Python: model format 2.2 (2.1 still read), the scorer taking each
row's setpoint and state, older files scoring exactly as before, and the fit on lab data."""

from __future__ import annotations

import struct
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

import laserguard
from laserguard.model.baseline import BaselineParams, BaselineStage, explanation_name
from laserguard.model.context import ContextParams
from laserguard.model.export import export_model
from laserguard.model.forest import ForestModel
from laserguard.model.unit_scoring import UnitScorer
from laserguard.offline.baseline_fit import sigma_floors, stuck_runs
from laserguard.offline.context_fit import ContextFitOptions, _gain_spread, fit_context
from laserguard.wire import codec

CHANNELS = list(codec.CHANNELS)
CONTEXT = [CHANNELS.index(c) for c in ("heatsink_temp_c", "psu_current_a", "psu_temp_c")]


def small_context(forest_input: str = "raw") -> ContextParams:
    # Channels a (current = s), b (power = 0.9 s - 0.45 when on), c (context).
    return ContextParams(
        n_channels=3,
        context=(2,),
        context_center=(25.0,),
        context_scale=(1.0,),
        context_min=(15.0,),
        context_max=(35.0,),
        term_a=(0, 1, 2, 3),
        term_b=(0, 0, 0, 0),
        monitored=(0, 1),
        coef=(0.0, 0.0, 0.0, -0.45, 1.0, 0.9, 0.0, 0.0),
        resid_sigma=(0.01, 0.03),
        prior_var=(4.0, 3.0),
        level_scale=(4.0, 4.0),
        spread_ref=(1.0, 1.0),
        spread_scale=(1.0, 1.0),
        filter_source=(2,),
        filter_tau_s=(5.0,),
        n_components=1,
        loadings=(2**-0.5, 2**-0.5),
        eigenvalues=(1.0,),
        spe_limit=16.0,
        forest_input=forest_input,
    )


def small_baseline() -> BaselineParams:
    return BaselineParams(
        n_channels=3,
        sigma_floor=(1e-9,) * 3,
        stuck_run=(0, 0, 0),
        scored=(0, 1, 2),
        level_scale=(1.0,) * 3,
        spread_scale=(1.0,) * 3,
        baseline_samples=20,
        window=10,
    )


def small_rows(n: int = 200, seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    setpoint = np.where(np.arange(n) < n // 2, 5.0, 7.0)
    x = np.column_stack([setpoint, 0.9 * setpoint - 0.45, np.full(n, 25.0)]) + 0.005 * rng.normal(size=(n, 3))
    return np.zeros(n, np.uint32), np.arange(n, dtype=float), x, setpoint


def forest_on(x: np.ndarray) -> IsolationForest:
    return IsolationForest(n_estimators=20, max_samples=64, random_state=0).fit(x)


def test_format_2_2_round_trips_and_names_a_bad_field(tmp_path: Path) -> None:
    _, _, x, _ = small_rows()
    path = tmp_path / "v3.lgf"
    context = replace(small_context("residual"), gain_sd=(0.05, 0.07))
    export_model(
        forest_on(x), path, feature_names=["a", "b", "c"], baseline=small_baseline(), context=context
    )
    model = ForestModel.load(path)
    assert model.format_version == (2, 2)
    assert model.context == context
    assert model.baseline == small_baseline()
    assert path.read_bytes()[8:12] == bytes([2, 0, 2, 0])  # major 2, minor 2
    with pytest.raises(ValueError, match=r"gain_sd\[1\] must be finite and >= 0, got -0.1"):
        replace(context, gain_sd=(0.05, -0.1))
    with pytest.raises(ValueError, match=r"gain_limit must be in \(0, 1\], got 2"):
        replace(context, gain_limit=2.0)
    with pytest.raises(ValueError, match="context stage needs the baseline stage"):
        export_model(forest_on(x), tmp_path / "bad.lgf", feature_names=["a", "b", "c"], context=context)


def test_a_2_1_file_loads_with_the_gain_taken_as_known_and_scores_as_before(tmp_path: Path) -> None:
    # A 2.1 file is a 2.2 file without the trailing gain_sd (8 bytes per monitored channel) and
    # jump_ref, jump_scale (8 bytes each per context channel).
    unit, t, x, setpoint = small_rows()
    context = replace(small_context(), gain_sd=(1e-300, 1e-300))  # written as 2.2, scores as 0
    path = tmp_path / "v22.lgf"
    export_model(
        forest_on(x), path, feature_names=["a", "b", "c"], baseline=small_baseline(), context=context
    )
    data = path.read_bytes()
    payload = data[32 : len(data) - 8 * (context.n_monitored + 2 * len(context.context))]
    head = struct.pack("<8sHHIQII", b"LGFOREST", 2, 1, 32, len(payload), 0, 0)
    crc = zlib.crc32(payload, zlib.crc32(head[:24]))
    v21 = ForestModel.from_bytes(
        struct.pack("<8sHHIQII", b"LGFOREST", 2, 1, 32, len(payload), crc, 0) + payload
    )
    v22 = ForestModel.load(path)
    assert v22.format_version == (2, 2)
    assert v21.format_version == (2, 1)
    assert v21.context == replace(context, gain_sd=(0.0, 0.0))
    # Without a gain spread the writer still writes 2.1, byte for byte as before.
    export_model(
        forest_on(x),
        tmp_path / "again.lgf",
        feature_names=["a", "b", "c"],
        baseline=small_baseline(),
        context=small_context(),
    )
    assert (tmp_path / "again.lgf").read_bytes()[8:12] == bytes([2, 0, 1, 0])
    a = UnitScorer(v21, 1).score(unit, t, x, setpoint=setpoint)
    b = UnitScorer(v22, 1).score(unit, t, x, setpoint=setpoint)
    np.testing.assert_array_equal(a.score, b.score)


def test_a_2_0_file_scores_exactly_as_before_and_ignores_context(tmp_path: Path) -> None:
    _, t, x, setpoint = small_rows()
    unit = np.zeros(len(t), np.uint32)
    path = tmp_path / "v2.lgf"
    export_model(forest_on(x), path, feature_names=["a", "b", "c"], baseline=small_baseline())
    model = ForestModel.load(path)
    assert model.format_version == (2, 0) and model.context is None
    assert path.read_bytes()[8:12] == bytes([2, 0, 0, 0])
    plain = UnitScorer(model, 1).score(unit, t, x)
    with_context = UnitScorer(model, 1).score(
        unit, t, x, setpoint=setpoint, state=np.full(len(t), 2, np.uint8)
    )
    np.testing.assert_array_equal(plain.score.view(np.int64), with_context.score.view(np.int64))
    np.testing.assert_array_equal(plain.top_code, with_context.top_code)
    stage = BaselineStage(small_baseline(), 1)
    np.testing.assert_array_equal(stage.push(unit, t, x).decision, plain.baseline_decision)


def test_residual_forest_reads_what_the_stage_computes(tmp_path: Path) -> None:
    unit, t, x, setpoint = small_rows()
    state = np.full(len(t), 2, np.uint8)
    stage = BaselineStage(small_baseline(), 1, small_context("residual"))
    forest_x = stage.push(unit, t, x, setpoint=setpoint, state=state, forest_input=True).forest_input
    assert forest_x.shape == (len(t), 3) and forest_x.dtype == np.float32
    np.testing.assert_array_equal(forest_x[:, 2], x[:, 2].astype(np.float32))  # context: raw
    path = tmp_path / "v3.lgf"
    forest = forest_on(forest_x[30:])
    export_model(
        forest,
        path,
        feature_names=["a", "b", "c"],
        baseline=small_baseline(),
        context=small_context("residual"),
    )
    model = ForestModel.load(path)
    scores = UnitScorer(model, 1).score(unit, t, x, setpoint=setpoint, state=state)
    np.testing.assert_array_equal(scores.fleet_decision, model.decision_function(forest_x))
    # The same rows with the raw-input switch: the forest reads the readings themselves.
    raw_model = ForestModel.load(path)
    assert raw_model.context is not None


def test_the_scorer_checks_context_arrays() -> None:
    _, t, x, setpoint = small_rows(40)
    stage = BaselineStage(small_baseline(), 1, small_context())
    unit = np.zeros(len(t), np.uint32)
    with pytest.raises(ValueError, match=r"state\[3\] = 7 is not a UnitState code"):
        stage.push(unit, t, x, setpoint=setpoint, state=np.array([2, 2, 2, 7] + [2] * 36))
    with pytest.raises(ValueError, match=r"setpoint must have shape \(40,\)"):
        stage.push(unit, t, x, setpoint=setpoint[:5])
    with pytest.raises(ValueError, match="context_raw / forest_input need"):
        BaselineStage(small_baseline(), 1).push(unit, t, x, context_raw=True)


def test_state_file_round_trip_and_v1_refusal(tmp_path: Path) -> None:
    unit, t, x, setpoint = small_rows()
    a = BaselineStage(small_baseline(), 1, small_context())
    a.push(unit[:120], t[:120], x[:120], setpoint=setpoint[:120])
    a.save_state_file(tmp_path / "lcc1.state")
    b = BaselineStage(small_baseline(), 1, small_context())
    b.load_state_file(tmp_path / "lcc1.state")
    assert b.save_state() == a.save_state()
    ra = a.push(unit[120:], t[120:], x[120:], setpoint=setpoint[120:])
    rb = b.push(unit[120:], t[120:], x[120:], setpoint=setpoint[120:])
    np.testing.assert_array_equal(ra.decision, rb.decision)
    v2 = BaselineStage(small_baseline(), 1)
    v2.push(unit[:50], t[:50], x[:50])
    with pytest.raises(ValueError, match="version 1 has no context stage"):
        b.load_state(v2.save_state())


def test_saved_v3_states_are_listed(tmp_path: Path) -> None:
    from laserguard.live.baseline_store import read_saved_baselines

    unit, t, x, setpoint = small_rows()
    stage = BaselineStage(small_baseline(), 1, small_context())
    stage.push(unit, t, x, setpoint=setpoint)
    stage.save_state_file(tmp_path / "lcc4.state")
    listed = read_saved_baselines(tmp_path, now_s=float(t[-1]))
    assert [(s.unit, s.phase, s.rows_learned) for s in listed[4]] == [(0, "ready", 20)]


def lab_arrays(hours: float, seed: int) -> tuple[np.ndarray, ...]:
    df = laserguard.sim.generate(hours, lccs=1, units=16, seed=seed, fault_mix="none", profile="lab")
    unit = df["unit"].to_numpy().astype(np.uint32)
    state = np.array([codec.UNIT_STATES.index(s) for s in df["state"]], dtype=np.uint8)
    return (
        unit,
        df["time_s"].to_numpy(float),
        df[CHANNELS].to_numpy(float),
        df["setpoint_a"].to_numpy(float),
        state,
    )


def test_fit_on_lab_data_holds_on_a_fresh_seed_and_catches_a_power_loss() -> None:
    unit, t, x, setpoint, state = lab_arrays(1.0, seed=41)
    baseline = BaselineParams(
        n_channels=11,
        sigma_floor=sigma_floors(x),
        stuck_run=stuck_runs(unit, x),
        scored=tuple(range(11)),
        level_scale=(1.0,) * 11,
        spread_scale=(1.0,) * 11,
        baseline_samples=50,
    )
    fit = fit_context(
        unit,
        t,
        x,
        baseline=baseline,
        context_channels=CONTEXT,
        setpoint=setpoint,
        state=state,
        target_fpr=0.001,
        options=ContextFitOptions(),
        channel_names=CHANNELS,
    )
    assert fit.params.monitored == tuple(c for c in range(11) if c not in CONTEXT)
    assert fit.held_out_fpr <= 0.002
    # The simulator's units differ in slope efficiency and photodiode responsivity by a few
    # per cent: the fleet's spread of gains on optical power and the photodiode says so.
    gain_sd = dict(zip((CHANNELS[c] for c in fit.params.monitored), fit.params.gain_sd, strict=True))
    assert 0.01 < gain_sd["optical_power_w"] < 0.25
    assert 0.01 < gain_sd["monitor_pd_ma"] < 0.25
    # Fresh seed, healthy: the threshold from held-out training rows holds on new units.
    unit2, t2, x2, sp2, st2 = lab_arrays(0.5, seed=42)
    order = np.lexsort((t2, unit2))
    stage = BaselineStage(fit.baseline, 16, fit.params)
    r = stage.push(unit2[order], t2[order], x2[order], 1, setpoint=sp2[order], state=st2[order])
    # Judged where the context lies inside the trained range: a TEC setpoint of 20 C that the
    # hour of training never saw is extrapolated (measured: flagged as diode_temp_c:relationship).
    hs = CHANNELS.index("heatsink_temp_c")
    inside = (x2[order, hs] >= x[:, hs].min()) & (x2[order, hs] <= x[:, hs].max())
    judged = ~r.learning & inside
    assert judged.mean() > 0.8
    assert (r.decision[judged] < 0).mean() < 0.005
    # The same units with 5 % of one unit's optical power gone from 1200 s on, while powered.
    power = CHANNELS.index("optical_power_w")
    faulty = x2[order].copy()
    hit = (unit2[order] == 3) & (t2[order] >= 1200)
    faulty[hit, power] *= 0.95
    stage = BaselineStage(fit.baseline, 16, fit.params)
    r = stage.push(unit2[order], t2[order], faulty, 3, setpoint=sp2[order], state=st2[order])
    on = hit & (st2[order] == 2)
    assert (r.decision[on] < 0).mean() > 0.9
    names = {
        explanation_name(11 + int(c), CHANNELS) for c in r.top_code[on & (r.decision < 0)].ravel() if c >= 0
    }
    # A lost 5 % of power with an unchanged monitor photodiode breaks their relation too.
    assert names & {"optical_power_w:residual", "optical_power_w:relationship"}
    # Every context channel is judged by how it moves between samples: unit 5's reading of its
    # supply's temperature spikes by 60 % on one sample in ten from 1200 s on.
    assert all(v > 0 for v in fit.params.jump_scale)
    # Context is clamped to the trained range widened by a quarter of it on each side.
    slot = fit.params.context.index(CHANNELS.index("heatsink_temp_c"))
    lo, hi = (
        float(x[:, CHANNELS.index("heatsink_temp_c")].min()),
        float(x[:, CHANNELS.index("heatsink_temp_c")].max()),
    )
    assert fit.params.context_min[slot] == pytest.approx(lo - 0.25 * (hi - lo))
    assert fit.params.context_max[slot] == pytest.approx(hi + 0.25 * (hi - lo))
    psu_temp = CHANNELS.index("psu_temp_c")
    spiking = x2[order].copy()
    hit = (unit2[order] == 5) & (t2[order] >= 1200)
    spiking[np.flatnonzero(hit)[::10], psu_temp] *= 1.6
    stage = BaselineStage(fit.baseline, 16, fit.params)
    r = stage.push(unit2[order], t2[order], spiking, 1, setpoint=sp2[order], state=st2[order])
    assert (r.decision[hit] < 0).mean() > 0.9
    named = {explanation_name(11 + int(c), CHANNELS) for c in r.top_code[hit & (r.decision < 0), 0]}
    assert named == {"psu_temp_c:spread"}


def test_gain_spread_is_measured_on_units_that_span_operating_points() -> None:
    rng = np.random.default_rng(5)
    n_units, rows = 40, 300
    gains = rng.normal(1.0, 0.05, n_units)
    unit = np.repeat(np.arange(n_units, dtype=np.uint32), rows)
    expected = np.tile(np.linspace(2.0, 7.0, rows), n_units)[:, None]
    reading = gains[unit][:, None] * expected + 0.3 + rng.normal(0.0, 0.01, (len(unit), 1))
    spread = _gain_spread(expected, reading, unit, np.array([0.01]), min_units=8)
    assert 0.03 < spread[0] < 0.07  # the drawn spread, 0.05
    # Units that each stay at one operating point tell nothing about their gain: 0.
    flat = np.repeat(rng.uniform(2.0, 7.0, n_units), rows)[:, None]
    assert _gain_spread(flat, gains[unit][:, None] * flat, unit, np.array([0.01]), min_units=8)[0] == 0.0
