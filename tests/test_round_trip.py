"""RoundTripMatcher: pairing telemetry with feedback for the latency probe."""

from __future__ import annotations

import pytest

from laserguard.round_trip import RoundTripMatcher


def test_latency_runs_from_the_lcc_send_time_to_the_feedback() -> None:
    matcher = RoundTripMatcher(timeout_ns=1_000_000_000)
    matcher.telemetry(1, 10, sent_ns=5_000_000, received_ns=5_060_000)
    matcher.telemetry(2, 10, sent_ns=5_000_000, received_ns=5_070_000)
    assert matcher.feedback(1, 10, received_ns=5_250_000) == pytest.approx(250e-6)
    assert matcher.feedback(1, 10, received_ns=5_300_000) is None  # answered once only
    assert matcher.feedback(1, 11, received_ns=5_300_000) is None  # never seen
    assert matcher.pending == 1


def test_frames_without_feedback_expire_as_missing_per_lcc() -> None:
    matcher = RoundTripMatcher(timeout_ns=100)
    matcher.telemetry(1, 1, sent_ns=0, received_ns=0)
    matcher.telemetry(2, 1, sent_ns=0, received_ns=10)
    matcher.telemetry(1, 2, sent_ns=0, received_ns=50)
    assert matcher.expire(now_ns=99) == {}
    assert matcher.expire(now_ns=110) == {1: 1, 2: 1}
    assert matcher.pending == 1
    assert matcher.feedback(1, 2, received_ns=120) == pytest.approx(120e-9)


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="-5"):
        RoundTripMatcher(timeout_ns=-5)
