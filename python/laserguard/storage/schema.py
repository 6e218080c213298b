"""Collection names, deterministic document ids and indexes of the `laserguard` database.

- ``frames``: one document per telemetry frame (every unit of one LCC at one instant),
  ``_id`` = "<lcc>:<boot:016x>:<seq:020>", per-unit columns (``frame_documents``). The boot id is
  part of the key because seq restarts at 0 on every LCC start. Indexes: ``(lcc, ts)`` (a unit's
  history over time, across boots) and ``ts`` (retention).
- ``unit_minutes``: per unit per hour one document with a summary of each minute (``rollup``),
  ``_id`` = "<lcc>:<unit:03>:<hour start, epoch s:012>", so a unit's summaries are an _id range.
- ``telemetry``: the per-unit-sample documents of earlier versions, ``_id`` =
  "<lcc>:<unit:03>:<boot:016x>:<seq:020>"; read (history, counts, replay), never written.
- ``latest_state``: one document per unit, ``_id`` = "<lcc>:<unit>", upserted on every write and
  guarded so it only moves forward: by seq within one boot, by the sender's timestamp across boots. Reading it is one small collection scan,
  independent of history size (sort+limit over ``telemetry`` does not stop early on SecantusDB).
- ``anomaly_events``: one document per alarm, ``_id`` = "<lcc>:<unit>:<raised seq>", with
  ``state`` "active" or "cleared" and an ``acknowledged`` flag.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FRAMES = "frames"
UNIT_MINUTES = "unit_minutes"
TELEMETRY = "telemetry"  # per-unit-sample documents of earlier versions (read, not written)
ROLLUP_STATE = "rollup_state"
LATEST_STATE = "latest_state"
ANOMALY_EVENTS = "anomaly_events"

ALARM_NONE = "none"
ALARM_ACTIVE = "active"
ALARM_CLEARED = "cleared"


def boot_key(boot_id: int) -> str:
    """A boot id as stored: 16 hex digits (BSON integers are signed 64-bit, boot ids are unsigned)."""
    return f"{boot_id:016x}"


def frame_id(lcc_id: int, boot_id: int, seq: int) -> str:
    # Zero-padded seq: the frames of one boot are a contiguous, seq-ordered range of the _id index.
    return f"{lcc_id}:{boot_id:016x}:{seq:020d}"


def frame_range_filter(lcc_id: int, boot_id: int, first_seq: int, end_seq: int) -> dict[str, Any]:
    """Filter for one LCC boot's frames with first_seq <= seq < end_seq (only the _id index)."""
    return {"_id": {"$gte": frame_id(lcc_id, boot_id, first_seq), "$lt": frame_id(lcc_id, boot_id, end_seq)}}


def unit_minutes_id(lcc_id: int, unit: int, hour_epoch_s: int) -> str:
    return f"{lcc_id}:{unit:03d}:{hour_epoch_s:012d}"


def telemetry_id(lcc_id: int, seq: int, unit: int, *, boot_id: int = 0) -> str:
    # Zero-padded so one unit's samples of one boot are a contiguous, seq-ordered range of the
    # _id index: per-unit history needs no secondary index (each one costs ~2/3 of the insert rate).
    return f"{lcc_id}:{unit:03d}:{boot_id:016x}:{seq:020d}"


def unit_history_filter(
    lcc_id: int, unit: int, first_seq: int = 0, end_seq: int | None = None, *, boot_id: int = 0
) -> dict[str, Any]:
    """Filter for one unit's telemetry of one boot with first_seq <= seq < end_seq (only the _id index)."""
    lower = telemetry_id(lcc_id, first_seq, unit, boot_id=boot_id)
    if end_seq is not None:
        upper = telemetry_id(lcc_id, end_seq, unit, boot_id=boot_id)
    else:
        upper = f"{lcc_id}:{unit:03d}:{boot_id:016x};"  # ';' sorts right after ':'
    return {"_id": {"$gte": lower, "$lt": upper}}


def latest_state_id(lcc_id: int, unit: int) -> str:
    return f"{lcc_id}:{unit}"


def alarm_event_id(lcc_id: int, unit: int, raised_seq: int, boot_id: int = 0) -> str:
    """``<lcc>:<unit>:<boot, 16 hex>:<raised seq>``: a restarted LCC's seq starts again at 0, so
    the boot keeps a new alarm from colliding with an old one raised at the same seq."""
    return f"{lcc_id}:{unit}:{boot_key(boot_id)}:{raised_seq}"


@dataclass(frozen=True)
class CollectionNames:
    frames: str = FRAMES
    unit_minutes: str = UNIT_MINUTES
    rollup_state: str = ROLLUP_STATE
    telemetry: str = TELEMETRY
    latest_state: str = LATEST_STATE
    anomaly_events: str = ANOMALY_EVENTS


DEFAULT_NAMES = CollectionNames()


def ensure_indexes(db: Any, names: CollectionNames = DEFAULT_NAMES) -> None:
    """Create the indexes the queries need (idempotent). ``frames`` gets ``(lcc, ts)`` for a unit's
    history over time: with 32 unit-samples per document a secondary index costs little (on
    per-sample documents it cut the embedded server's insert rate from ~8.5k to ~3k documents/s).
    The retention indexes on ``ts``/``hour`` are made by ``retention.ensure_retention``."""
    db[names.frames].create_index([("lcc", 1), ("ts", 1)], name="lcc_ts")
    # A boot's recent frames by seq (the dashboard's last N samples): SecantusDB serves an _id
    # range with a collection scan, a secondary index with an index range.
    db[names.frames].create_index([("lcc", 1), ("boot", 1), ("seq", 1)], name="lcc_boot_seq")
    db[names.unit_minutes].create_index([("lcc", 1), ("unit", 1), ("hour", 1)], name="lcc_unit_hour")
    db[names.anomaly_events].create_index([("state", 1), ("lcc", 1), ("unit", 1)], name="state_lcc_unit")
    db[names.anomaly_events].create_index(
        [("lcc", 1), ("unit", 1), ("raised_seq", -1)], name="lcc_unit_raised"
    )


# Where a sample stands in an LCC's stream: (boot, seq, sender timestamp ns). Within a boot seq
# orders samples; across boots (seq restarted at 0) the sender's clock does.
Position = tuple[int, int, int]

# Latest-state field names of each guard: (boot field, seq field, timestamp field).
_GUARD_FIELDS = {
    "seq": ("boot", "seq", "ts_ns"),
    "score_seq": ("score_boot", "score_seq", "score_ts_ns"),
    "alarm_seq": ("alarm_boot", "alarm_seq", "alarm_ts_ns"),
}


def is_newer(candidate: Position, current: Position) -> bool:
    """True if ``candidate`` comes after ``current`` in the LCC's stream."""
    if candidate[0] == current[0]:
        return candidate[1] > current[1]
    return candidate[2] > current[2]


def latest_guard(guard: str, position: Position) -> dict[str, Any]:
    """Filter clause matching a latest-state document that ``position`` may overwrite (the database
    side of ``is_newer``; a document without that part yet always may be)."""
    boot_field, seq_field, ts_field = _GUARD_FIELDS[guard]
    boot, seq, ts_ns = position
    return {
        "$or": [
            {boot_field: boot_key(boot), seq_field: {"$lt": seq}},
            {boot_field: {"$ne": boot_key(boot)}, ts_field: {"$lt": ts_ns}},
            {ts_field: {"$exists": False}},
        ]
    }
