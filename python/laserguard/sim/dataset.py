"""Labelled historical telemetry from the C++ laser simulator (the physics lcc-sim runs live).

``generate`` returns one row per (time, LCC, unit): every channel of ``codec.CHANNELS``,
the unit's power supply, its operating context (``setpoint_a``, ``state``, ``op_event``) and
the ground truth (``fault_type``, ``severity``, ``label``). Same arguments and seed give the
same frame bit for bit; the ``steady`` operating profile gives the frame of the simulator
before operating profiles existed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import pandas as pd

from laserguard import _core
from laserguard.wire.codec import CHANNELS, UNIT_STATES

FAULT_TYPES: Final[tuple[str, ...]] = tuple(_core.FAULT_TYPES)  # index 0 is "none"
FAULT_MIXES: Final[tuple[str, ...]] = tuple(_core.FAULT_MIXES)
OPERATING_PROFILES: Final[tuple[str, ...]] = tuple(_core.OPERATING_PROFILES)
OP_EVENTS: Final[tuple[str, ...]] = tuple(_core.OP_EVENTS)  # index 0 is "" (no change)

FaultsArg = str | os.PathLike[str] | Sequence[Mapping[str, Any]] | None
ScheduleArg = str | os.PathLike[str] | Sequence[Mapping[str, Any]] | None


def laser_param_defaults() -> dict[str, float]:
    """Every physics parameter (laser_physics.hpp, sources there) with its default value."""
    return {str(k): float(v) for k, v in _core.laser_param_defaults().items()}


def operating_profile_defaults(name: str = "steady") -> dict[str, float]:
    """Every parameter of an operating profile (operating_schedule.hpp) with its value."""
    if name not in OPERATING_PROFILES:
        raise ValueError(
            f"unknown operating profile {name!r}; known profiles: {', '.join(OPERATING_PROFILES)}"
        )
    return {str(k): float(v) for k, v in _core.operating_profile_defaults(name).items()}


def _spec_json(spec: FaultsArg | ScheduleArg, key: str) -> str:
    if spec is None:
        return ""
    if isinstance(spec, str | os.PathLike):
        with open(spec, encoding="utf-8") as fh:
            return fh.read()
    return json.dumps({key: [dict(f) for f in spec]})


def generate(
    hours: float = 1.0,
    *,
    rate_hz: float = 1.0,
    lccs: int = 2,
    units: int = 32,
    units_per_psu: int = 16,
    seed: int = 0,
    faults: FaultsArg = None,
    fault_mix: str = "default",
    first_lcc_id: int = 1,
    params: Mapping[str, float] | None = None,
    profile: str = "steady",
    schedule: ScheduleArg = None,
) -> pd.DataFrame:
    """Simulate ``hours`` of telemetry sampled at ``rate_hz`` for ``lccs`` x ``units`` units.

    ``faults`` is a fault spec (a JSON file path, or a list of dicts with keys ``lcc``,
    ``unit``, ``type``, ``start_s``, ``ramp_s``, ``end_s``, ``severity``, ``channel``, ``psu``)
    added to the seeded random ``fault_mix`` (one of FAULT_MIXES). ``profile`` (one of
    OPERATING_PROFILES) says how the units are operated; ``schedule`` adds exact operating
    changes (a JSON file path, or a list of dicts with keys ``lcc``, ``unit``, ``type``,
    ``at_s`` and the type's value: docs/simulator.md). ``params`` overrides physics or
    profile parameters by name (see ``laser_param_defaults``, ``operating_profile_defaults``).

    Columns: ``time_s, lcc, unit, psu, <CHANNELS...>, setpoint_a, state, op_event,
    fault_type, severity, label``; ``state`` is one of ``codec.UNIT_STATES``, ``op_event``
    the operating change applied at that sample (one of OP_EVENTS, "" for none); ``label`` is
    1 where a fault is active on the unit (or its supply), else 0: operating changes are
    healthy. The faults injected are in ``df.attrs["faults"]``, the operating changes applied
    in ``df.attrs["schedule"]`` (spec form, ``at_s`` = the sample that applied it).
    """
    if not (hours > 0 and rate_hz > 0):
        raise ValueError(f"hours and rate_hz must be positive, got hours={hours!r}, rate_hz={rate_hz!r}")
    for name, value in (("lccs", lccs), ("units", units), ("units_per_psu", units_per_psu)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    if seed < 0 or first_lcc_id < 0:
        raise ValueError(f"seed and first_lcc_id must be non-negative, got {seed} and {first_lcc_id}")
    if fault_mix not in FAULT_MIXES:
        raise ValueError(f"unknown fault mix {fault_mix!r}; known mixes: {', '.join(FAULT_MIXES)}")
    if profile not in OPERATING_PROFILES:
        raise ValueError(
            f"unknown operating profile {profile!r}; known profiles: {', '.join(OPERATING_PROFILES)}"
        )
    n_samples = round(hours * 3600.0 * rate_hz)
    if n_samples < 1:
        raise ValueError(f"{hours} h at {rate_hz} Hz is less than one sample")
    out = _core.simulate(
        lccs,
        first_lcc_id,
        units,
        units_per_psu,
        1.0 / rate_hz,
        n_samples,
        seed,
        _spec_json(faults, "faults"),
        fault_mix,
        dict(params or {}),
        profile,
        _spec_json(schedule, "changes"),
    )
    values = out["values"]
    columns: dict[str, Any] = {
        "time_s": out["time_s"],
        "lcc": out["lcc"],
        "unit": out["unit"],
        "psu": out["psu"],
    }
    for i, name in enumerate(CHANNELS):
        columns[name] = values[:, i]
    columns["setpoint_a"] = out["setpoint_a"]
    columns["state"] = pd.Categorical.from_codes(out["state"].astype(np.int8), categories=list(UNIT_STATES))
    columns["op_event"] = pd.Categorical.from_codes(
        out["op_event"].astype(np.int8), categories=list(OP_EVENTS)
    )
    codes = out["fault_type"]
    columns["fault_type"] = pd.Categorical.from_codes(codes.astype(np.int8), categories=list(FAULT_TYPES))
    columns["severity"] = out["severity"]
    columns["label"] = (codes != 0).astype(np.int8)
    frame = pd.DataFrame(columns)
    frame.attrs["faults"] = json.loads(out["faults_json"])["faults"]
    frame.attrs["schedule"] = json.loads(out["schedule_json"])["changes"]
    frame.attrs["profile"] = profile
    frame.attrs["rate_hz"] = rate_hz
    frame.attrs["seed"] = seed
    return frame
