"""Send a recording into the loop on the recorded clock (`laserguard replay`).

To `detect` and `store` the replay is an LCC like `lcc-sim`: it binds the telemetry PUB socket
(refusing rather than silently dropping at the high-water mark, so every drop is counted), binds
the feedback SUB socket the detector connects to, numbers each LCC's frames from 0 and stamps
them with the wall clock at send time, through the same C++ codec. ``--to-mongo`` instead inserts
each time step's rows into a collection when they fall due, as the original
real_time_simulation.py fed its consumers.
"""

from __future__ import annotations

import datetime as dt
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from laserguard.sim.recording import RecordedFrame, Recording
from laserguard.wire import codec


class Pacer:
    """Due times on the recorded clock divided by ``speed``, from the first frame's time."""

    def __init__(self, first_time_s: float, speed: float, stop: threading.Event) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.first_time_s = first_time_s
        self.speed = speed
        self.stop = stop
        self.started = time.monotonic()

    def due(self, time_s: float) -> float:
        return self.started + (time_s - self.first_time_s) / self.speed

    def wait_until(self, due: float, on_idle: Callable[[float], None] | None = None) -> bool:
        """Sleep (or run ``on_idle(timeout_s)``) until ``due``; False if stopped meanwhile."""
        while not self.stop.is_set():
            remaining = due - time.monotonic()
            if remaining <= 0:
                return True
            if on_idle is not None:
                on_idle(remaining)
            else:
                self.stop.wait(remaining)
        return False


@dataclass
class ReplayStats:
    frames_sent: int = 0
    frames_dropped: int = 0
    missing_unit_samples: int = 0
    feedback_received: int = 0
    feedback_rejected: int = 0
    anomalous_unit_samples: int = 0
    rows_written: int = 0
    time_steps_written: int = 0
    elapsed_s: float = 0.0
    round_trip_us: list[float] = field(default_factory=list)
    boot_id: int = 0
    feedback_other_boot: int = 0

    def collection_summary(self) -> dict[str, Any]:
        return {
            "time_steps_written": self.time_steps_written,
            "rows_written": self.rows_written,
            "elapsed_s": round(self.elapsed_s, 3),
        }

    def summary(self) -> dict[str, Any]:
        latencies = sorted(self.round_trip_us)
        return {
            "boot_id": self.boot_id,
            "frames_sent": self.frames_sent,
            "frames_dropped": self.frames_dropped,
            "missing_unit_samples": self.missing_unit_samples,
            "feedback_received": self.feedback_received,
            "feedback_rejected": self.feedback_rejected,
            "feedback_other_boot": self.feedback_other_boot,
            "frames_without_feedback": max(0, self.frames_sent - self.feedback_received),
            "anomalous_unit_samples": self.anomalous_unit_samples,
            "elapsed_s": round(self.elapsed_s, 3),
            "round_trip_us": {
                "count": len(latencies),
                "p50": statistics.median(latencies) if latencies else None,
                "p99": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else None,
            },
        }


