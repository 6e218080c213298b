"""Baselines in the live loop with real processes: saved, restored after kill -9, reset on request."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from detect_support import BOOT, FakeLcc, connect, sim_frames, start_detect
from laserguard.live.baseline_store import pending_resets, read_saved_baselines
from laserguard.model.baseline import explanation_name
from laserguard.wire import codec
from service_support import labelled_metric, metrics, wait_for

OPTICAL = codec.CHANNELS.index("optical_power_w")


# Each unit's commanded current travels in the frame: the shipped model (engine v3) expects every
# channel from it.
SETPOINT = np.full(32, 8.0, dtype=np.float32)


def send(link: FakeLcc, seq: int, values: np.ndarray) -> codec.Feedback:
    link.send(
        codec.encode_telemetry(1, seq, 1_000_000_000 * (seq + 1), values, boot_id=BOOT, setpoint_a=SETPOINT)
    )
    feedback = link.receive(5000)
    assert feedback is not None and feedback.seq == seq
    return feedback


def handshake(link: FakeLcc, values: np.ndarray, first_seq: int = 0) -> int:
    return connect(link, values, lambda s: 1_000_000_000 * (s + 1), first_seq, setpoint_a=SETPOINT)


@pytest.fixture
def frames() -> Iterator[np.ndarray]:
    yield sim_frames(140, seed=7)


def test_restart_after_kill_9_keeps_baselines_so_a_faulty_unit_is_flagged_at_once(
    lcc: FakeLcc,
    frames: np.ndarray,
    tmp_path: Path,
) -> None:
    # Frequent saves, so the kill lands in the middle of some of them.
    detect = start_detect(
        lcc.telemetry_endpoint,
        lcc.feedback_endpoint,
        tmp_path,
        name="detect-1",
        extra=("--baseline-save-s", "0.05"),
    )
    state_dir = tmp_path / "baselines"
    try:
        seq = handshake(lcc, frames[0])
        for i in range(1, 80):  # learning ends after 50 rows; the learned baselines are saved at once
            send(lcc, seq, frames[i])
            seq += 1
        wait_for(
            lambda: labelled_metric(detect.metrics_port, "laserguard_detect_units_learning", "lcc", "1") == 0,
            10,
            "learned",
        )
    finally:
        detect.process.send_signal(signal.SIGKILL)
        detect.process.wait(10)
    saved = read_saved_baselines(state_dir, time.time())  # loads: the kill never leaves a torn file
    assert [u.phase for u in saved[1]] == ["ready"] * 32

    # Unit 5 fails while the detector is down: an 18 % power drop.
    faulty = frames[80:].copy()
    faulty[:, 5, OPTICAL] *= np.float32(0.82)
    again = start_detect(lcc.telemetry_endpoint, lcc.feedback_endpoint, tmp_path, name="detect-2")
    try:
        assert not list(state_dir.glob("*.tmp.*")), "orphaned temporaries are cleaned at start"
        seq = handshake(lcc, faulty[0], seq)
        feedback = send(lcc, seq, faulty[1])
        seq += 1
        assert 5 in feedback.anomalous_units.tolist(), "restored baseline: the faulty unit is judged at once"
        named = explanation_name(int(feedback.top_features[5, 0]), codec.CHANNELS)
        assert named.split(":")[0] in ("optical_power_w", "monitor_pd_ma") and ":" in named, named
        assert labelled_metric(again.metrics_port, "laserguard_detect_units_learning", "lcc", "1") == 0

        # After the repair the operator resets unit 5: it learns again and is not flagged meanwhile.
        listed = subprocess.run(
            [sys.executable, "-m", "laserguard.cli", "baseline", "reset", "--lcc", "1", "--unit", "5",
             "--state-dir", str(state_dir)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert listed.returncode == 0, listed.stderr
        wait_for(
            lambda: metrics(again.metrics_port).get("laserguard_detect_baseline_resets_total") == 1,
            10,
            "reset",
        )
        assert pending_resets(state_dir) == []
        feedback = send(lcc, seq, faulty[2])
        assert 5 not in feedback.anomalous_units.tolist()
        listing = subprocess.run(
            [sys.executable, "-m", "laserguard.cli", "baseline", "list", "--lcc", "1", "--state-dir", str(state_dir)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert listing.returncode == 0, listing.stderr
        rows = [line for line in listing.stdout.splitlines() if "│" in line and " 5 " in line]
        assert any("learning" in row or " new " in row for row in rows), listing.stdout
    finally:
        again.process.terminate()
        assert again.process.wait(10) == 0, again.log.read_text()


def test_an_unusable_state_file_is_kept_aside_and_counted(
    lcc: FakeLcc, frames: np.ndarray, tmp_path: Path
) -> None:
    state_dir = tmp_path / "baselines"
    state_dir.mkdir()
    (state_dir / "lcc1.state").write_bytes(b"LGBASEST" + b"\0" * 64)  # right magic, wrong CRC
    detect = start_detect(lcc.telemetry_endpoint, lcc.feedback_endpoint, tmp_path)
    try:
        handshake(lcc, frames[0])
        wait_for(
            lambda: (
                labelled_metric(
                    detect.metrics_port,
                    "laserguard_detect_baseline_state_errors_total",
                    "reason",
                    "unusable_state",
                )
                == 1
            ),
            10,
            "unusable state counted",
        )
        kept = list(state_dir.glob("lcc1.state.unusable-*"))
        assert len(kept) == 1 and kept[0].read_bytes().startswith(b"LGBASEST")  # never deleted
        assert "CRC" in detect.log.read_text()
    finally:
        detect.process.terminate()
        assert detect.process.wait(10) == 0, detect.log.read_text()
