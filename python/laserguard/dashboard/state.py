"""What the dashboard shows, read from MongoDB once a second by one thread for every browser.

The grid comes from ``latest_state`` (one document per unit, read in milliseconds however long
the history), the alarm list from ``anomaly_events``. Readers get an immutable ``Snapshot``; a
down database keeps the last snapshot on screen with the error next to it.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from laserguard.model.baseline import explanation_name
from laserguard.storage.alarms import acknowledge_alarm, clear_alarm
from laserguard.storage.schema import (
    ALARM_ACTIVE,
    ALARM_CLEARED,
    DEFAULT_NAMES,
    CollectionNames,
)
from laserguard.storage.unit_history import recent_samples, unit_history
from laserguard.wire.codec import CHANNELS, UNIT_STATES

RECENT_CLEARED_ALARMS = 10
# Shown for a document without a state (stored before units reported one) or with a name this
# version does not know.
UNKNOWN_STATE = "unknown"


def finite_or_none(value: Any) -> Any:
    """JSON has no NaN/inf: a missing reading becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def iso(value: Any) -> str | None:
    if not isinstance(value, dt.datetime):
        return None
    if value.tzinfo is None:  # pymongo returns naive UTC datetimes
        value = value.replace(tzinfo=dt.UTC)
    text: str = value.isoformat()
    return text.replace("+00:00", "Z")


def setpoint_of(doc: dict[str, Any]) -> float | None:
    """The document's setpoint in A; None when unknown (absent, null or NaN)."""
    value = doc.get("setpoint_a")
    return finite_or_none(float(value)) if isinstance(value, int | float) else None


def state_of(doc: dict[str, Any]) -> str:
    """The document's state name; UNKNOWN_STATE when absent or not a known name."""
    value = doc.get("state")
    return value if isinstance(value, str) and value in UNIT_STATES else UNKNOWN_STATE


def feature_names(indices: list[int] | None) -> list[str]:
    """Explanation codes as names: a channel (fleet stage) or ``channel:kind`` (the unit's own baseline)."""
    return [explanation_name(i, CHANNELS) for i in indices or [] if i >= 0]


@dataclass(frozen=True)
class UnitState:
    lcc: int
    unit: int
    boot: str | None  # the LCC boot (16 hex digits) of the latest sample; seq counts within it
    seq: int
    ts: str | None
    values: dict[str, float | None]
    setpoint_a: float | None  # commanded drive current, A; None unknown
    state: str  # one of UNIT_STATES, or UNKNOWN_STATE
    score: float | None
    anomalous: bool
    top_features: list[str]
    top_weights: list[float]
    model_version: str | None
    alarm_state: str
    alarm_event_id: str | None
    alarm_acknowledged: bool

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> UnitState:
        top = [int(i) for i in doc.get("top_features") or []]
        weights = [float(w) for w in doc.get("top_weights") or []]
        kept = [
            (name, w) for i, w in zip(top, weights, strict=False) if i >= 0 for name in feature_names([i])
        ]
        score = doc.get("score")
        return cls(
            lcc=int(doc["lcc"]),
            unit=int(doc["unit"]),
            boot=str(doc["boot"]) if isinstance(doc.get("boot"), str) else None,
            seq=int(doc.get("seq", -1)),
            ts=iso(doc.get("ts")),
            values={k: finite_or_none(v) for k, v in (doc.get("values") or {}).items()},
            setpoint_a=setpoint_of(doc),
            state=state_of(doc),
            score=finite_or_none(float(score)) if score is not None else None,
            anomalous=bool(doc.get("anomalous", False)),
            top_features=[name for name, _ in kept],
            top_weights=[w for _, w in kept],
            model_version=doc.get("model_version"),
            alarm_state=str(doc.get("alarm_state", "none")),
            alarm_event_id=doc.get("alarm_event_id"),
            alarm_acknowledged=bool(doc.get("alarm_acknowledged", False)),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "boot": self.boot,
            "seq": self.seq,
            "ts": self.ts,
            "values": self.values,
            "setpoint_a": self.setpoint_a,
            "state": self.state,
            "score": self.score,
            "anomalous": self.anomalous,
            "top_features": [
                {"channel": name, "weight": w}
                for name, w in zip(self.top_features, self.top_weights, strict=True)
            ],
            "model_version": self.model_version,
            "alarm": {
                "state": self.alarm_state,
                "event_id": self.alarm_event_id,
                "acknowledged": self.alarm_acknowledged,
            },
        }