class TelemetryReplay:
    """The LCC side of the loop for a recording: PUB telemetry, SUB feedback (both bound)."""

    def __init__(
        self,
        telemetry_endpoint: str,
        feedback_endpoint: str | None,
        hwm: int,
        stop: threading.Event,
        security: Any = None,  # laserguard.wire.link_security.LinkSecurity: CURVE server on both sockets
    ) -> None:
        import zmq

        from laserguard.wire.link_security import FEEDBACK_DOMAIN, TELEMETRY_DOMAIN

        self.stop = stop
        # A replay is one start of an LCC: its own boot id, frames numbered from 0 under it.
        self.boot_id = codec.new_boot_id()
        self.stats = ReplayStats(boot_id=self.boot_id)
        self._ctx = zmq.Context()
        # XPUB is a PUB to subscribers; it also lets us see their subscriptions (wait_for_subscribers).
        self.pub = self._ctx.socket(zmq.XPUB)
        self.pub.setsockopt(zmq.LINGER, 0)
        self.pub.setsockopt(zmq.SNDHWM, hwm)
        self.pub.setsockopt(zmq.XPUB_NODROP, 1)
        self.pub.setsockopt(zmq.XPUB_VERBOSE, 1)
        self._security = security
        if security is not None:
            security.secure_server(self.pub, TELEMETRY_DOMAIN)  # its ZAP handler runs before the bind
        self.pub.bind(telemetry_endpoint)
        self.sub = None
        self._monitor: Any = None
        if feedback_endpoint is not None:
            self.sub = self._ctx.socket(zmq.SUB)
            self.sub.setsockopt(zmq.LINGER, 0)
            self.sub.setsockopt(zmq.RCVHWM, hwm)
            self.sub.setsockopt(zmq.SUBSCRIBE, b"lcc.")
            # Watched from before the bind, so no detector's connection can slip past unseen.
            self._monitor = self.sub.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
            if security is not None:
                security.secure_server(self.sub, FEEDBACK_DOMAIN)  # command keys only
            self.sub.bind(feedback_endpoint)
        self._poller = zmq.Poller()
        self._poller.register(self.pub, zmq.POLLIN)
        if self.sub is not None:
            self._poller.register(self.sub, zmq.POLLIN)
        if self._monitor is not None:
            self._poller.register(self._monitor, zmq.POLLIN)
        self.feedback_peers = 0
        self._next_seq: dict[int, int] = {}
        self._sent_at: dict[tuple[int, int], float] = {}
        self.subscriptions = 0

    def close(self) -> None:
        self.pub.close(0)
        if self.sub is not None:
            self.sub.disable_monitor()
            self.sub.close(0)
        if self._monitor is not None:
            self._monitor.close(0)
        if self._security is not None:
            self._security.close()  # the ZAP socket lives in this context
        self._ctx.term()

    def service(self, timeout_s: float) -> None:
        """Handle subscriptions and feedback for up to ``timeout_s``."""
        import zmq

        events = dict(self._poller.poll(max(0, int(timeout_s * 1000))))
        if self.pub in events:
            while True:
                try:
                    message = self.pub.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                if message[:1] == b"\x01":
                    self.subscriptions += 1
        if self._monitor is not None and self._monitor in events:
            from zmq.utils.monitor import recv_monitor_message

            while self._monitor.poll(0):
                if recv_monitor_message(self._monitor)["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                    self.feedback_peers += 1
        if self.sub is not None and self.sub in events:
            while True:
                try:
                    parts = self.sub.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self._on_feedback(parts)

    def _on_feedback(self, parts: list[bytes]) -> None:
        now = time.perf_counter()
        try:
            if len(parts) != 2:
                raise ValueError(f"feedback with {len(parts)} parts")
            feedback = codec.decode_feedback(parts[1])
        except ValueError:
            self.stats.feedback_rejected += 1
            return
        if feedback.boot_id != self.boot_id:
            self.stats.feedback_other_boot += 1  # an answer to an earlier replay's (or LCC's) frame
            return
        self.stats.feedback_received += 1
        self.stats.anomalous_unit_samples += int(feedback.anomalous_units.size)
        sent = self._sent_at.pop((feedback.lcc_id, feedback.seq), None)
        if sent is not None:
            self.stats.round_trip_us.append((now - sent) * 1e6)

    def wait_for_subscribers(self, count: int, timeout_s: float) -> bool:
        """Wait for ``count`` telemetry subscriptions and, when listening for feedback, for a
        detector to have connected to the feedback socket (else its first answers are lost)."""
        deadline = time.monotonic() + timeout_s
        while not self.stop.is_set():
            feedback_ready = self._monitor is None or count == 0 or self.feedback_peers >= 1
            if self.subscriptions >= count and feedback_ready:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.service(min(remaining, 0.05))
        return False

    def send(self, frame: RecordedFrame) -> None:
        import zmq

        seq = self._next_seq.get(frame.lcc_id, 0)
        self._next_seq[frame.lcc_id] = seq + 1  # a dropped frame still uses its number: a visible gap
        payload = codec.encode_telemetry(
            frame.lcc_id,
            seq,
            time.time_ns(),
            frame.values,
            boot_id=self.boot_id,
            setpoint_a=frame.setpoint_a,
            state=frame.state,
        )
        self.stats.missing_unit_samples += int((~frame.present).sum())
        try:
            self.pub.send_multipart([codec.telemetry_topic(frame.lcc_id), payload], zmq.NOBLOCK)
        except zmq.Again:
            self.stats.frames_dropped += 1
            return
        self.stats.frames_sent += 1
        if len(self._sent_at) > 100_000:  # frames never answered: forget the oldest
            self._sent_at.pop(next(iter(self._sent_at)))
        self._sent_at[(frame.lcc_id, seq)] = time.perf_counter()

    def run(self, recording: Recording, speed: float, drain_s: float) -> ReplayStats:
        frames = recording.frames()
        first = next(frames, None)
        if first is None:
            return self.stats
        pacer = Pacer(first.time_s, speed, self.stop)
        frame: RecordedFrame | None = first
        while frame is not None:
            if not pacer.wait_until(pacer.due(frame.time_s), self.service):
                break
            self.send(frame)
            self.service(0)
            frame = next(frames, None)
        drain_until = time.monotonic() + drain_s
        while self.sub is not None and not self.stop.is_set() and time.monotonic() < drain_until:
            if self.stats.feedback_received >= self.stats.frames_sent:
                break  # every frame answered
            self.service(drain_until - time.monotonic())
        self.stats.elapsed_s = time.monotonic() - pacer.started
        return self.stats


def mongo_rows(
    frame: RecordedFrame, step: int, channels: tuple[str, ...], written_at: dt.datetime
) -> list[dict[str, Any]]:
    """The documents for one frame's units that had a row (deterministic ``_id``: a retry is a no-op).
    The unit's context as the store writes it: ``setpoint_a`` (None when unknown), ``state`` (name)."""
    rows = []
    for unit in np.flatnonzero(frame.present).tolist():
        setpoint = float(frame.setpoint_a[unit])
        doc: dict[str, Any] = {
            "_id": f"{frame.lcc_id}:{unit}:{step:012d}",
            "time_s": frame.time_s,
            "lcc": frame.lcc_id,
            "unit": unit,
            "written_at": written_at,
            "setpoint_a": None if setpoint != setpoint else setpoint,
            "state": codec.UNIT_STATES[int(frame.state[unit])],
        }
        doc.update(zip(channels, frame.values[unit].tolist(), strict=True))
        rows.append(doc)
    return rows


def replay_to_collection(
    recording: Recording, collection: Any, speed: float, stop: threading.Event
) -> ReplayStats:
    """Insert each time step's rows when due (journaled); the collection is dropped first."""
    from pymongo.write_concern import WriteConcern

    stats = ReplayStats()
    collection.drop()
    target = collection.with_options(write_concern=WriteConcern(w=1, j=True))
    frames = recording.frames()
    first = next(frames, None)
    if first is None:
        return stats
    pacer = Pacer(first.time_s, speed, stop)
    step, step_time = 0, first.time_s
    frame: RecordedFrame | None = first
    while frame is not None:
        step_frames: list[RecordedFrame] = []
        # All LCCs of one time step go in together, as one insert.
        while frame is not None and frame.time_s == step_time:
            step_frames.append(frame)
            frame = next(frames, None)
        if not pacer.wait_until(pacer.due(step_time)):
            break
        now = dt.datetime.now(tz=dt.UTC)
        batch = [row for f in step_frames for row in mongo_rows(f, step, recording.channels, now)]
        if batch:
            target.insert_many(batch, ordered=False)
            stats.rows_written += len(batch)
        stats.time_steps_written += 1
        if frame is not None:
            step, step_time = step + 1, frame.time_s
    stats.elapsed_s = time.monotonic() - pacer.started
    return stats
