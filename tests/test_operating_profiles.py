"""Operating profiles and schedules of the simulator (setpoints, power cycles, TEC, rack air)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from laserguard import cli, sim
from laserguard.wire.codec import CHANNELS, UNIT_STATES

BEFORE_PROFILES = [*("time_s", "lcc", "unit", "psu", *CHANNELS), "fault_type", "severity", "label"]

# sha256 (first 32 hex digits) of sim.generate's columns, computed from the simulator at commit
# e6ca802, before operating profiles existed: `steady` must give exactly these frames.
STEADY_CHECKSUMS: list[tuple[dict[str, Any], str]] = [
    ({"hours": 0.05, "rate_hz": 1.0, "seed": 0, "fault_mix": "none"}, "1162f01523cf6134acd3929c9ccb6d8f"),
    ({"hours": 0.05, "rate_hz": 1.0, "seed": 1, "fault_mix": "default"}, "89077a24218c72109e76ddd3e9b449a4"),
    ({"hours": 0.02, "rate_hz": 10.0, "seed": 7, "fault_mix": "all"}, "3db633e40b044070fc945dabdba2a8a8"),
    (
        {
            "hours": 0.5,
            "rate_hz": 0.1,
            "seed": 3,
            "fault_mix": "all",
            "lccs": 3,
            "units": 20,
            "units_per_psu": 8,
        },
        "0e1f50ec4c87235e430a471d15120df3",
    ),
    (
        {
            "hours": 0.05,
            "rate_hz": 1.0,
            "seed": 11,
            "fault_mix": "default",
            "params": {"ambient_c": 38.0, "nominal_drive_current_a": 7.5},
        },
        "57d29cc34e7b2c7971064b989a4a9c86",
    ),
]


def checksum(frame: pd.DataFrame) -> str:
    h = hashlib.sha256()
    for name in BEFORE_PROFILES:
        column = frame[name]
        array = (
            column.cat.codes.to_numpy()
            if isinstance(column.dtype, pd.CategoricalDtype)
            else column.to_numpy()
        )
        h.update(name.encode())
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()[:32]


@pytest.mark.parametrize(("kwargs", "expected"), STEADY_CHECKSUMS)
def test_steady_is_bit_identical_to_the_simulator_before_profiles(
    kwargs: dict[str, Any], expected: str
) -> None:
    frame = sim.generate(**kwargs)
    assert checksum(frame) == expected
    assert checksum(sim.generate(**kwargs, profile="steady")) == expected
    nominal = kwargs.get("params", {}).get("nominal_drive_current_a", 8.0)
    assert (frame.setpoint_a == np.float32(nominal)).all() and (frame.state == "on").all()
    assert (frame.op_event == "").all() and frame.attrs["schedule"] == []


def test_profiles_and_their_parameters_are_listed() -> None:
    assert sim.OPERATING_PROFILES == ("steady", "lab", "production")
    assert sim.OP_EVENTS == (
        *("", "setpoint_step", "setpoint_ramp", "power_off", "power_on"),
        *("tec_setpoint", "ambient_step", "derate"),
    )
    steady, lab, production = (sim.operating_profile_defaults(p) for p in sim.OPERATING_PROFILES)
    assert steady["setpoint_changes_per_hour"] == 0 and steady["ambient_daily_amplitude_c"] == 0
    assert lab["setpoint_changes_per_hour"] > production["setpoint_changes_per_hour"] > 0
    assert production["ambient_daily_amplitude_c"] > 0
    with pytest.raises(ValueError, match="unknown operating profile 'factory'"):
        sim.operating_profile_defaults("factory")


def changes_per_unit_hour(frame: pd.DataFrame, hours: float) -> float:
    units = int(frame.groupby(["lcc", "unit"]).ngroups)
    return float((frame.op_event != "").sum()) / (units * hours)


@pytest.mark.parametrize(("profile", "hours", "rate_hz"), [("lab", 2.0, 1.0), ("production", 48.0, 1 / 60)])
def test_profile_schedules_are_reproducible_in_range_and_healthy(
    profile: str, hours: float, rate_hz: float
) -> None:
    kw: dict[str, Any] = {"rate_hz": rate_hz, "lccs": 2, "units": 8, "units_per_psu": 4, "fault_mix": "none"}
    a = sim.generate(hours, seed=5, profile=profile, **kw)
    b = sim.generate(hours, seed=5, profile=profile, **kw)
    pd.testing.assert_frame_equal(a, b)
    assert a.attrs["schedule"] == b.attrs["schedule"]
    assert a.attrs["schedule"] != sim.generate(hours, seed=6, profile=profile, **kw).attrs["schedule"]
    # Every operating change is healthy.
    assert (a.label == 0).all() and (a.fault_type == "none").all()
    p = sim.operating_profile_defaults(profile)
    nominal = sim.laser_param_defaults()["nominal_drive_current_a"]
    lo, hi = p["setpoint_min_fraction"] * nominal, p["setpoint_max_fraction"] * nominal
    powered = a[a.state != "off"]
    assert powered.setpoint_a.between(lo - 1e-5, hi + 1e-5).all()
    assert (a[a.state == "off"].setpoint_a == 0).all()
    assert set(a.state.unique()) <= set(UNIT_STATES) - {"derated"}
    # Each recorded change marks its unit's row at its time (an ambient step marks every unit).
    events = a[a.op_event != ""].set_index(["time_s", "lcc", "unit"]).op_event
    for change in a.attrs["schedule"]:
        if change["type"] == "ambient_step":
            rows = a[(a.time_s == change["at_s"]) & (a.lcc == change["lcc"])]
            assert (rows.op_event != "").all()
        else:
            assert events[(change["at_s"], change["lcc"], change["unit"])] != ""
    steps = [c for c in a.attrs["schedule"] if c["type"] in ("setpoint_step", "setpoint_ramp")]
    assert steps and all(lo <= c["setpoint_a"] <= hi for c in steps)
    rate = changes_per_unit_hour(a, hours)
    if profile == "lab":
        assert 3.0 <= rate <= 12.0  # several changes per unit-hour
        assert {"setpoint_step", "setpoint_ramp", "power_off", "power_on", "tec_setpoint"} <= set(a.op_event)
    else:
        assert 0.05 <= rate <= 1.0  # long runs, rare changes


def test_setpoint_steps_move_the_light_and_heat_as_the_physics_says() -> None:
    schedule = [
        {"lcc": 1, "unit": 0, "type": "setpoint_step", "at_s": 60, "setpoint_a": 6.0},
        {"lcc": 1, "unit": 1, "type": "setpoint_ramp", "at_s": 60, "setpoint_a": 4.0, "ramp_s": 100},
        {"lcc": 1, "unit": 2, "type": "tec_setpoint", "at_s": 60, "tec_setpoint_c": 28.0},
    ]
    df = sim.generate(0.1, lccs=1, units=4, fault_mix="none", schedule=schedule)
    unit = {u: g.set_index("time_s") for u, g in df.groupby("unit")}
    before, after = unit[0].loc[50:59], unit[0].loc[70:]
    assert (before.setpoint_a == 8.0).all() and (after.setpoint_a == 6.0).all()
    assert after.drive_current_a.mean() == pytest.approx(6.0, abs=0.01)
    assert after.optical_power_w.mean() < before.optical_power_w.mean() - 1.5  # ~1 W/A slope
    assert after.tec_current_a.mean() < before.tec_current_a.mean()  # less heat to pump
    ramp = unit[1].setpoint_a
    assert ramp.loc[110.0] == pytest.approx(6.0) and ramp.loc[160.0] == pytest.approx(4.0)
    assert unit[1].loc[60.0, "op_event"] == "setpoint_ramp" and unit[1].loc[61.0, "op_event"] == ""
    assert unit[2].heatsink_temp_c.loc[100:].mean() == pytest.approx(28.0, abs=0.05)
    assert (unit[3].op_event == "").all() and (unit[3].setpoint_a == 8.0).all()
    assert [c["type"] for c in df.attrs["schedule"]] == ["setpoint_step", "setpoint_ramp", "tec_setpoint"]


def test_a_degraded_unit_stays_degraded_at_a_new_setpoint() -> None:
    schedule = [
        {"lcc": 1, "unit": u, "type": "setpoint_step", "at_s": 300, "setpoint_a": 5.5} for u in (0, 1)
    ]
    faults = [{"lcc": 1, "unit": 1, "type": "degradation", "start_s": 60, "severity": 1.0}]
    df = sim.generate(0.15, lccs=1, units=2, fault_mix="none", schedule=schedule, faults=faults)
    power = df.pivot(index="time_s", columns="unit", values="optical_power_w")
    # Relative to its healthy twin, the degraded unit loses light at 8 A and at 5.5 A alike.
    assert (power.loc[200:299, 1] / power.loc[200:299, 0]).mean() < 0.85
    assert (power.loc[400:, 1] / power.loc[400:, 0]).mean() < 0.85
    assert (df[(df.unit == 1) & (df.time_s >= 60)].label == 1).all()


def test_production_rack_air_follows_a_daily_cycle() -> None:
    params = {"hvac_steps_per_hour": 0.0, "setpoint_changes_per_hour": 0.0, "power_cycles_per_hour": 0.0}
    df = sim.generate(
        24.0, rate_hz=1 / 120, lccs=1, units=2, fault_mix="none", profile="production", params=params
    )
    psu = df[df.unit == 0].set_index("time_s").psu_temp_c.rolling(15, center=True).mean()
    amplitude = sim.operating_profile_defaults("production")["ambient_daily_amplitude_c"]
    assert psu.max() - psu.min() == pytest.approx(2 * amplitude, rel=0.15)
    assert psu.idxmax() / 3600 == pytest.approx(15.0, abs=1.0)  # warmest mid-afternoon
    # The TEC holds the heatsink; it pays for the warmer air in current.
    unit = df[df.unit == 0].set_index("time_s")
    assert unit.heatsink_temp_c.std() < 0.05
    assert (
        unit.tec_current_a.loc[14 * 3600 : 16 * 3600].mean()
        > unit.tec_current_a.loc[2 * 3600 : 4 * 3600].mean()
    )


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (
            [{"lcc": 1, "unit": 0, "type": "boost", "at_s": 1}],
            "change 0: unknown operating change type 'boost'",
        ),
        (
            [{"lcc": 1, "unit": 0, "type": "power_off", "at_s": 1, "setpoint_a": 3.0}],
            "change 0 (power_off): unknown key 'setpoint_a'",
        ),
        ([{"lcc": 1, "unit": 0, "type": "setpoint_step", "at_s": 1}], "'setpoint_a' (a number) is required"),
        (
            [{"lcc": 1, "unit": 0, "type": "setpoint_step", "at_s": 1, "setpoint_a": 11.0}],
            "setpoint_a 11.000000 A is outside the range",
        ),
        ([{"lcc": 1, "unit": 9, "type": "power_on", "at_s": 1}], "change 0 (power_on): unit 9 is not below"),
        ([{"lcc": 3, "type": "ambient_step", "at_s": 1, "ambient_offset_c": 1}], "lcc 3 is not one of"),
        (
            [{"lcc": 1, "unit": 0, "type": "tec_setpoint", "at_s": 1, "tec_setpoint_c": 50}],
            "tec_setpoint_c 50.0",
        ),
        ([{"lcc": 1, "unit": 0, "type": "derate", "at_s": 1}], "derate loop"),
    ],
)
def test_schedule_errors_name_the_entry_and_value(schedule: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValueError, match=None) as info:
        sim.generate(0.01, lccs=1, units=4, fault_mix="none", schedule=schedule)
    assert message in str(info.value)


def test_simulate_command_writes_the_operating_context(tmp_path: Path) -> None:
    schedule = tmp_path / "schedule.json"
    schedule.write_text(
        json.dumps({"changes": [{"lcc": 1, "unit": 2, "type": "power_off", "at_s": 10}]}), encoding="utf-8"
    )
    out = tmp_path / "lab"
    argv = [
        "simulate",
        "--hours",
        "0.5",
        "--out",
        str(out),
        "--lccs",
        "1",
        "--units",
        "4",
        "--fault-mix",
        "none",
    ]
    assert cli.main([*argv, "--profile", "lab", "--schedule", str(schedule)]) == 0
    df = pd.read_csv(out / "telemetry.csv", keep_default_na=False)
    meta = json.loads((out / "dataset.json").read_text())
    assert list(df.columns[-6:]) == ["setpoint_a", "state", "op_event", "fault_type", "severity", "label"]
    assert meta["profile"] == "lab" and meta["schedule_file"] == str(schedule)
    assert meta["schedule"][0] == {"lcc": 1, "unit": 2, "type": "power_off", "at_s": 10.0}
    assert len(meta["schedule"]) == int((df.op_event != "").sum()) > 1
    row = df[(df.unit == 2) & (df.time_s == 10.0)].iloc[0]
    assert row.state == "off" and row.op_event == "power_off" and row.setpoint_a == 0.0
    assert set(df.state) <= set(UNIT_STATES)
    assert cli.main([*argv, "--profile", "factory"]) == 2
    assert cli.main([*argv, "--param", "ramp_share=3"]) == 2
