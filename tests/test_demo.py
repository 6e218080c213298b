"""`laserguard demo` end to end: real processes, real sockets, the embedded MongoDB-wire server."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mongo_fixtures import require_server_executable
from service_support import endpoint, free_port

HIGH_SEVERITY_FAULTS = [
    {"lcc": 1, "unit": 3, "type": "facet_damage", "start_s": 4.0, "severity": 1.0},
    {"lcc": 1, "unit": 9, "type": "cooling_loss", "start_s": 4.0, "ramp_s": 2.0, "severity": 1.0},
    {"lcc": 2, "unit": 20, "type": "driver_overshoot", "start_s": 4.0, "severity": 1.0},
]


@pytest.fixture(scope="module")
def demo_summary(tmp_path_factory: pytest.TempPathFactory) -> dict:  # type: ignore[type-arg]
    require_server_executable()
    tmp = tmp_path_factory.mktemp("demo")
    spec = tmp / "faults.json"
    spec.write_text(json.dumps({"faults": HIGH_SEVERITY_FAULTS}))
    summary_path = tmp / "summary.json"
    argv = [
        sys.executable, "-m", "laserguard.cli", "demo",
        "--duration-s", "20", "--fault-mix", "none", "--faults", str(spec),
        "--data-dir", str(tmp / "db"), "--summary-json", str(summary_path), "--no-progress",
        "--telemetry-endpoint", endpoint(), "--feedback-endpoint", endpoint(),
        "--observer-endpoint", endpoint(),
        "--detect-metrics-port", str(free_port()), "--store-metrics-port", str(free_port()),
        "--exporter-port", str(free_port()), "--dashboard-port", str(free_port()),
        "--roundtrip-port", str(free_port()),
    ]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, timeout=240, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    summary: dict = json.loads(summary_path.read_text())  # type: ignore[type-arg]
    # stdout is the human table; it names where the full JSON went and shows its numbers.
    assert f"full summary (JSON): {summary_path}" in result.stdout
    assert "fault events detected / missed" in result.stdout
    assert f"{summary['frames_published']:,} / {summary['frames_scored']:,}" in result.stdout
    return summary


def test_every_published_frame_is_scored_or_counted_as_a_gap(demo_summary: dict) -> None:  # type: ignore[type-arg]
    s = demo_summary
    assert s["frames_published"] == 2 * 20 * 10
    assert s["frames_scored"] + s["frame_gaps"] == s["frames_published"]
    assert s["frames_scored"] >= 0.95 * s["frames_published"]


def test_stored_unit_samples_match_frames_without_duplicates(demo_summary: dict) -> None:  # type: ignore[type-arg]
    s = demo_summary
    assert s["duplicate_unit_samples"] == 0
    assert s["unit_samples_stored"] == s["unit_samples_written_by_store"]  # database agrees with store
    # store is a separate subscriber; it may miss the same first frames detect can (late join).
    assert s["unit_samples_stored"] % 32 == 0
    assert s["unit_samples_stored"] >= 32 * (s["frames_published"] - s["frame_gaps"] - 5)
    assert s["unit_samples_stored"] <= 32 * s["frames_published"]
    assert s["storage_unit_samples_per_s"] > 0


def test_high_severity_faults_are_flagged(demo_summary: dict) -> None:  # type: ignore[type-arg]
    detection = demo_summary["detection"]
    assert detection["true_positives"] == len(HIGH_SEVERITY_FAULTS)
    assert detection["false_negatives"] == 0
    for fault in HIGH_SEVERITY_FAULTS:
        assert detection["per_fault_type"][fault["type"]]["recall"] == 1.0


def test_components_exit_cleanly_and_latency_is_reported(demo_summary: dict) -> None:  # type: ignore[type-arg]
    s = demo_summary
    assert s["components"] == {
        "lcc-sim": 0,
        "detect": 0,
        "store": 0,
        "exporter": 0,
        "dashboard": 0,
        "roundtrip": 0,
    }
    assert 0 < s["roundtrip_us"]["p50"] <= s["roundtrip_us"]["p99"] <= s["roundtrip_us"]["max"]


def test_the_whole_loop_runs_with_curve_on_by_default(demo_summary: dict) -> None:  # type: ignore[type-arg]
    security = demo_summary["link_security"]  # lcc-sim's view: who completed a CURVE handshake
    assert security["curve"] is True
    assert security["refused_total"] == 0
    assert set(security["accepted"]["feedback"]) == {"command"}  # only detect sends feedback
    # store, dashboard and roundtrip with the read key, detect with the command key
    assert security["accepted"]["telemetry"]["read"] >= 3
    assert security["accepted"]["telemetry"]["command"] >= 1


def test_wrong_flag_is_reported() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "laserguard.cli", "demo", "--duration-s", "-1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--duration-s" in result.stderr and "-1" in result.stderr
