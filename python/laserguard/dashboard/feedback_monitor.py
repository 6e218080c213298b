"""The detector's observer feedback stream, watched for the dashboard's model and latency stats.

`laserguard detect` binds a PUB socket (default tcp://127.0.0.1:5557) carrying every feedback
message; this thread subscribes to it and keeps the model version, the feedback rate, and the
sensor-to-dashboard latency (feedback arrival minus the telemetry frame's sender timestamp, which
the feedback echoes). Optionally it also reads `detect`'s Prometheus endpoint for the mean
inference time over the last seconds.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from laserguard.codec import decode_feedback
from laserguard.metrics_scrape import scrape_totals

RATE_WINDOW_S = 5.0


@dataclass(frozen=True)
class FeedbackStats:
    model_version: str | None
    messages: int
    rejected: int
    rate_hz: float  # feedback messages per second over the last RATE_WINDOW_S
    latency_ms_p50: float | None
    latency_ms_p99: float | None
    inference_us_mean: float | None
    last_anomalous: dict[int, list[int]]  # lcc -> anomalous units of its newest feedback


class FeedbackMonitor:
    def __init__(self, endpoint: str | None, detect_metrics_url: str | None = None) -> None:
        self.endpoint = endpoint
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
        self._stop = threading.Event()
        self._threads = []
        if endpoint is not None:
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
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"lcc.")
        assert self.endpoint is not None
        sub.connect(self.endpoint)
        try:
            while not self._stop.is_set():
                if sub.poll(200):
                    self.observe(sub.recv_multipart())
        finally:
            sub.close(0)
            ctx.term()

    def observe(self, parts: list[bytes]) -> None:
        arrived_ns = time.time_ns()
        try:
            if len(parts) != 2:
                raise ValueError(f"feedback message with {len(parts)} parts, expected 2")
            feedback = decode_feedback(parts[1])
        except ValueError:  # FrameError is a ValueError
            with self._lock:
                self._rejected += 1
            return
        with self._lock:
            self._messages += 1
            self._arrivals.append(time.monotonic())
            self._latencies_ms.append((arrived_ns - feedback.timestamp_ns) / 1e6)
            self._model_version = feedback.model_version
            self._last_anomalous[feedback.lcc_id] = [int(u) for u in feedback.anomalous_units]

    def _scrape(self) -> None:
        assert self.detect_metrics_url is not None
        while not self._stop.wait(1.0):
            totals = scrape_totals(self.detect_metrics_url)
            if totals is None:
                continue
            now = (
                totals.get("laserguard_detect_inference_seconds_sum", 0.0),
                totals.get("laserguard_detect_inference_seconds_count", 0.0),
            )
            with self._lock:
                if self._last_totals is not None and now[1] > self._last_totals[1]:
                    delta_sum, delta_count = now[0] - self._last_totals[0], now[1] - self._last_totals[1]
                    self._inference_us = 1e6 * delta_sum / delta_count
                self._last_totals = now

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
            )


def describe(stats: FeedbackStats) -> dict[str, Any]:
    return {
        "model_version": stats.model_version,
        "feedback_messages": stats.messages,
        "feedback_rejected": stats.rejected,
        "feedback_rate_hz": stats.rate_hz,
        "latency_ms_p50": stats.latency_ms_p50,
        "latency_ms_p99": stats.latency_ms_p99,
        "inference_us_mean": stats.inference_us_mean,
        # Straight from the stream (the grid shows what the store has written, a moment later).
        "anomalous_units_in_last_feedback": {str(k): v for k, v in sorted(stats.last_anomalous.items())},
    }
