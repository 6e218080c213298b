"""Turn telemetry and feedback frames into write batches for MongoDB.

Every frame becomes one frame document (``frame_documents``) in ``frames``. Telemetry frames wait in memory (up to ``join_window_s``) for the detector's feedback with the
same (lcc, boot, seq) (seq restarts at 0 on every LCC start, so the boot id is part of every key), so most unit-samples are inserted once, complete with score and model version
(plain inserts are ~5x faster than upserts on the embedded server). Feedback that arrives after
its telemetry was written becomes an update of that frame document; feedback whose telemetry never
arrived only updates the latest state and the alarms. Each batch also advances the latest-state
documents (one per unit, guarded by sequence number) and applies alarm transitions.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from laserguard.storage.alarms import AlarmTracker, alarm_writes, ns_to_datetime
from laserguard.storage.batch_writer import WriteBatch, WriteOp, insert_op, update_op
from laserguard.storage.frame_documents import frame_document, score_fields
from laserguard.storage.schema import (
    ALARM_NONE,
    DEFAULT_NAMES,
    CollectionNames,
    Position,
    boot_key,
    frame_id,
    is_newer,
    latest_guard,
    latest_state_id,
)
from laserguard.wire.codec import STATE_ON, UNIT_STATES, state_codes

if TYPE_CHECKING:
    from laserguard.storage.metrics import StoreMetrics

RECENTLY_WRITTEN_FRAMES = 20_000


@dataclass
class FeedbackScores:
    boot_id: int
    seq: int
    timestamp_ns: int
    model_version: str
    scores: npt.NDArray[np.float32]
    anomalous: npt.NDArray[np.bool_]
    top_features: npt.NDArray[Any]
    top_weights: npt.NDArray[Any]

    def unit_fields(self, unit: int, *, history: bool = False) -> dict[str, Any]:
        """Score fields of one unit. In history documents the top features are kept only for
        anomalous units: every extra field costs insert throughput, and "why" matters when flagged."""
        fields: dict[str, Any] = {
            "score": float(self.scores[unit]),
            "anomalous": bool(self.anomalous[unit]),
            "model_version": self.model_version,
        }
        if not history or self.anomalous[unit]:
            has_top = self.top_features.ndim == 2 and unit < self.top_features.shape[0]
            fields["top_features"] = self.top_features[unit].tolist() if has_top else []
            fields["top_weights"] = self.top_weights[unit].tolist() if has_top else []
        return fields

    def frame_fields(self) -> dict[str, Any]:
        """Score fields of a frame document (``frame_documents.score_fields``)."""
        return score_fields(
            self.model_version, self.scores, self.anomalous, self.top_features, self.top_weights
        )


# (position, fields to set, defaults for a new document) of one latest-state update
_LatestUpdate = tuple[Position, dict[str, Any], dict[str, Any]]


@dataclass
class PendingFrame:
    lcc_id: int
    boot_id: int
    seq: int
    timestamp_ns: int
    schema_id: int
    values: npt.NDArray[np.float32]
    received: float
    setpoint_a: npt.NDArray[np.float32]  # (n_units,) A, NaN = unknown
    state: npt.NDArray[np.uint8]  # (n_units,) codes into UNIT_STATES
    feedback: FeedbackScores | None = None

    def context_fields(self) -> list[dict[str, Any]]:
        """Per unit: ``setpoint_a`` (float, None when unknown) and ``state`` (name), as documents carry them."""
        return [
            {"setpoint_a": None if setpoint != setpoint else setpoint, "state": UNIT_STATES[code]}
            for setpoint, code in zip(self.setpoint_a.tolist(), self.state.tolist(), strict=True)
        ]


@dataclass
class _BatchParts:
    telemetry: list[WriteOp] = field(default_factory=list)
    score_updates: list[WriteOp] = field(default_factory=list)
    latest: dict[tuple[int, int, str], _LatestUpdate] = field(default_factory=dict)
    alarms: list[WriteOp] = field(default_factory=list)


class TelemetryStore:
    """Collects frames and emits ``WriteBatch``es; the caller hands them to a ``BatchWriter``."""

    def __init__(
        self,
        channel_names: Sequence[str],
        *,
        names: CollectionNames = DEFAULT_NAMES,
        alarms: AlarmTracker | None = None,
        join_window_s: float = 0.5,
        max_batch_unit_samples: int = 8_000,
        latest_interval_s: float = 0.25,
        latest_upserts_per_s: float = 150.0,
        latest_units_per_batch: int = 64,
        metrics: StoreMetrics | None = None,
    ) -> None:
        self.channel_names = tuple(channel_names)
        self.latest_interval_s = latest_interval_s
        self.latest_upserts_per_s = latest_upserts_per_s
        self.latest_units_per_batch = latest_units_per_batch
        self._latest_emitted = -math.inf
        self.names = names
        self.alarms = alarms if alarms is not None else AlarmTracker()
        self.join_window_s = join_window_s
        self.max_batch_unit_samples = max_batch_unit_samples
        self.metrics = metrics
        # Keyed (lcc, boot, seq): a restarted LCC's frame 0 is a new frame, never a re-delivery.
        self._pending: OrderedDict[tuple[int, int, int], PendingFrame] = OrderedDict()
        self._orphans: OrderedDict[tuple[int, int, int], tuple[FeedbackScores, float]] = OrderedDict()
        self._written: OrderedDict[tuple[int, int, int], int] = OrderedDict()  # (lcc, boot, seq) -> n_units
        self._parts = _BatchParts()
        # Newest position per (lcc, unit, guard) this store has put in a batch: older updates are skipped.
        self._latest_written: dict[tuple[int, int, str], Position] = {}

    @property
    def pending_frames(self) -> int:
        return len(self._pending)

    def oldest_pending_age(self, now: float) -> float:
        """Seconds the oldest frame held in memory has waited (0 when none waits)."""
        if not self._pending:
            return 0.0
        return now - next(iter(self._pending.values())).received

    def add_telemetry(
        self,
        lcc_id: int,
        seq: int,
        timestamp_ns: int,
        values: npt.NDArray[np.float32],
        schema_id: int = 1,
        now: float | None = None,
        *,
        boot_id: int = 0,
        setpoint_a: npt.ArrayLike | None = None,
        state: npt.ArrayLike | None = None,
    ) -> None:
        """Queue one frame (``values``: float32, units x channels; ``setpoint_a`` and ``state``, names
        or codes, one per unit, None = unknown setpoints / every unit "on"); raises ValueError on a
        bad shape or an unknown state."""
        if values.ndim != 2 or values.shape[1] != len(self.channel_names):
            raise ValueError(
                f"telemetry frame lcc {lcc_id} seq {seq}: values shape {values.shape} does not match "
                f"(n_units, {len(self.channel_names)} channels)"
            )
        n_units = values.shape[0]
        setpoints = (
            np.full(n_units, np.nan, dtype=np.float32)
            if setpoint_a is None
            else np.asarray(setpoint_a, dtype=np.float32)
        )
        if setpoints.shape != (n_units,):
            raise ValueError(
                f"telemetry frame lcc {lcc_id} seq {seq}: setpoint_a shape {setpoints.shape} does not match "
                f"its {n_units} units"
            )
        codes = np.full(n_units, STATE_ON, dtype=np.uint8) if state is None else state_codes(state, n_units)
        key = (lcc_id, boot_id, seq)
        if key in self._pending or key in self._written:
            return  # a re-delivered frame; the deterministic _id would make it a no-op anyway
        frame = PendingFrame(
            lcc_id,
            boot_id,
            seq,
            timestamp_ns,
            schema_id,
            values,
            time.monotonic() if now is None else now,
            setpoints,
            codes,
        )
        orphan = self._orphans.pop(key, None)
        if orphan is not None and len(orphan[0].scores) == values.shape[0]:
            frame.feedback = orphan[0]
        self._pending[key] = frame

    def add_feedback(
        self,
        lcc_id: int,
        seq: int,
        timestamp_ns: int,
        model_version: str,
        scores: npt.NDArray[np.float32],
        anomalous_units: npt.NDArray[Any],
        top_features: npt.NDArray[Any],
        top_weights: npt.NDArray[Any],
        now: float | None = None,
        *,
        boot_id: int = 0,
    ) -> None:
        """Attach the detector's scores to their telemetry frame, update latest state and alarms."""
        n_units = len(scores)
        anomalous_units = np.asarray(anomalous_units, dtype=np.int64)
        if anomalous_units.size and (anomalous_units.min() < 0 or anomalous_units.max() >= n_units):
            raise ValueError(
                f"feedback lcc {lcc_id} seq {seq}: anomalous unit index out of range 0..{n_units - 1}: "
                f"{anomalous_units.tolist()}"
            )
        anomalous = np.zeros(n_units, dtype=bool)
        anomalous[anomalous_units] = True
        feedback = FeedbackScores(
            boot_id, seq, timestamp_ns, model_version, scores, anomalous, top_features, top_weights
        )
        key = (lcc_id, boot_id, seq)
        now = time.monotonic() if now is None else now
        expected_units = (
            self._pending[key].values.shape[0] if key in self._pending else self._written.get(key)
        )
        if expected_units is not None and expected_units != n_units:
            raise ValueError(
                f"feedback lcc {lcc_id} seq {seq} has {n_units} scores but its telemetry frame has "
                f"{expected_units} units"
            )
        if key in self._pending:
            self._pending[key].feedback = feedback
        elif key in self._written:
            self._add_score_updates(lcc_id, feedback, self._written[key])
            if self.metrics is not None:
                self.metrics.late_feedback.inc()
        else:
            self._orphans[key] = (feedback, now)
        self._add_latest_scores(lcc_id, feedback)
        for transition in self.alarms.observe(
            lcc_id,
            seq,
            timestamp_ns,
            anomalous,
            scores,
            model_version,
            top_features,
            top_weights,
            boot_id=boot_id,
        ):
            self._parts.alarms.extend(alarm_writes(transition, self.names))
            if self.metrics is not None:
                (
                    self.metrics.alarms_raised if transition.kind == "raise" else self.metrics.alarms_cleared
                ).inc()

    def _add_score_updates(self, lcc_id: int, feedback: FeedbackScores, n_units: int) -> None:
        # One update of the frame document (its unit count was checked against the scores').
        self._parts.score_updates.append(
            update_op(
                self.names.frames,
                {"_id": frame_id(lcc_id, feedback.boot_id, feedback.seq)},
                {"$set": feedback.frame_fields()},
                upsert=False,
            )
        )

    def _add_latest_scores(self, lcc_id: int, feedback: FeedbackScores) -> None:
        position = (feedback.boot_id, feedback.seq, feedback.timestamp_ns)
        for unit in range(len(feedback.scores)):
            fields = {
                "score_boot": boot_key(feedback.boot_id),
                "score_seq": feedback.seq,
                "score_ts": ns_to_datetime(feedback.timestamp_ns),
                "score_ts_ns": feedback.timestamp_ns,
            }
            fields.update(feedback.unit_fields(unit))
            self._set_latest(lcc_id, unit, "score_seq", position, fields, {"seq": -1})

    def _set_latest(
        self,
        lcc_id: int,
        unit: int,
        guard: str,
        position: Position,
        fields: dict[str, Any],
        on_insert: dict[str, Any],
    ) -> None:
        """Keep only the newest update per (unit, kind) in a batch; the guard makes it move forward only."""
        key = (lcc_id, unit, guard)
        written = self._latest_written.get(key)
        if written is not None and not is_newer(position, written):
            return
        previous = self._parts.latest.get(key)
        if previous is not None and is_newer(previous[0], position):
            return
        self._parts.latest[key] = (position, fields, on_insert)

    def _latest_ops(self, latest: dict[tuple[int, int, str], _LatestUpdate]) -> list[WriteOp]:
        """One guarded upsert per unit when its telemetry and score have the same seq (the usual
        case: upserts cost ~0.5 ms each on the embedded server), else one per kind."""
        ops = []
        for (lcc_id, unit, guard), (position, fields, on_insert) in latest.items():
            same_sample = (position[0], position[1])
            if guard == "score_seq":
                telemetry = latest.get((lcc_id, unit, "seq"))
                if telemetry is not None and (telemetry[0][0], telemetry[0][1]) == same_sample:
                    continue  # merged into the telemetry update below
            elif (score := latest.get((lcc_id, unit, "score_seq"))) is not None and (
                score[0][0],
                score[0][1],
            ) == same_sample:
                fields = {**fields, **score[1]}
                on_insert = {}
                self._latest_written[(lcc_id, unit, "score_seq")] = score[0]
            self._latest_written[(lcc_id, unit, guard)] = position
            defaults = {"lcc": lcc_id, "unit": unit, "alarm_seq": -1, "alarm_state": ALARM_NONE, **on_insert}
            ops.append(
                update_op(
                    self.names.latest_state,
                    {"_id": latest_state_id(lcc_id, unit), **latest_guard(guard, position)},
                    {"$set": fields, "$setOnInsert": {k: v for k, v in defaults.items() if k not in fields}},
                    upsert=True,
                )
            )
        return ops

    def _frame_document(self, frame: PendingFrame) -> WriteOp:
        doc = frame_document(
            frame.lcc_id,
            frame.boot_id,
            frame.seq,
            frame.timestamp_ns,
            frame.schema_id,
            self.channel_names,
            frame.values,
            frame.setpoint_a,
            frame.state,
        )
        if frame.feedback is not None:
            doc.update(frame.feedback.frame_fields())
        ts = doc["ts"]
        rows = frame.values.tolist()  # float32 -> Python floats (BSON doubles); NaN stays NaN
        context = frame.context_fields()
        position = (frame.boot_id, frame.seq, frame.timestamp_ns)
        for unit, row in enumerate(rows):
            fields = {
                "boot": boot_key(frame.boot_id),
                "seq": frame.seq,
                "ts": ts,
                "ts_ns": frame.timestamp_ns,
                "values": dict(zip(self.channel_names, row, strict=True)),
                **context[unit],
            }
            self._set_latest(frame.lcc_id, unit, "seq", position, fields, {"score_seq": -1})
        return insert_op(self.names.frames, doc)

    def _expire_orphans(self, now: float) -> None:
        horizon = now - 4 * self.join_window_s
        while self._orphans:
            key, (_, arrived) = next(iter(self._orphans.items()))
            if arrived > horizon:
                break
            del self._orphans[key]
            if self.metrics is not None:
                self.metrics.feedback_unmatched.inc()

    def take_batch(
        self, now: float | None = None, *, flush_all: bool = False, latest_at_most_every_s: float = 0.0
    ) -> WriteBatch | None:
        """The writes that are due: frames with feedback, frames older than the join window, and
        every latest-state, score and alarm update collected since the last batch.
        ``latest_at_most_every_s``: a longer refresh of the latest state (batches spilled to the
        spool under overload: each per-unit upsert costs 2-7 ms there, an insert of a frame far less)."""
        now = time.monotonic() if now is None else now
        self._expire_orphans(now)
        unit_samples = 0
        while self._pending and (flush_all or unit_samples < self.max_batch_unit_samples):
            key, frame = next(iter(self._pending.items()))
            if not flush_all and frame.feedback is None and now - frame.received < self.join_window_s:
                break  # frames arrive in order, so the rest are younger; wait for their feedback
            del self._pending[key]
            self._parts.telemetry.append(self._frame_document(frame))
            unit_samples += frame.values.shape[0]
            self._written[key] = frame.values.shape[0]
            if len(self._written) > RECENTLY_WRITTEN_FRAMES:
                self._written.popitem(last=False)
        if self.metrics is not None:
            self.metrics.pending_frames.set(len(self._pending))
        parts, self._parts = self._parts, _BatchParts()
        # The latest state costs one upsert per unit (~0.5-3 ms each here, whatever the batch size),
        # so it is refreshed at most every latest_interval_s; newer values replace held ones.
        latest_ops: list[WriteOp] = []
        # A fleet refreshes in chunks of latest_units_per_batch units, at most latest_upserts_per_s:
        # each upsert costs 2-7 ms on the embedded server (measured; 64 in one bulk write:
        # 0.12-0.8 s), so all 3,200 units of 100 LCCs at once would hold the writer for seconds
        # and the frames behind it would spill. Units not in this chunk keep their newest update.
        units = list(dict.fromkeys((lcc, unit) for lcc, unit, _ in parts.latest))
        chunk = set(units if flush_all else units[: self.latest_units_per_batch])
        interval = max(self.latest_interval_s, len(chunk) / self.latest_upserts_per_s, latest_at_most_every_s)
        if flush_all or now - self._latest_emitted >= interval:
            latest_ops = self._latest_ops({k: v for k, v in parts.latest.items() if (k[0], k[1]) in chunk})
            self._parts.latest = {k: v for k, v in parts.latest.items() if (k[0], k[1]) not in chunk}
            self._latest_emitted = now
        else:
            self._parts.latest = parts.latest
        # Latest-state writes together (one round trip); alarm events keep their relative order.
        alarm_latest = [op for op in parts.alarms if op["c"] == self.names.latest_state]
        alarm_events = [op for op in parts.alarms if op["c"] != self.names.latest_state]
        ops = parts.telemetry + parts.score_updates + latest_ops + alarm_latest + alarm_events
        if not ops:
            return None
        return WriteBatch(ops=ops, unit_samples=unit_samples)
