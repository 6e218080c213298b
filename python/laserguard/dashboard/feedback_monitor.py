"""The detector's observer feedback stream, watched for the dashboard's model and latency stats.

`laserguard detect` binds a PUB socket (default tcp://127.0.0.1:5557) carrying every feedback
message; this thread subscribes to it and keeps the model version and the feedback rate. With
the LCC's telemetry endpoint as well it measures the detection latency as operators see it:
from the telemetry frame's sender timestamp to its feedback reaching the dashboard (matched by
LCC and sequence number; the feedback's own timestamp is the detector's send time). Optionally
it also reads `detect`'s Prometheus endpoint for the mean inference time of the last second.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from laserguard.dashboard.metrics_scrape import scrape_samples, totals_of
from laserguard.wire.codec import decode_feedback, decode_telemetry

RATE_WINDOW_S = 5.0
MATCH_WINDOW = 4096  # (lcc, seq) pairs remembered while waiting for the other half


@dataclass(frozen=True)
class FeedbackStats:
    model_version: str | None
    messages: int
    rejected: int  # telemetry or feedback messages that did not decode
    rate_hz: float  # feedback messages per second over the last RATE_WINDOW_S
    latency_ms_p50: float | None
    latency_ms_p99: float | None
    inference_us_mean: float | None
    last_anomalous: dict[int, list[int]]  # lcc -> anomalous units of its newest feedback
    baselines: dict[tuple[int, int], UnitBaseline]  # (lcc, unit) -> its baseline, from detect's metrics


@dataclass(frozen=True)
class UnitBaseline:
    learning: bool
    age_s: float | None  # since the baseline was learned
    deviation: float | None  # largest deviation from it, in thresholds (> 1 flags)


class FeedbackMonitor:
    def __init__(
        self,
        endpoint: str | None,
        detect_metrics_url: str | None = None,
        telemetry_endpoint: str | None = None,
        security: Any = None,  # laserguard.wire.link_security.LinkSecurity: CURVE on both subscriptions
    ) -> None:
        self.endpoint = endpoint
        self.telemetry_endpoint = telemetry_endpoint
        self.security = security
        self._telemetry_ns: OrderedDict[tuple[int, int, int], int] = OrderedDict()
        self._feedback_ns: OrderedDict[tuple[int, int, int], int] = OrderedDict()
        self.detect_metrics_url = detect_metrics_url
        self._lock = threading.Lock()
        self._latencies_ms: deque[float] = deque(maxlen=2000)
        self._arrivals: deque[float] = deque(maxlen=10_000)
        self._model_version: str | None = None
        self._messages = 0
        self._rejected = 0
        self._last_anomalous: dict[int, list[int]] = {}
        self._inference_us: float | None = None
        self._last_totals: tuple[float, float] | None = None
        self._baselines: dict[tuple[int, int], UnitBaseline] = {}
        self._stop = threading.Event()
        self._threads = []
        if endpoint is not None or telemetry_endpoint is not None:
            self._threads.append(
                threading.Thread(target=self._listen, name="laserguard-dashboard-zmq", daemon=True)
            )
        if detect_metrics_url is not None:
            self._threads.append(
                threading.Thread(target=self._scrape, name="laserguard-dashboard-scrape", daemon=True)
            )

    def start(self) -> FeedbackMonitor:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _listen(self) -> None:
        import zmq

        ctx = zmq.Context()
        handlers: dict[Any, Any] = {}
        for address, handler, what, server in (
            (self.endpoint, self.observe, "observer stream", "observer"),
            (self.telemetry_endpoint, self.observe_telemetry, "LCC telemetry", "lcc"),
        ):
            if address is None:
                continue
            sub = ctx.socket(zmq.SUB)
            sub.setsockopt(zmq.LINGER, 0)
            sub.setsockopt(zmq.SUBSCRIBE, b"lcc.")
            if self.security is not None:
                self.security.secure_client(sub, address, what, server)
            sub.connect(address)
            handlers[sub] = handler
        poller = zmq.Poller()
        for sub in handlers:
            poller.register(sub, zmq.POLLIN)
        reported: str | None = None
        try:
            while not self._stop.is_set():
                for sub, _ in poller.poll(200):
                    handlers[sub](sub.recv_multipart())
                problem = self.security.problem() if self.security is not None else None
                if problem is not None and problem != reported:
                    # The page still serves the database views; the live stats stay empty until fixed.
                    print(f"laserguard dashboard: error: {problem}", file=sys.stderr, flush=True)
                    reported = problem
        finally:
            if self.security is not None:
                self.security.close()
            ctx.destroy(linger=0)

    def _record_latency(self, key: tuple[int, int, int]) -> None:
        """Called with the lock held once both halves of (lcc, seq) are known."""
        sent = self._telemetry_ns.pop(key, None)
        answered = self._feedback_ns.pop(key, None)
        if sent is not None and answered is not None:
            self._latencies_ms.append((answered - sent) / 1e6)
        else:  # keep the half we have, bounded
            for table, value in ((self._telemetry_ns, sent), (self._feedback_ns, answered)):
                if value is not None:
                    table[key] = value
                    if len(table) > MATCH_WINDOW:
                        table.popitem(last=False)

    def _payload(self, parts: list[bytes]) -> bytes | None:
        """The payload of a [topic, payload] message, or None (counted) for any other shape."""
        if len(parts) == 2:
            return parts[1]
        self._count_rejected()
        return None

    def _count_rejected(self) -> None:
        with self._lock:
            self._rejected += 1

    def observe_telemetry(self, parts: list[bytes]) -> None:
        payload = self._payload(parts)
        if payload is None:
            return
        try:
            frame = decode_telemetry(payload)
        except ValueError:  # FrameError is a ValueError
            self._count_rejected()
            return
        with self._lock:
            key = (frame.lcc_id, frame.boot_id, frame.seq)
            self._telemetry_ns[key] = frame.timestamp_ns
            self._record_latency(key)

    def observe(self, parts: list[bytes]) -> None:
        arrived_ns = time.time_ns()
        payload = self._payload(parts)
        if payload is None:
            return
        try:
            feedback = decode_feedback(payload)
        except ValueError:  # FrameError is a ValueError
            self._count_rejected()
            return
        with self._lock:
            self._messages += 1
            self._arrivals.append(time.monotonic())
            self._model_version = feedback.model_version
            self._last_anomalous[feedback.lcc_id] = [int(u) for u in feedback.anomalous_units]
            key = (feedback.lcc_id, feedback.boot_id, feedback.seq)
            self._feedback_ns[key] = arrived_ns
            self._record_latency(key)

    def _scrape(self) -> None:
        assert self.detect_metrics_url is not None
        while not self._stop.wait(1.0):
            samples = scrape_samples(self.detect_metrics_url)
            if samples is None:
                continue
            totals = totals_of(samples)
            baselines = unit_baselines(samples)
            now = (
                totals.get("laserguard_detect_inference_seconds_sum", 0.0),
                totals.get("laserguard_detect_inference_seconds_count", 0.0),
            )
            with self._lock:
                if self._last_totals is not None and now[1] > self._last_totals[1]:
                    delta_sum, delta_count = now[0] - self._last_totals[0], now[1] - self._last_totals[1]
                    self._inference_us = 1e6 * delta_sum / delta_count
                self._last_totals = now
                self._baselines = baselines

    def stats(self) -> FeedbackStats:
        with self._lock:
            now = time.monotonic()
            recent = sum(1 for t in self._arrivals if now - t <= RATE_WINDOW_S)
            latencies = np.asarray(self._latencies_ms, dtype=np.float64)
            return FeedbackStats(
                model_version=self._model_version,
                messages=self._messages,
                rejected=self._rejected,
                rate_hz=recent / RATE_WINDOW_S,
                latency_ms_p50=float(np.percentile(latencies, 50)) if latencies.size else None,
                latency_ms_p99=float(np.percentile(latencies, 99)) if latencies.size else None,
                inference_us_mean=self._inference_us,
                last_anomalous={k: list(v) for k, v in self._last_anomalous.items()},
                baselines=dict(self._baselines),
            )


def unit_baselines(samples: list[tuple[str, dict[str, str], float]]) -> dict[tuple[int, int], UnitBaseline]:
    """Each unit's baseline state from detect's gauges (age NaN = still learning)."""
    ages: dict[tuple[int, int], float] = {}
    deviations: dict[tuple[int, int], float] = {}
    for name, labels, value in samples:
        if name not in (
            "laserguard_detect_unit_baseline_age_seconds",
            "laserguard_detect_unit_baseline_deviation",
        ):
            continue
        try:
            key = (int(labels["lcc"]), int(labels["unit"]))
        except (KeyError, ValueError):
            continue
        (ages if name.endswith("age_seconds") else deviations)[key] = value
    return {
        key: UnitBaseline(
            learning=math.isnan(age),
            age_s=None if math.isnan(age) else age,
            deviation=deviations.get(key),
        )
        for key, age in ages.items()
    }


def describe(stats: FeedbackStats) -> dict[str, Any]:
    return {
        "model_version": stats.model_version,
        "feedback_messages": stats.messages,
        "messages_rejected": stats.rejected,
        "feedback_rate_hz": stats.rate_hz,
        "latency_ms_p50": stats.latency_ms_p50,
        "latency_ms_p99": stats.latency_ms_p99,
        "inference_us_mean": stats.inference_us_mean,
        # Straight from the stream (the grid shows what the store has written, a moment later).
        "anomalous_units_in_last_feedback": {str(k): v for k, v in sorted(stats.last_anomalous.items())},
    }
