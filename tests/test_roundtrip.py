"""The round-trip latency probe: RoundTripMatcher, and `laserguard roundtrip` on real sockets."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from laserguard.dashboard.metrics_scrape import scrape_totals
from laserguard.live.round_trip import RoundTripMatcher
from service_support import endpoint, free_port, labelled_metric, laserguard_process, wait_for

BOOT = 0x5EED_B007_0000_0001  # boot id of the frames this file sends (one LCC start)


def test_latency_runs_from_the_lcc_send_time_to_the_feedback() -> None:
    matcher = RoundTripMatcher(timeout_ns=1_000_000_000)
    matcher.telemetry(1, BOOT, 10, sent_ns=5_000_000, received_ns=5_060_000)
    matcher.telemetry(2, BOOT, 10, sent_ns=5_000_000, received_ns=5_070_000)
    assert matcher.feedback(1, BOOT, 10, received_ns=5_250_000) == pytest.approx(250e-6)
    assert matcher.feedback(1, BOOT, 10, received_ns=5_300_000) is None  # answered once only
    assert matcher.pending == 1


def test_feedback_that_overtakes_its_frame_is_matched_when_the_frame_arrives() -> None:
    matcher = RoundTripMatcher(timeout_ns=1_000_000)
    assert matcher.feedback(1, BOOT, 11, received_ns=2_000) is None
    assert matcher.telemetry(1, BOOT, 11, sent_ns=1_000, received_ns=2_500) == pytest.approx(1e-6)
    assert matcher.pending == 0
    assert matcher.expire(now_ns=10_000_000) == {}  # matched: nothing missing
    # feedback whose frame never comes is dropped after the timeout, not kept forever
    assert matcher.feedback(1, BOOT, 12, received_ns=3_000) is None
    matcher.expire(now_ns=2_000_000)
    assert matcher.telemetry(1, BOOT, 12, sent_ns=2_500_000, received_ns=2_600_000) is None
    assert matcher.pending == 1


def test_frames_without_feedback_expire_as_missing_per_lcc() -> None:
    matcher = RoundTripMatcher(timeout_ns=100)
    matcher.telemetry(1, BOOT, 1, sent_ns=0, received_ns=0)
    matcher.telemetry(2, BOOT, 1, sent_ns=0, received_ns=10)
    matcher.telemetry(1, BOOT, 2, sent_ns=0, received_ns=50)
    assert matcher.expire(now_ns=99) == {}
    assert matcher.expire(now_ns=110) == {1: 1, 2: 1}
    assert matcher.pending == 1
    assert matcher.feedback(1, BOOT, 2, received_ns=120) == pytest.approx(120e-9)


def test_an_answer_to_the_previous_boot_never_matches_the_new_boots_frame() -> None:
    # The LCC restarted: both boots have a frame 10. The late answer to the old one must not be
    # timed against the new one (a bogus, possibly negative latency), and the new frame still waits.
    matcher = RoundTripMatcher(timeout_ns=1_000_000_000)
    new_boot = BOOT + 1
    matcher.telemetry(1, new_boot, 10, sent_ns=9_000_000, received_ns=9_050_000)
    assert matcher.feedback(1, BOOT, 10, received_ns=8_000_000) is None
    assert matcher.pending == 1
    assert matcher.feedback(1, new_boot, 10, received_ns=9_400_000) == pytest.approx(400e-6)


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="-5"):
        RoundTripMatcher(timeout_ns=-5)


# ------------------------------------------------ `laserguard roundtrip` as a process, real sockets


def test_roundtrip_command_times_feedback_counts_missing_and_rejects(tmp_path: Path) -> None:
    import zmq

    from laserguard.wire import codec

    telemetry_endpoint, observer_endpoint, port = endpoint(), endpoint(), free_port()
    ctx = zmq.Context()
    telemetry, observer = ctx.socket(zmq.PUB), ctx.socket(zmq.PUB)
    telemetry.bind(telemetry_endpoint)  # the LCC and the detector's observer socket bind
    observer.bind(observer_endpoint)
    process = laserguard_process(
        "roundtrip", "--telemetry-endpoint", telemetry_endpoint, "--observer-endpoint", observer_endpoint,
        "--metrics-port", str(port), "--timeout-s", "0.3", log=tmp_path / "roundtrip.log",
    )  # fmt: skip
    values = np.zeros((4, len(codec.CHANNELS)), dtype=np.float32)
    no_top = np.zeros((4, 0), dtype=np.int16)

    def send_frame(seq: int, answer: bool, lcc_id: int = 1) -> None:
        sent_ns = time.time_ns()
        frame = codec.encode_telemetry(lcc_id, seq, sent_ns, values, boot_id=BOOT)
        telemetry.send_multipart([codec.telemetry_topic(lcc_id), frame])
        if answer:
            feedback = codec.encode_feedback(
                lcc_id,
                seq,
                sent_ns,
                "m1",
                np.zeros(4, np.float32),
                [],
                no_top,
                no_top.astype(np.float32),
                boot_id=BOOT,
            )
            observer.send_multipart([codec.feedback_topic(lcc_id), feedback])

    def measured() -> float:
        return labelled_metric(port, "laserguard_roundtrip_seconds_count", "lcc", "1")

    try:
        url = f"http://127.0.0.1:{port}/metrics"
        wait_for(lambda: scrape_totals(url) is not None, 30, "the roundtrip metrics endpoint")
        seq = 0

        def answered() -> bool:  # repeat until both subscriptions are live (late joiner)
            nonlocal seq
            seq += 1
            send_frame(seq, answer=True)
            return measured() > 0

        wait_for(answered, 30, "a round trip measured by the probe")
        measured_before = measured()
        send_frame(seq + 1, answer=True)
        send_frame(5, answer=False, lcc_id=2)
        wait_for(
            lambda: labelled_metric(port, "laserguard_roundtrip_feedback_missing_total", "lcc", "2") == 1,
            10,
            "the unanswered frame of LCC 2 counted as missing",
        )
        assert measured() == measured_before + 1
        assert labelled_metric(port, "laserguard_roundtrip_seconds_count", "lcc", "2") == 0
        telemetry.send_multipart([codec.telemetry_topic(1), b"XXXX-not-a-frame"])
        wait_for(
            lambda: (
                labelled_metric(port, "laserguard_roundtrip_frames_invalid_total", "reason", "bad_magic") == 1
            ),
            10,
            "the malformed frame counted by reason",
        )
        assert process.poll() is None  # a bad frame is counted, not fatal
    finally:
        process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=20)
        telemetry.close(0)
        observer.close(0)
        ctx.term()
    assert status == 0


def test_roundtrip_command_rejects_a_bad_timeout() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "laserguard.cli", "roundtrip", "--timeout-s", "-2", "--metrics-port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--timeout-s" in result.stderr and "-2" in result.stderr
