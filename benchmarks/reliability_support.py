"""Shared by the live-loop benchmarks (chaos.py, soak.py, loop_bench.py): the loop as real processes.

Every process binds or connects on 127.0.0.1 with free ports; logs go to the work directory.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from laserguard.dashboard.metrics_scrape import scrape_totals
from laserguard.demo.runner import lcc_sim_executable

UNITS = 32


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def endpoint() -> str:
    return f"tcp://127.0.0.1:{free_port()}"


def metrics(port: int, timeout_s: float = 2.0) -> dict[str, float]:
    return scrape_totals(f"http://127.0.0.1:{port}/metrics", timeout_s=timeout_s) or {}


def wait_until(predicate: Any, timeout_s: float, what: str, interval_s: float = 0.05) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if predicate():
            return time.monotonic() - start
        time.sleep(interval_s)
    raise RuntimeError(f"{what} did not happen within {timeout_s} s")


@dataclass
class Endpoints:
    telemetry: str = field(default_factory=endpoint)
    feedback: str = field(default_factory=endpoint)  # the LCC's SUB (detect connects)
    observer: str = field(default_factory=endpoint)  # detect's observer PUB (stores connect)


class Service:
    """One laserguard command or lcc-sim as a child process, restartable, log appended."""

    def __init__(self, name: str, command: list[str], workdir: Path, metrics_port: int | None = None) -> None:
        self.name = name
        self.command = command
        self.log = workdir / f"{name}.log"
        self.metrics_port = metrics_port
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> Service:
        with self.log.open("ab") as log:
            log.write(f"--- start {self.starts + 1} at {time.time():.3f}\n".encode())
            log.flush()
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT)
        self.starts += 1
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def ready(self, timeout_s: float = 60) -> float:
        """Seconds until its metrics endpoint answered."""
        assert self.metrics_port is not None
        port = self.metrics_port
        url = f"http://127.0.0.1:{port}/metrics"
        # An endpoint with no samples yet (a histogram never observed) still answers: that is ready.
        return wait_until(
            lambda: scrape_totals(url) is not None or self.exited(), timeout_s, f"{self.name} metrics"
        )

    def exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout_s: float = 120) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)


def laserguard(*args: str) -> list[str]:
    return [sys.executable, "-m", "laserguard.cli", *args]


def detect_service(ep: Endpoints, workdir: Path) -> Service:
    port = free_port()
    command = laserguard(
        "detect", "--telemetry-endpoint", ep.telemetry, "--feedback-endpoint", ep.feedback,
        "--observer-endpoint", ep.observer, "--metrics-port", str(port), "--hwm", "100000",
    )  # fmt: skip
    return Service("detect", command, workdir, port)


def store_service(
    ep: Endpoints, uri: str, db: str, workdir: Path, name: str, extra_args: Sequence[str] = ()
) -> Service:
    port = free_port()
    command = laserguard(
        "store", "--mongo-uri", uri, "--db", db, "--telemetry-endpoint", ep.telemetry,
        "--feedback-endpoint", ep.observer, "--metrics-port", str(port),
        "--spool-dir", str(workdir / f"spool-{name}"), *extra_args,
    )  # fmt: skip
    return Service(name, command, workdir, port)


def lcc_sim_service(
    ep: Endpoints, rate_hz: float, duration_s: float, subscriptions: int, workdir: Path, name: str, seed: int
) -> Service:
    command = [
        lcc_sim_executable(), "--lccs", "2", "--units", str(UNITS), "--rate-hz", str(rate_hz),
        "--duration-s", str(duration_s), "--fault-mix", "default", "--seed", str(seed),
        "--telemetry-endpoint", ep.telemetry, "--feedback-endpoint", ep.feedback, "--hwm", "100000",
        "--wait-for-subscriber", "60", "--subscriptions", str(subscriptions),
        "--summary-json", str(workdir / f"{name}.json"), "--log-level", "info",
    ]  # fmt: skip
    return Service(name, command, workdir)


class FeedbackWatch:
    """Subscribes to detect's observer feedback and keeps every arrival time per LCC (monotonic s)."""

    def __init__(self, observer: str) -> None:
        import zmq

        self._ctx = zmq.Context()
        self._sub = self._ctx.socket(zmq.SUB)
        self._sub.setsockopt(zmq.SUBSCRIBE, b"lcc.")
        self._sub.setsockopt(zmq.RCVHWM, 0)
        self._sub.setsockopt(zmq.LINGER, 0)
        self._sub.connect(observer)
        self.arrivals: dict[int, list[float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> FeedbackWatch:
        self._thread.start()
        return self

    def _run(self) -> None:
        from laserguard.wire import codec

        while not self._stop.is_set():
            if not self._sub.poll(100):
                continue
            parts = self._sub.recv_multipart()
            now = time.monotonic()
            try:
                lcc = codec.decode_feedback(parts[1]).lcc_id
            except (ValueError, IndexError):
                continue
            self.arrivals.setdefault(lcc, []).append(now)

    def first_after(self, t: float) -> float | None:
        """Arrival time of the first feedback (any LCC) after ``t``."""
        found = [next((x for x in times if x > t), None) for times in list(self.arrivals.values())]
        arrivals = [x for x in found if x is not None]
        return min(arrivals) if arrivals else None

    def longest_gap(self, start: float, end: float) -> float:
        """Longest time any LCC went without feedback between start and end (monotonic s)."""
        longest = 0.0
        for times in self.arrivals.values():
            window = [start, *[t for t in times if start < t < end], end]
            longest = max(longest, max(b - a for a, b in itertools.pairwise(window)))
        return longest

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sub.close(0)
        self._ctx.term()


def proc_sample(pid: int) -> tuple[float, int] | None:
    """(RSS in MB, open file descriptors) of a live process, from /proc."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, StopIteration, ValueError):
        return None
    return rss_kb / 1024, fds


def settled(ports: list[int], timeout_s: float, quiet_s: float = 3.0) -> float:
    """Wait until every store has nothing pending or spooled and received nothing new for
    ``quiet_s`` (frames still in a socket buffer are not lost to the SIGTERM that follows)."""

    def state() -> tuple[float, ...] | None:
        values: list[float] = []
        for port in ports:
            m = metrics(port)
            if (
                not m
                or m.get("laserguard_store_pending_frames", 1)
                or m.get("laserguard_store_spool_backlog_unit_samples", 1)
            ):
                return None
            values.append(m.get("laserguard_store_frames_received_total", 0))
        return tuple(values)

    start = time.monotonic()
    previous: tuple[float, ...] | None = None
    quiet_since = time.monotonic()
    while time.monotonic() - start < timeout_s:
        current = state()
        if current is None or current != previous:
            previous, quiet_since = current, time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            return time.monotonic() - start
        time.sleep(0.5)
    raise RuntimeError(f"stores did not settle within {timeout_s} s")


def report(result: dict[str, Any], out: str | None) -> int:
    """Print the JSON summary (and write it to ``out``); exit status 0 only if the target was met."""
    import json

    text = json.dumps(result, indent=2)
    print(text)
    if out:
        Path(out).write_text(text + "\n")
    return 0 if result["target_met"] else 1
