"""Simulated and recorded telemetry: labelled datasets from the C++ physics, recordings, replay.

Owns: ``generate`` (the simulator that ``lcc-sim`` runs live, as a labelled table;
``dataset``), recorded telemetry from CSV or MongoDB (``recording``) and replaying it into the
loop like an LCC (``replay``).
May import: ``laserguard.model``, ``laserguard.wire``, ``laserguard._core``, pandas, pyzmq.
Never ``live``, ``commands`` or ``dashboard``.
"""

from laserguard.sim.dataset import (
    FAULT_MIXES,
    FAULT_TYPES,
    OP_EVENTS,
    OPERATING_PROFILES,
    FaultsArg,
    ScheduleArg,
    generate,
    laser_param_defaults,
    operating_profile_defaults,
)

__all__ = [
    "FAULT_MIXES",
    "FAULT_TYPES",
    "OPERATING_PROFILES",
    "OP_EVENTS",
    "FaultsArg",
    "ScheduleArg",
    "generate",
    "laser_param_defaults",
    "operating_profile_defaults",
]
