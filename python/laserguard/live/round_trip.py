"""Round-trip latency of the loop, measured by an observer beside the LCC.

Only the LCC knows when feedback reaches it (lcc-sim reports that in its summary, not live).
The probe subscribes to the same telemetry and to the detector's observer feedback, and times
each frame from the LCC's send timestamp (carried in the telemetry frame) to the moment the
matching feedback (same LCC, boot and seq) arrives at the probe. That is the same path as the real round
trip (LCC -> detect -> a PUB socket of detect -> a subscriber), with the probe standing in for
the LCC on the last hop. It compares the LCC's clock with the probe's, so the probe runs on the
LCC's host (or one synchronised with it by PTP/NTP).
"""

from __future__ import annotations

from collections import OrderedDict

MAX_PENDING_FRAMES = 100_000


class RoundTripMatcher:
    """Pairs telemetry frames with their feedback; frames unanswered after ``timeout_ns`` are missing.

    Telemetry and feedback reach the probe on two connections, which ZMQ does not order against
    each other: feedback may arrive first, so it waits (up to the timeout) for its frame too.
    """

    def __init__(self, timeout_ns: int = 2_000_000_000) -> None:
        if timeout_ns <= 0:
            raise ValueError(f"timeout_ns must be > 0, got {timeout_ns}")
        self.timeout_ns = timeout_ns
        # A frame is (lcc, boot, seq): seq restarts at 0 when an LCC restarts, so an answer to the
        # previous boot's frame 7 must never be timed against this boot's frame 7.
        # (lcc, boot, seq) -> (sender timestamp ns, local receive time ns); insertion order = arrival order
        self._frames: OrderedDict[tuple[int, int, int], tuple[int, int]] = OrderedDict()
        # (lcc, boot, seq) -> local receive time ns of feedback that arrived before its frame
        self._early_feedback: OrderedDict[tuple[int, int, int], int] = OrderedDict()

    @property
    def pending(self) -> int:
        return len(self._frames)

    def telemetry(self, lcc_id: int, boot_id: int, seq: int, sent_ns: int, received_ns: int) -> float | None:
        """Record a frame; returns its round trip in seconds if its feedback already arrived."""
        key = (lcc_id, boot_id, seq)
        feedback_ns = self._early_feedback.pop(key, None)
        if feedback_ns is not None:
            return (feedback_ns - sent_ns) / 1e9
        self._frames[key] = (sent_ns, received_ns)
        if len(self._frames) > MAX_PENDING_FRAMES:  # no detector at all: bound the memory
            self._frames.popitem(last=False)
        return None

    def feedback(self, lcc_id: int, boot_id: int, seq: int, received_ns: int) -> float | None:
        """Seconds from the LCC's send time to ``received_ns``; None while the frame is not seen yet."""
        key = (lcc_id, boot_id, seq)
        entry = self._frames.pop(key, None)
        if entry is None:
            self._early_feedback[key] = received_ns
            if len(self._early_feedback) > MAX_PENDING_FRAMES:
                self._early_feedback.popitem(last=False)
            return None
        return (received_ns - entry[0]) / 1e9

    def expire(self, now_ns: int) -> dict[int, int]:
        """Drop frames that waited longer than the timeout; returns how many per LCC. Feedback
        whose frame never came (the probe joined late, or the frame was lost) is dropped too."""
        while self._early_feedback and now_ns - next(iter(self._early_feedback.values())) >= self.timeout_ns:
            self._early_feedback.popitem(last=False)
        missing: dict[int, int] = {}
        while self._frames:
            (lcc_id, _, _), (_, received_ns) = next(iter(self._frames.items()))
            if now_ns - received_ns < self.timeout_ns:
                break
            self._frames.popitem(last=False)
            missing[lcc_id] = missing.get(lcc_id, 0) + 1
        return missing
