"""Laser physics, fault injection and dataset generation (the C++ simulator via bindings)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from laserguard import _core, cli, sim
from laserguard.wire.codec import CHANNELS

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "laser"
AGEING_FILE = DATA / "gaas_laser_degradation_meeker_escobar.txt"
NO_SELF_HEATING = {"thermal_resistance_k_per_w": 0.0}


def op(current: float, heatsink: float = 25.0, age_h: float = 0.0, **params: float) -> dict[str, float]:
    point: dict[str, float] = _core.operating_point(current, heatsink, age_h, params)
    return point


def threshold(heatsink: float, **params: float) -> float:
    """Smallest current with output power, by bisection."""
    lo, hi = 0.0, 5.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if op(mid, heatsink, **params)["optical_power_w"] > 0:
            hi = mid
        else:
            lo = mid
    return hi


def test_li_curve_is_zero_below_threshold_and_linear_above() -> None:
    defaults = sim.laser_param_defaults()
    i_th = defaults["threshold_current_a"]
    assert all(op(i, **NO_SELF_HEATING)["optical_power_w"] == 0.0 for i in np.linspace(0, i_th * 0.999, 20))
    currents = np.linspace(i_th * 1.5, 10.0, 25)
    power = np.array([op(i, **NO_SELF_HEATING)["optical_power_w"] for i in currents])
    slope, intercept = np.polyfit(currents, power, 1)
    assert np.max(np.abs(power - (slope * currents + intercept))) < 1e-9
    assert slope == pytest.approx(defaults["slope_efficiency_w_per_a"], rel=1e-9)
    assert -intercept / slope == pytest.approx(i_th, rel=1e-9)


def test_hotter_means_higher_threshold_and_lower_power() -> None:
    t0 = sim.laser_param_defaults()["characteristic_temp_k"]
    cold, hot = threshold(25.0, **NO_SELF_HEATING), threshold(45.0, **NO_SELF_HEATING)
    assert hot > cold
    assert hot / cold == pytest.approx(np.exp(20.0 / t0), rel=1e-6)
    assert op(8.0, 45.0)["optical_power_w"] < op(8.0, 25.0)["optical_power_w"]
    # Self-heating: the junction sits above the heatsink by R_th times the dissipated power.
    point = op(8.0, 25.0)
    assert point["junction_temp_c"] == pytest.approx(
        25.0 + sim.laser_param_defaults()["thermal_resistance_k_per_w"] * point["heat_w"], rel=1e-9
    )


def fitted_ageing_rates() -> np.ndarray:
    table = np.loadtxt(AGEING_FILE, skiprows=1)
    hours_k, rise = table[:, 0] / 1000.0, table[:, 1:]
    rates: np.ndarray = (hours_k @ rise) / (hours_k @ hours_k)  # % per kh, fit through the origin
    return rates


@pytest.mark.skipif(not AGEING_FILE.exists(), reason="shared reference data not present")
def test_ageing_defaults_are_fitted_to_the_meeker_escobar_data() -> None:
    logs = np.log(fitted_ageing_rates())
    defaults = sim.laser_param_defaults()
    assert defaults["ageing_median_pct_per_kh"] == pytest.approx(np.exp(logs.mean()), rel=0.01)
    assert defaults["ageing_log_sd"] == pytest.approx(logs.std(ddof=1), abs=0.005)


def test_constant_power_current_rises_at_the_ageing_rate() -> None:
    defaults = sim.laser_param_defaults()
    target = op(defaults["nominal_drive_current_a"], **NO_SELF_HEATING)["optical_power_w"]

    def current_for_power(age_h: float) -> float:
        lo, hi = 0.0, 20.0
        for _ in range(80):
            mid = (lo + hi) / 2
            lo, hi = (
                (mid, hi)
                if op(mid, 25.0, age_h, **NO_SELF_HEATING)["optical_power_w"] < target
                else (lo, mid)
            )
        return hi

    rise = current_for_power(1000.0) / current_for_power(0.0) - 1.0
    assert rise == pytest.approx(defaults["ageing_median_pct_per_kh"] / 100.0, rel=1e-6)


def small_run(faults: list[dict[str, object]] | None = None, seed: int = 3, **kw: object) -> pd.DataFrame:
    args: dict[str, object] = {"rate_hz": 1.0, "lccs": 1, "units": 4, "units_per_psu": 2, "seed": seed}
    args.update(kw)
    return sim.generate(0.05, faults=faults, fault_mix="none", **args)  # type: ignore[arg-type]


def test_same_seed_is_bit_identical_and_other_seeds_differ() -> None:
    a, b, c = small_run(seed=11), small_run(seed=11), small_run(seed=12)
    assert a[list(CHANNELS)].to_numpy().tobytes() == b[list(CHANNELS)].to_numpy().tobytes()
    assert a[list(CHANNELS)].to_numpy().tobytes() != c[list(CHANNELS)].to_numpy().tobytes()


def test_units_are_not_identical_and_faults_do_not_disturb_other_units() -> None:
    base = small_run()
    per_unit_power = base.groupby("unit")["optical_power_w"].mean()
    assert per_unit_power.nunique() == 4  # manufacturing spread
    faulty = small_run([{"lcc": 1, "unit": 1, "type": "facet_damage", "start_s": 10}])
    unit0 = ["drive_current_a", "optical_power_w", "diode_temp_c"]
    assert np.array_equal(base[base.unit == 0][unit0].to_numpy(), faulty[faulty.unit == 0][unit0].to_numpy())


def test_psu_fault_hits_every_unit_on_that_supply_and_only_those() -> None:
    df = small_run(
        [{"lcc": 1, "unit": 2, "type": "psu_sag", "start_s": 60, "severity": 0.5}], units=4, units_per_psu=2
    )
    after = df[df.time_s >= 60]
    sagged = after[after.psu == 1]
    assert set(sagged.unit) == {2, 3}
    assert (sagged.fault_type == "psu_sag").all() and (sagged.label == 1).all()
    assert (after[after.psu == 0].label == 0).all()
    nominal = sim.laser_param_defaults()["psu_nominal_v"]
    assert sagged.psu_voltage_v.max() < 0.85 * nominal
    assert after[after.psu == 0].psu_voltage_v.min() > 0.95 * nominal


# type -> (extra spec keys, check(before, after, healthy_after) on unit 0's rows)
FAULT_EFFECTS = {
    "degradation": (
        {"ramp_s": 20},
        lambda b, a, h: a.optical_power_w.mean() < h.optical_power_w.mean() - 0.5,
    ),
    "facet_damage": (
        {},
        lambda b, a, h: (
            a.optical_power_w.mean() < 0.6 * h.optical_power_w.mean()
            and a.diode_temp_c.mean() > h.diode_temp_c.mean() + 2
        ),
    ),
    "cooling_loss": (
        {"ramp_s": 10},
        lambda b, a, h: (
            a.heatsink_temp_c.iloc[-1] > h.heatsink_temp_c.iloc[-1] + 5
            and a.tec_current_a.iloc[-1] > h.tec_current_a.iloc[-1] + 1
        ),
    ),
    "thermal_resistance": (
        {"ramp_s": 10},
        lambda b, a, h: a.diode_temp_c.iloc[-1] > h.diode_temp_c.iloc[-1] + 10,
    ),
    "psu_sag": ({}, lambda b, a, h: a.psu_voltage_v.mean() < h.psu_voltage_v.mean() - 0.5),
    "psu_ripple": ({}, lambda b, a, h: a.psu_ripple_mv.mean() > h.psu_ripple_mv.mean() + 100),
    "driver_oscillation": ({}, lambda b, a, h: a.drive_current_a.std() > 10 * h.drive_current_a.std()),
    "driver_overshoot": (
        {},
        lambda b, a, h: (
            a.drive_current_a.mean() > 1.2 * h.drive_current_a.mean()
            and a.optical_power_w.mean() > h.optical_power_w.mean()
        ),
    ),
    "sensor_stuck": ({"channel": "optical_power_w"}, lambda b, a, h: a.optical_power_w.nunique() == 1),
    "sensor_dropout": ({"channel": "monitor_pd_ma"}, lambda b, a, h: a.monitor_pd_ma.isna().mean() > 0.8),
    "sensor_spikes": (
        {"channel": "diode_temp_c"},
        lambda b, a, h: (a.diode_temp_c - h.diode_temp_c.to_numpy()).abs().max() > 20,
    ),
}


@pytest.mark.parametrize("fault_type", sorted(FAULT_EFFECTS))
def test_every_fault_type_shows_in_its_channels_with_exact_labels(fault_type: str) -> None:
    extra, check = FAULT_EFFECTS[fault_type]
    spec = [{"lcc": 1, "unit": 0, "type": fault_type, "start_s": 60, "severity": 1.0, **extra}]
    healthy, faulty = small_run(), small_run(spec)
    u0, h0 = faulty[faulty.unit == 0], healthy[healthy.unit == 0]
    onset = u0.time_s >= 60
    assert (u0.label.to_numpy() == onset.to_numpy()).all()
    assert (u0.fault_type[onset] == fault_type).all() and (u0.fault_type[~onset] == "none").all()
    assert (u0.severity[onset] == 1.0).all()
    # Before onset the faulty run is the healthy run, bit for bit.
    cols = list(CHANNELS)
    assert np.array_equal(u0[~onset][cols].to_numpy(), h0[~onset.to_numpy()][cols].to_numpy())
    assert check(u0[~onset], u0[onset], h0[onset.to_numpy()])


def test_fault_spec_errors_name_the_offending_value() -> None:
    with pytest.raises(ValueError, match="unknown fault type 'melted'"):
        small_run([{"lcc": 1, "unit": 0, "type": "melted"}])
    with pytest.raises(ValueError, match=r"severity 1\.5"):
        small_run([{"lcc": 1, "unit": 0, "type": "facet_damage", "severity": 1.5}])
    with pytest.raises(ValueError, match="unit 9 is not below"):
        small_run([{"lcc": 1, "unit": 9, "type": "facet_damage"}])
    with pytest.raises(ValueError, match="unknown key 'sevrity'"):
        small_run([{"lcc": 1, "unit": 0, "type": "facet_damage", "sevrity": 1}])
    with pytest.raises(ValueError, match="unknown channel 'power'"):
        small_run([{"lcc": 1, "unit": 0, "type": "sensor_stuck", "channel": "power"}])
    with pytest.raises(ValueError, match=r"lcc 7 is not one of the simulated LCC ids 1\.\.1"):
        small_run([{"lcc": 7, "unit": 0, "type": "facet_damage"}])
    with pytest.raises(ValueError, match=r"'lcc' .* is required"):
        small_run([{"unit": 0, "type": "facet_damage"}])
    with pytest.raises(ValueError, match="unknown parameter 'nope' \\(neither a laser parameter"):
        small_run(params={"nope": 1.0})
    with pytest.raises(ValueError, match="psu_efficiency"):
        small_run(params={"psu_efficiency": 1.5})
    with pytest.raises(ValueError, match="units must be at least 1, got 0"):
        small_run(units=0)


def test_fault_mixes_are_seeded_and_all_covers_every_type() -> None:
    a = sim.generate(0.05, fault_mix="all", seed=5)
    b = sim.generate(0.05, fault_mix="all", seed=5)
    assert a.attrs["faults"] == b.attrs["faults"]
    assert {f["type"] for f in a.attrs["faults"]} == set(sim.FAULT_TYPES[1:])
    assert set(a.fault_type.unique()) == set(sim.FAULT_TYPES)
    default = sim.generate(0.05, fault_mix="default", seed=5)
    assert len(default.attrs["faults"]) > 0
    assert (default.label == (default.fault_type != "none")).all()


def test_dataframe_layout() -> None:
    df = small_run()
    assert list(df.columns) == [
        *("time_s", "lcc", "unit", "psu", *CHANNELS),
        *("setpoint_a", "state", "op_event", "fault_type", "severity", "label"),
    ]
    assert len(df) == 180 * 4
    assert df.drive_current_a.dtype == np.float32
    assert df.time_s.iloc[-1] == pytest.approx(179.0)
    assert (df.lcc == 1).all()


def test_simulate_command_writes_dataset(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    spec = tmp_path / "faults.json"
    spec.write_text(json.dumps({"faults": [{"lcc": 1, "unit": 0, "type": "facet_damage", "start_s": 30}]}))
    status = cli.main(
        [
            *("simulate", "--hours", "0.02", "--out", str(out), "--lccs", "1", "--units", "4"),
            *("--fault-mix", "none", "--faults", str(spec)),
        ]
    )
    assert status == 0
    df = pd.read_csv(out / "telemetry.csv")
    meta = json.loads((out / "dataset.json").read_text())
    assert len(df) == meta["rows"] == 72 * 4
    assert meta["anomalous_rows"] == int(df.label.sum()) == 42
    assert meta["profile"] == "steady" and meta["schedule"] == []
    assert (df.setpoint_a == 8.0).all() and (df.state == "on").all() and df.op_event.isna().all()
    assert cli.main(["simulate", "--hours", "0.01", "--out", str(out), "--fault-mix", "bogus"]) == 2
    assert cli.main(["simulate", "--hours", "0.01", "--out", str(out), "--param", "nope=1"]) == 2
    hot = tmp_path / "hot"
    assert cli.main(["simulate", "--hours", "0.01", "--out", str(hot), "--param", "ambient_c=45"]) == 0
    assert pd.read_csv(hot / "telemetry.csv").psu_temp_c.mean() > df.psu_temp_c.mean() + 10


def test_a_unit_switched_on_warms_up_with_the_heatsink_time_constant() -> None:
    """Off for 20 min, the heatsink sits at the rack air; switched on, the TEC pulls it to its
    setpoint as exp(-t/tau) and the junction follows it (state `warming` until it has settled)."""
    tau = 45.0
    quiet = {name: 0.0 for name in sim.laser_param_defaults() if name.startswith("noise_")}
    params = {**quiet, "driver_ripple_rejection": 0.0, "heatsink_time_constant_s": tau}
    schedule = [
        {"lcc": 1, "unit": 1, "type": "power_off", "at_s": 60},
        {"lcc": 1, "unit": 1, "type": "power_on", "at_s": 1260},
    ]
    df = sim.generate(
        0.5, lccs=1, units=2, units_per_psu=2, fault_mix="none", params=params, schedule=schedule
    )
    unit = df[df.unit == 1].set_index("time_s")
    air, setpoint = sim.laser_param_defaults()["ambient_c"], sim.laser_param_defaults()["heatsink_setpoint_c"]
    assert unit.loc[1259.0, "heatsink_temp_c"] == pytest.approx(air, abs=1e-4)  # 26 tau off: at the air
    assert unit.loc[1259.0, "state"] == "off" and unit.loc[1259.0, "setpoint_a"] == 0.0
    t = np.arange(0.0, 400.0)
    measured = unit.loc[1260.0 + t, "heatsink_temp_c"].to_numpy(np.float64)
    start = measured[0]
    expected = setpoint + (start - setpoint) * np.exp(-t / tau)
    np.testing.assert_allclose(measured, expected, rtol=1e-6)
    # Fitted time constant of the excess temperature: log-linear slope.
    slope = np.polyfit(t[:200], np.log(measured[:200] - setpoint), 1)[0]
    assert -1.0 / slope == pytest.approx(tau, rel=1e-4)
    states = unit.loc[1260.0 + t, "state"].to_numpy()
    settled = int(np.ceil(tau * np.log((start - setpoint) / sim.operating_profile_defaults()["warm_band_k"])))
    assert (states[:settled] == "warming").all() and (states[settled:] == "on").all()
    assert unit.loc[1260.0, "op_event"] == "power_on"
    # Warm again, it is the unit it was before the power cycle; its healthy twin never moved.
    before, after = unit.loc[59.0, list(CHANNELS)], unit.loc[1799.0, list(CHANNELS)]
    np.testing.assert_allclose(after.to_numpy(np.float64), before.to_numpy(np.float64), rtol=2e-3)
    assert (df[df.unit == 0].state == "on").all()
