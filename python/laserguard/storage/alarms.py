"""Unit alarms with hysteresis: raised after N consecutive anomalous samples, cleared after M normal
ones spanning at least ``clear_after_s`` seconds of sender time.

One noisy sample therefore never raises an alarm, and a quiet moment never clears it: at 10 Hz,
M samples are half a second, shorter than the gaps of an intermittent fault (spikes, an
oscillating driver), so the time floor is what keeps one fault event to one alarm. The
tracker is pure (numpy state per LCC); ``alarm_writes`` turns its transitions into idempotent
write operations for the anomaly-event and latest-state collections. Operators acknowledge an
alarm with ``acknowledge_alarm``; it stays active until the unit has been normal for M samples.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from laserguard.storage.batch_writer import WriteOp, insert_op, update_op
from laserguard.storage.schema import (
    ALARM_ACTIVE,
    ALARM_CLEARED,
    DEFAULT_NAMES,
    CollectionNames,
    alarm_event_id,
    boot_key,
    latest_guard,
    latest_state_id,
)


def ns_to_datetime(timestamp_ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp_ns / 1e9, tz=dt.UTC)


@dataclass(frozen=True)
class AlarmTransition:
    kind: str  # "raise" or "clear"
    lcc_id: int
    unit: int
    boot_id: int
    seq: int
    timestamp_ns: int
    event_id: str
    score: float
    model_version: str
    top_features: list[int]
    top_weights: list[float]


class _LccState:
    def __init__(self, n_units: int) -> None:
        self.anomalous_run = np.zeros(n_units, dtype=np.int64)
        self.normal_run = np.zeros(n_units, dtype=np.int64)
        self.last_anomalous_ns = np.zeros(n_units, dtype=np.int64)
        self.active: list[str | None] = [None] * n_units

    def resize(self, n_units: int) -> None:
        grow = n_units - len(self.active)
        if grow > 0:
            self.anomalous_run = np.concatenate([self.anomalous_run, np.zeros(grow, dtype=np.int64)])
            self.normal_run = np.concatenate([self.normal_run, np.zeros(grow, dtype=np.int64)])
            self.last_anomalous_ns = np.concatenate([self.last_anomalous_ns, np.zeros(grow, dtype=np.int64)])
            self.active.extend([None] * grow)


class AlarmTracker:
    """Hysteresis state of every unit of every LCC."""

    def __init__(self, raise_after: int = 3, clear_after: int = 5, clear_after_s: float = 10.0) -> None:
        if raise_after < 1 or clear_after < 1:
            raise ValueError(f"raise_after and clear_after must be >= 1, got {raise_after} and {clear_after}")
        if not clear_after_s >= 0:
            raise ValueError(f"clear_after_s must be >= 0, got {clear_after_s}")
        self.raise_after = raise_after
        self.clear_after = clear_after
        self.clear_after_ns = int(clear_after_s * 1e9)
        self._lccs: dict[int, _LccState] = {}

    def _state(self, lcc_id: int, n_units: int) -> _LccState:
        state = self._lccs.get(lcc_id)
        if state is None:
            state = self._lccs[lcc_id] = _LccState(n_units)
        state.resize(n_units)
        return state

    def restore(self, active: Iterable[tuple[int, int, str]]) -> None:
        """Re-arm alarms still active in the database (lcc, unit, event id) after a restart."""
        for lcc_id, unit, event_id in active:
            state = self._state(lcc_id, unit + 1)
            state.active[unit] = event_id
            state.anomalous_run[unit] = self.raise_after

    def active_alarms(self) -> dict[tuple[int, int], str]:
        return {
            (lcc_id, unit): event_id
            for lcc_id, state in self._lccs.items()
            for unit, event_id in enumerate(state.active)
            if event_id is not None
        }

    def observe(
        self,
        lcc_id: int,
        seq: int,
        timestamp_ns: int,
        anomalous: npt.NDArray[np.bool_],
        scores: npt.NDArray[np.float32],
        model_version: str,
        top_features: npt.NDArray[Any],
        top_weights: npt.NDArray[Any],
        *,
        boot_id: int = 0,
    ) -> list[AlarmTransition]:
        """Feed one feedback frame (``anomalous``: bool per unit); return the alarms it raises or clears.

        The hysteresis runs on across an LCC restart (a new boot): the units are the same lasers."""
        n_units = len(anomalous)
        state = self._state(lcc_id, n_units)
        runs = state.anomalous_run[:n_units]
        normals = state.normal_run[:n_units]
        runs[:] = np.where(anomalous, runs + 1, 0)
        normals[:] = np.where(anomalous, 0, normals + 1)
        last_bad = state.last_anomalous_ns[:n_units]
        last_bad[anomalous] = timestamp_ns
        is_active = np.array([e is not None for e in state.active[:n_units]], dtype=bool)
        to_raise = np.flatnonzero(~is_active & (runs >= self.raise_after))
        quiet_long_enough = timestamp_ns - last_bad >= self.clear_after_ns
        to_clear = np.flatnonzero(is_active & (normals >= self.clear_after) & quiet_long_enough)
        events: list[tuple[str, int, str]] = []
        for unit in to_raise.tolist():
            event_id = alarm_event_id(lcc_id, unit, seq, boot_id)
            state.active[unit] = event_id
            events.append(("raise", unit, event_id))
        for unit in to_clear.tolist():
            active_id = state.active[unit]
            assert active_id is not None
            state.active[unit] = None
            events.append(("clear", unit, active_id))
        transitions = [
            self._transition(
                kind,
                lcc_id,
                unit,
                boot_id,
                seq,
                timestamp_ns,
                event_id,
                scores,
                model_version,
                top_features,
                top_weights,
            )
            for kind, unit, event_id in events
        ]
        return transitions

    @staticmethod
    def _transition(
        kind: str,
        lcc_id: int,
        unit: int,
        boot_id: int,
        seq: int,
        timestamp_ns: int,
        event_id: str,
        scores: npt.NDArray[np.float32],
        model_version: str,
        top_features: npt.NDArray[Any],
        top_weights: npt.NDArray[Any],
    ) -> AlarmTransition:
        return AlarmTransition(
            kind=kind,
            lcc_id=lcc_id,
            unit=unit,
            boot_id=boot_id,
            seq=seq,
            timestamp_ns=timestamp_ns,
            event_id=event_id,
            score=float(scores[unit]),
            model_version=model_version,
            top_features=[int(f) for f in top_features[unit]] if len(top_features) > unit else [],
            top_weights=[float(w) for w in top_weights[unit]] if len(top_weights) > unit else [],
        )


def alarm_writes(transition: AlarmTransition, names: CollectionNames) -> list[WriteOp]:
    """Idempotent writes for one transition: the event document and the unit's latest state."""
    t = transition
    when = ns_to_datetime(t.timestamp_ns)
    # Boot-aware like the telemetry's latest state: after an LCC restart (seq from 0 again) the
    # new boot's alarm state is written, ordered by the sender's clock across boots.
    latest_filter = {
        "_id": latest_state_id(t.lcc_id, t.unit),
        **latest_guard("alarm_seq", (t.boot_id, t.seq, t.timestamp_ns)),
    }
    on_insert = {"lcc": t.lcc_id, "unit": t.unit, "seq": -1, "score_seq": -1}
    if t.kind == "raise":
        event = {
            "_id": t.event_id,
            "lcc": t.lcc_id,
            "unit": t.unit,
            "boot": boot_key(t.boot_id),
            "state": ALARM_ACTIVE,
            "raised_seq": t.seq,
            "raised_at": when,
            "score": t.score,
            "model_version": t.model_version,
            "top_features": t.top_features,
            "top_weights": t.top_weights,
            "acknowledged": False,
            "acknowledged_at": None,
            "acknowledged_by": None,
            "cleared_seq": None,
            "cleared_at": None,
        }
        latest = {
            "alarm_seq": t.seq,
            "alarm_boot": boot_key(t.boot_id),
            "alarm_ts_ns": t.timestamp_ns,
            "alarm_state": ALARM_ACTIVE,
            "alarm_event_id": t.event_id,
            "alarm_acknowledged": False,
        }
        return [
            insert_op(names.anomaly_events, event),
            update_op(
                names.latest_state, latest_filter, {"$set": latest, "$setOnInsert": on_insert}, upsert=True
            ),
        ]
    cleared = {"state": ALARM_CLEARED, "cleared_seq": t.seq, "cleared_at": when}
    latest = {
        "alarm_seq": t.seq,
        "alarm_boot": boot_key(t.boot_id),
        "alarm_ts_ns": t.timestamp_ns,
        "alarm_state": ALARM_CLEARED,
        "alarm_event_id": t.event_id,
    }
    return [
        update_op(names.anomaly_events, {"_id": t.event_id}, {"$set": cleared}, upsert=False),
        update_op(
            names.latest_state, latest_filter, {"$set": latest, "$setOnInsert": on_insert}, upsert=True
        ),
    ]


