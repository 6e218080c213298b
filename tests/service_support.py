"""Helpers for tests that run laserguard services as real processes on free local ports."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from laserguard.dashboard.metrics_scrape import scrape_totals


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def endpoint() -> str:
    return f"tcp://127.0.0.1:{free_port()}"


def laserguard_process(*args: str, log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "laserguard.cli", *args], stdout=handle, stderr=subprocess.STDOUT
    )


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Poll until predicate() is true; returns the seconds it took. Fails the test on timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.02)
    raise AssertionError(f"{what} did not happen within {timeout_s} s")


def metrics(port: int) -> dict[str, float]:
    return scrape_totals(f"http://127.0.0.1:{port}/metrics") or {}


def labelled_metric(port: int, name: str, label: str, value: str) -> float:
    """One labelled sample's value from a metrics endpoint (0 if absent)."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels.get(label) == value:
                return float(sample.value)
    return 0.0
