"""`laserguard detect` as a real process: real ZMQ sockets on 127.0.0.1, the shipped model."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from detect_support import BOOT, Detector, FakeLcc, connect, sim_frames, start_detect
from laserguard import ForestModel, sim
from laserguard.demo.runner import lcc_sim_executable
from laserguard.model.default_model import default_model_path
from laserguard.model.unit_scoring import UnitScorer, explanation_names
from laserguard.wire import codec
from service_support import endpoint, labelled_metric, metrics, wait_for
from wire_v2 import encode_telemetry_v2


def unit_values(seed: int = 0, n_units: int = 32) -> np.ndarray:
    frame = sim.generate(60 / 3600, rate_hz=1.0, lccs=1, units=n_units, seed=seed, fault_mix="all")
    return frame[list(codec.CHANNELS)].to_numpy(np.float32)[-n_units:]


def test_feedback_carries_the_exact_v2_scores(lcc: FakeLcc, detector: Detector) -> None:
    frames = sim_frames(90)
    optical = codec.CHANNELS.index("optical_power_w")
    frames[70:, 5, optical] *= np.float32(0.82)  # facet damage on unit 5: an 18 % power step
    frames[80, 0, 2] = np.nan  # a dropout and an inf glitch (scored as missing)
    frames[80, 1, 3] = np.inf
    # The handshake frames are scored too (some answers may be lost while the detector's
    # feedback socket connects): replaying exactly the frames it scored, in order, through the
    # same C++ stage must give the same bits. It scored the last N sent, N from its metric.
    seq = connect(lcc, frames[0], time_ns=lambda s: 1_000_000_000 * (s + 1))
    time.sleep(0.3)
    n_scored = int(labelled_metric(detector.metrics_port, "laserguard_detect_frames_total", "lcc", "1"))
    assert 0 < n_scored <= seq
    model = ForestModel.load(default_model_path())
    assert model.baseline is not None and model.context is not None, (
        "the shipped model is detection engine v3"
    )
    # Each unit's commanded current travels in the frame; v3 expects every channel from it.
    setpoint = np.full(32, 8.0, dtype=np.float32)
    local = UnitScorer(model, 32)
    for s in range(seq - n_scored, seq):
        local.score(np.arange(32), np.full(32, float(s + 1)), frames[0], 3)
    names = explanation_names(model)
    flagged_by: dict[int, set[str]] = {}
    for i in range(1, len(frames)):
        before = time.time_ns()
        lcc.send(
            codec.encode_telemetry(
                1, seq, 1_000_000_000 * (seq + 1), frames[i], boot_id=BOOT, setpoint_a=setpoint
            )
        )
        feedback = lcc.receive()
        assert feedback is not None and (feedback.lcc_id, feedback.seq) == (1, seq)
        assert before <= feedback.timestamp_ns <= time.time_ns()  # the detector's send time
        assert feedback.model_version == model.version
        expected = local.score(np.arange(32), np.full(32, float(seq + 1)), frames[i], 3, setpoint=setpoint)
        np.testing.assert_array_equal(feedback.scores, expected.score.astype(np.float32))
        np.testing.assert_array_equal(feedback.anomalous_units, np.flatnonzero(expected.flagged))
        np.testing.assert_array_equal(feedback.top_features, expected.top_code)
        np.testing.assert_array_equal(feedback.top_weights, expected.top_weight)
        for unit in feedback.anomalous_units:
            flagged_by.setdefault(int(unit), set()).add(names[feedback.top_features[unit, 0]])
        seq += 1
    # The step is caught on its channels by the unit's own stage; the bad readings as missing.
    assert {n.split(":")[0] for n in flagged_by.get(5, set()) if ":" in n} & {
        "optical_power_w",
        "monitor_pd_ma",
    }, flagged_by
    assert {"optical_power_w:missing"} <= flagged_by.get(0, set()), flagged_by
    assert {"monitor_pd_ma:missing"} <= flagged_by.get(1, set()), flagged_by
    wait_for(
        lambda: (
            labelled_metric(detector.metrics_port, "laserguard_detect_nonfinite_values_total", "lcc", "1")
            == 1
        ),
        5,
        "the inf reading counted",
    )


def test_malformed_messages_are_counted_by_reason_and_detect_keeps_serving(
    lcc: FakeLcc, detector: Detector
) -> None:
    values = unit_values()
    seq = connect(lcc, values)
    good = codec.encode_telemetry(1, seq, 1, values, boot_id=BOOT)
    lcc.send(b"garbage that is not a frame")
    lcc.send(good[: len(good) // 2])
    lcc.send(good + b"\0" * 64)
    lcc.telemetry.send_multipart([codec.telemetry_topic(1), good, b"extra part"])
    lcc.send(good)
    feedback = lcc.receive()
    assert feedback is not None and feedback.seq == seq
    invalid = {
        reason: labelled_metric(
            detector.metrics_port, "laserguard_detect_frames_invalid_total", "reason", reason
        )
        for reason in ("bad_magic", "truncated", "bad_multipart")
    }
    assert invalid == {"bad_magic": 1, "truncated": 1, "bad_multipart": 1}, invalid
    total = metrics(detector.metrics_port)["laserguard_detect_frames_invalid_total"]
    assert total == 4  # plus the oversized frame, whatever its reason code
    assert detector.process.poll() is None


def test_sequence_gaps_are_counted(lcc: FakeLcc, detector: Detector) -> None:
    values = unit_values()
    seq = connect(lcc, values)
    for s in (seq, seq + 1, seq + 7):  # frames seq+2 .. seq+6 lost
        lcc.send(codec.encode_telemetry(1, s, 1, values, boot_id=BOOT))
        assert lcc.receive() is not None
    # Metrics are updated right after the feedback is sent, so wait for them.
    wait_for(
        lambda: labelled_metric(detector.metrics_port, "laserguard_detect_frame_gaps_total", "lcc", "1") == 5,
        5,
        "5 gaps counted",
    )


def test_an_lcc_restart_is_counted_and_logged_never_a_gap_storm(lcc: FakeLcc, detector: Detector) -> None:
    values = unit_values()
    seq = connect(lcc, values)
    for s in range(seq, seq + 50):
        lcc.send(codec.encode_telemetry(1, s, 1, values, boot_id=BOOT))
        assert lcc.receive() is not None
    new_boot = BOOT ^ 0xFFFF
    for s in range(0, 5):  # the LCC restarted: seq back to 0 under a new boot id
        lcc.send(codec.encode_telemetry(1, s, 1, values, boot_id=new_boot))
        answer = lcc.receive()
        assert answer is not None and (answer.boot_id, answer.seq) == (new_boot, s)  # boot echoed
    # An old-version sender is refused with the codec's reason, counted, and named in the log.
    old = bytearray(codec.encode_telemetry(1, 6, 1, values, boot_id=new_boot))
    old[4:6] = (1).to_bytes(2, "little")
    lcc.send(bytes(old))
    wait_for(
        lambda: (
            labelled_metric(
                detector.metrics_port, "laserguard_detect_frames_invalid_total", "reason", "unknown_version"
            )
            == 1
        ),
        5,
        "the version-1 frame counted",
    )
    port = detector.metrics_port
    assert labelled_metric(port, "laserguard_detect_lcc_restarts_total", "lcc", "1") == 1
    assert labelled_metric(port, "laserguard_detect_frame_gaps_total", "lcc", "1") == 0
    assert labelled_metric(port, "laserguard_detect_sequence_resets_total", "lcc", "1") == 0
    log = detector.log.read_text()
    assert f"lcc 1 restarted: boot {BOOT:016x} -> {new_boot:016x}" in log
    assert "version 1 is not supported" in log


def test_a_version_2_lcc_is_refused_counted_and_named_once(lcc: FakeLcc, detector: Detector) -> None:
    values = unit_values()
    seq = connect(lcc, values)
    # A sender that was not upgraded: genuine version-2 frames (no setpoint/state), at its pace.
    for s in range(seq, seq + 5):
        lcc.send(encode_telemetry_v2(1, BOOT, s, time.time_ns(), values))
    assert lcc.receive(300) is None  # refused: never scored, never answered
    wait_for(
        lambda: (
            labelled_metric(
                detector.metrics_port, "laserguard_detect_frames_invalid_total", "reason", "unknown_version"
            )
            == 5
        ),
        5,
        "the 5 version-2 frames counted",
    )
    # The same LCC upgraded (version 3, with its units' context) is scored again at once.
    lcc.send(
        codec.encode_telemetry(
            1, seq + 5, time.time_ns(), values, boot_id=BOOT, setpoint_a=np.full(32, 7.5), state=["on"] * 32
        )
    )
    answer = lcc.receive()
    assert answer is not None and answer.seq == seq + 5
    assert detector.process.poll() is None
    log = detector.log.read_text()
    refusal = "telemetry frame version 2 is not supported (this decoder reads version 3"
    assert log.count(refusal) == 1, log  # named once, not once per frame
    assert "refusing every frame on b'lcc.1.telemetry' until its sender is upgraded" in log


def _export_small_model(path: Path, seed: int) -> str:
    from sklearn.ensemble import IsolationForest

    import laserguard

    X = sim.generate(0.02, rate_hz=1.0, seed=seed, fault_mix="none")[list(codec.CHANNELS)].to_numpy()
    return laserguard.export_model(IsolationForest(n_estimators=20, random_state=seed).fit(X), path)


def test_hot_reload_swaps_good_models_and_refuses_bad_ones(lcc: FakeLcc, tmp_path: Path) -> None:
    model_path = tmp_path / "serving.lgf"
    shutil.copy(default_model_path(), model_path)
    d = start_detect(lcc.telemetry_endpoint, lcc.feedback_endpoint, tmp_path, model=model_path)
    try:
        values = unit_values()
        seq = connect(lcc, values)
        first_version = ForestModel.load(model_path).version

        # A corrupt file is refused; the old model keeps answering.
        broken = tmp_path / "broken.lgf"
        broken.write_bytes(model_path.read_bytes()[:1000])
        os.replace(broken, model_path)
        d.process.send_signal(signal.SIGHUP)
        wait_for(
            lambda: (
                labelled_metric(d.metrics_port, "laserguard_detect_model_reloads_total", "result", "refused")
                >= 1
            ),
            10,
            "refused reload",
        )
        lcc.send(codec.encode_telemetry(1, seq, 1, values, boot_id=BOOT))
        feedback = lcc.receive()
        assert feedback is not None and feedback.model_version == first_version

        # A good new file is picked up from its changed mtime alone (no signal).
        new_version = _export_small_model(tmp_path / "next.lgf", seed=3)
        os.replace(tmp_path / "next.lgf", model_path)
        wait_for(
            lambda: (
                labelled_metric(d.metrics_port, "laserguard_detect_model_reloads_total", "result", "ok") >= 1
            ),
            10,
            "reload of the new model",
        )
        lcc.send(codec.encode_telemetry(1, seq + 1, 1, values, boot_id=BOOT))
        feedback = lcc.receive()
        assert feedback is not None and feedback.model_version == new_version != first_version
        assert labelled_metric(d.metrics_port, "laserguard_detect_frame_gaps_total", "lcc", "1") == 0
    finally:
        d.process.terminate()
        assert d.process.wait(10) == 0, d.log.read_text()


def test_restarted_detect_resumes_feedback_to_a_running_lcc_sim(tmp_path: Path) -> None:
    lcc_sim = lcc_sim_executable()
    telemetry, feedback = endpoint(), endpoint()
    summary_path = tmp_path / "summary.json"
    sim_process = subprocess.Popen(
        [
            lcc_sim, "--rate-hz", "50", "--duration-s", "0", "--fault-mix", "none",
            "--telemetry-endpoint", telemetry, "--feedback-endpoint", feedback,
            "--summary-json", str(summary_path), "--log-level", "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        first = start_detect(telemetry, feedback, tmp_path, name="detect-1")
        wait_for(
            lambda: metrics(first.metrics_port).get("laserguard_detect_frames_total", 0) > 0, 10, "scoring"
        )
        first.process.kill()
        first.process.wait(10)
        time.sleep(0.5)
        assert sim_process.poll() is None, "lcc-sim must keep running while detect is down"
        second = start_detect(telemetry, feedback, tmp_path, name="detect-2")
        resumed_after = wait_for(
            lambda: metrics(second.metrics_port).get("laserguard_detect_feedback_published_total", 0) > 0,
            5,
            "feedback from the restarted detector",
        )
        assert resumed_after < 1.0, f"feedback resumed {resumed_after:.2f} s after the restart"
        second.process.terminate()
        assert second.process.wait(10) == 0
    finally:
        sim_process.send_signal(signal.SIGINT)
        assert sim_process.wait(30) == 0
    summary = json.loads(summary_path.read_text())
    assert summary["feedback_received"] > 0
    assert summary["frames_dropped"] == 0


def test_busy_poll_mode_answers_every_frame(lcc: FakeLcc, tmp_path: Path) -> None:
    d = start_detect(lcc.telemetry_endpoint, lcc.feedback_endpoint, tmp_path, extra=("--busy-poll",))
    try:
        values = unit_values()
        seq = connect(lcc, values)
        for s in range(seq, seq + 20):
            lcc.send(codec.encode_telemetry(1, s, 1, values, boot_id=BOOT))
            feedback = lcc.receive()
            assert feedback is not None and feedback.seq == s
    finally:
        d.process.terminate()
        assert d.process.wait(10) == 0, d.log.read_text()


def _send_at(lcc: FakeLcc, values: np.ndarray, first_seq: int, n: int, period_s: float) -> None:
    """n frames on a fixed cadence, each answered before the next is due."""
    start = time.monotonic()
    for i in range(n):
        time.sleep(max(0.0, start + i * period_s - time.monotonic()))
        lcc.send(codec.encode_telemetry(1, first_seq + i, 1, values, boot_id=BOOT))
        feedback = lcc.receive()
        assert feedback is not None and feedback.seq == first_seq + i


@pytest.mark.parametrize("warm_up", [True, False], ids=["default", "no-warm-up"])
def test_detect_warms_the_model_before_each_frame_of_a_slow_cadence(
    lcc: FakeLcc, tmp_path: Path, warm_up: bool
) -> None:
    """At 20 Hz the caches go cold between frames: detect walks the model once before each is due."""
    extra = () if warm_up else ("--no-warm-up",)
    d = start_detect(lcc.telemetry_endpoint, lcc.feedback_endpoint, tmp_path, extra=extra)
    try:
        values = unit_values()
        seq = connect(lcc, values)
        _send_at(lcc, values, seq, 30, 0.05)
        warm_ups = metrics(d.metrics_port).get("laserguard_detect_warm_ups_total", 0.0)
        if warm_up:
            # The cadence is learnt from three intervals; the rest are warmed up (a late wake-up may
            # find its frame already waiting, and then skips the warm-up).
            assert 20 <= warm_ups <= 30
        else:
            assert warm_ups == 0
        # A fast cadence stays warm by itself: no warm-ups there.
        before = warm_ups
        _send_at(lcc, values, seq + 30, 30, 0.002)
        assert metrics(d.metrics_port).get("laserguard_detect_warm_ups_total", 0.0) <= before + 1
    finally:
        d.process.terminate()
        assert d.process.wait(10) == 0, d.log.read_text()