def load_active_alarms(db: Any, names: CollectionNames = DEFAULT_NAMES) -> list[tuple[int, int, str]]:
    """(lcc, unit, event id) of every alarm still active in the database."""
    cursor = db[names.anomaly_events].find({"state": ALARM_ACTIVE}, {"lcc": 1, "unit": 1})
    return [(int(doc["lcc"]), int(doc["unit"]), str(doc["_id"])) for doc in cursor]


def acknowledge_alarm(
    db: Any, event_id: str, acknowledged_by: str, names: CollectionNames = DEFAULT_NAMES
) -> bool:
    """Mark an alarm acknowledged (it stays active until cleared); False if no such alarm."""
    from pymongo.write_concern import WriteConcern

    db = db.with_options(write_concern=WriteConcern(w=1, j=True))
    now = dt.datetime.now(tz=dt.UTC)
    result = db[names.anomaly_events].update_one(
        {"_id": event_id},
        {"$set": {"acknowledged": True, "acknowledged_at": now, "acknowledged_by": acknowledged_by}},
    )
    if result.matched_count == 0:
        return False
    db[names.latest_state].update_one({"alarm_event_id": event_id}, {"$set": {"alarm_acknowledged": True}})
    return True


def clear_alarm(db: Any, event_id: str, cleared_by: str, names: CollectionNames = DEFAULT_NAMES) -> bool:
    """An operator clears an active alarm by hand; False if there is no active alarm ``event_id``.

    The store's hysteresis tracker still counts the unit as alarmed until it has been normal for
    M samples (then its own clear only re-stamps this document), so a unit that stays anomalous
    is not re-raised before the store restarts.
    """
    from pymongo.write_concern import WriteConcern

    db = db.with_options(write_concern=WriteConcern(w=1, j=True))
    now = dt.datetime.now(tz=dt.UTC)
    result = db[names.anomaly_events].update_one(
        {"_id": event_id, "state": ALARM_ACTIVE},
        {"$set": {"state": ALARM_CLEARED, "cleared_at": now, "cleared_by": cleared_by}},
    )
    if result.matched_count == 0:
        return False
    db[names.latest_state].update_one(
        {"alarm_event_id": event_id, "alarm_state": ALARM_ACTIVE}, {"$set": {"alarm_state": ALARM_CLEARED}}
    )
    return True
