"""Simulated and recorded telemetry: labelled datasets from the C++ physics, recordings, replay.

Owns: ``generate`` (the simulator that ``lcc-sim`` runs live, as a labelled table;
``dataset``), recorded telemetry from CSV or MongoDB (``recording``) and replaying it into the
loop like an LCC (``replay``).
May import: ``laserguard.model``, ``laserguard.wire``, ``laserguard._core``, pandas, pyzmq.
Never ``live``, ``commands`` or ``dashboard``.
"""

from laserguard.sim.dataset import FAULT_MIXES, FAULT_TYPES, FaultsArg, generate, laser_param_defaults

__all__ = ["FAULT_MIXES", "FAULT_TYPES", "FaultsArg", "generate", "laser_param_defaults"]
