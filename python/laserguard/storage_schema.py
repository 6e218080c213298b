"""Collection names, deterministic document ids and indexes of the `laserguard` database.

- ``telemetry``: one document per unit-sample, ``_id`` = "<lcc>:<seq>:<unit>", every channel by
  name under ``values``, plus ``score``/``anomalous``/``model_version`` once feedback is known.
- ``latest_state``: one document per unit, ``_id`` = "<lcc>:<unit>", upserted on every write and
  guarded by sequence numbers so it only moves forward. Reading it is one small collection scan,
  independent of history size (sort+limit over ``telemetry`` does not stop early on SecantusDB).
- ``anomaly_events``: one document per alarm, ``_id`` = "<lcc>:<unit>:<raised seq>", with
  ``state`` "active" or "cleared" and an ``acknowledged`` flag.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TELEMETRY = "telemetry"
LATEST_STATE = "latest_state"
ANOMALY_EVENTS = "anomaly_events"

ALARM_NONE = "none"
ALARM_ACTIVE = "active"
ALARM_CLEARED = "cleared"


def telemetry_id(lcc_id: int, seq: int, unit: int) -> str:
    return f"{lcc_id}:{seq}:{unit}"


def latest_state_id(lcc_id: int, unit: int) -> str:
    return f"{lcc_id}:{unit}"


def alarm_event_id(lcc_id: int, unit: int, raised_seq: int) -> str:
    return f"{lcc_id}:{unit}:{raised_seq}"


@dataclass(frozen=True)
class CollectionNames:
    telemetry: str = TELEMETRY
    latest_state: str = LATEST_STATE
    anomaly_events: str = ANOMALY_EVENTS


DEFAULT_NAMES = CollectionNames()


def ensure_indexes(db: Any, names: CollectionNames = DEFAULT_NAMES) -> None:
    """Create the indexes the queries need (idempotent). One history index only: each index
    roughly halves insert throughput on the embedded server."""
    db[names.telemetry].create_index([("lcc", 1), ("unit", 1), ("ts", 1)], name="lcc_unit_ts")
    db[names.anomaly_events].create_index([("state", 1), ("lcc", 1), ("unit", 1)], name="state_lcc_unit")
    db[names.anomaly_events].create_index(
        [("lcc", 1), ("unit", 1), ("raised_seq", -1)], name="lcc_unit_raised"
    )