@dataclass(frozen=True)
class AlarmView:
    event_id: str
    lcc: int
    unit: int
    state: str
    raised_at: str | None
    score: float | None
    top_features: list[str]
    acknowledged: bool
    acknowledged_by: str | None
    cleared_at: str | None

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> AlarmView:
        score = doc.get("score")
        return cls(
            event_id=str(doc["_id"]),
            lcc=int(doc["lcc"]),
            unit=int(doc["unit"]),
            state=str(doc.get("state")),
            raised_at=iso(doc.get("raised_at")),
            score=finite_or_none(float(score)) if score is not None else None,
            top_features=feature_names([int(i) for i in doc.get("top_features") or []]),
            acknowledged=bool(doc.get("acknowledged", False)),
            acknowledged_by=doc.get("acknowledged_by"),
            cleared_at=iso(doc.get("cleared_at")),
        )


@dataclass(frozen=True)
class Snapshot:
    units: dict[tuple[int, int], UnitState] = field(default_factory=dict)
    alarms: list[AlarmView] = field(default_factory=list)
    read_at: float = 0.0  # time.time() of the last successful read; 0 = never
    error: str | None = None

    def payload(self) -> dict[str, Any] | None:
        """The /casa_lcc_data JSON view: every LCC's units as last stored; None before any data."""
        if not self.units:
            return None
        lccs: dict[int, list[UnitState]] = {}
        for state in self.units.values():
            lccs.setdefault(state.lcc, []).append(state)
        return {
            "read_at": dt.datetime.fromtimestamp(self.read_at, tz=dt.UTC).isoformat().replace("+00:00", "Z"),
            "database_error": self.error,
            "channels": list(CHANNELS),
            "lccs": [
                {
                    "lcc": lcc,
                    # The LCC's current boot: that of its newest sample (seq restarts with each boot).
                    "boot": (current := max(units, key=lambda u: (u.ts or "", u.seq))).boot,
                    "seq": max(u.seq for u in units if u.boot == current.boot),
                    "anomalous_units": sorted(u.unit for u in units if u.anomalous),
                    "units": [u.as_json() for u in sorted(units, key=lambda u: u.unit)],
                }
                for lcc, units in sorted(lccs.items())
            ],
        }


class DashboardState:
    """Polls the database on a thread; ``snapshot`` is always the latest complete read."""

    def __init__(self, db: Any, names: CollectionNames = DEFAULT_NAMES, interval_s: float = 1.0) -> None:
        self.db = db
        self.names = names
        self.interval_s = interval_s
        self.snapshot = Snapshot()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="laserguard-dashboard-db", daemon=True)

    def start(self) -> DashboardState:
        self.read()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)

    def refresh_soon(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            if not self._stop.is_set():
                self.read()

    def read(self) -> Snapshot:
        import pymongo.errors

        try:
            units = {
                (state.lcc, state.unit): state
                for state in map(UnitState.from_document, self.db[self.names.latest_state].find({}))
            }
            events = self.db[self.names.anomaly_events]
            active = list(events.find({"state": ALARM_ACTIVE}))
            cleared = list(events.find({"state": ALARM_CLEARED}))
            # Few documents (alarms are rare); newest cleared ones only, sorted here not on the server.
            cleared.sort(key=lambda d: d.get("cleared_at") or dt.datetime.min, reverse=True)
            alarms = [AlarmView.from_document(d) for d in active + cleared[:RECENT_CLEARED_ALARMS]]
            self.snapshot = Snapshot(units, alarms, time.time(), None)
        except pymongo.errors.PyMongoError as exc:
            previous = self.snapshot
            self.snapshot = Snapshot(previous.units, previous.alarms, previous.read_at, f"database: {exc}")
        return self.snapshot

    def history(self, lcc: int, unit: int, samples: int) -> list[dict[str, Any]]:
        """The unit's last ``samples`` stored samples, oldest first (an _id range, no sort on the server)."""
        state = self.snapshot.units.get((lcc, unit))
        if state is None or state.seq < 0:
            return []
        # The current boot's samples (an LCC restart starts a new history at seq 0).
        boot_id = int(state.boot, 16) if state.boot else 0
        first = max(0, state.seq - samples + 1)
        return recent_samples(self.db, lcc, unit, boot_id, first, state.seq + 1, self.names)

    def history_window(self, lcc: int, unit: int, window_s: float) -> list[dict[str, Any]]:
        """The unit's last ``window_s`` seconds: raw frames up to an hour, minute summaries beyond."""
        return unit_history(self.db, lcc, unit, window_s, names=self.names)

    def acknowledge(self, event_id: str, by: str) -> bool:
        done = acknowledge_alarm(self.db, event_id, by, self.names)
        self.read()
        return done

    def clear(self, event_id: str, by: str) -> bool:
        done = clear_alarm(self.db, event_id, by, self.names)
        self.read()
        return done
