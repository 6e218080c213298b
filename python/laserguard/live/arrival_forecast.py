"""When each LCC's next frame is due, so `detect` can refill the caches just before it.

Between frames 100 ms apart the model's nodes leave the CPU caches, and the next frame then
costs about 4x as much to score (docs/benchmarks.md, "What an idle 100 ms costs a frame").
LCCs send on a fixed cadence, so the next arrival is predictable: the last arrival plus the
median of the recent intervals. `detect` wakes ``lead_s`` before that and dry-runs the LCC's last
frame through its usual path (``score_frame(..., dry_run=True)``: the whole frame on a copy of
the LCC's state, about 50 µs); nothing is sent or kept.

Only gaps long enough to go cold are worth it: after a pause of 1 ms the caches are still warm,
after 10 ms they are not, so LCCs sending faster than every ``min_gap_s`` are left alone.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field


@dataclass
class _Cadence:
    last_s: float
    intervals: deque[float] = field(default_factory=lambda: deque(maxlen=16))
    warmed: bool = False


class ArrivalForecast:
    """Per LCC: when its next frame is due and whether its warm-up for that frame is done."""

    def __init__(self, lead_s: float = 0.002, min_gap_s: float = 0.005, min_intervals: int = 3) -> None:
        if not 0.0 < lead_s < min_gap_s:
            raise ValueError(f"need 0 < lead_s < min_gap_s, got lead_s={lead_s}, min_gap_s={min_gap_s}")
        self.lead_s = lead_s
        self.min_gap_s = min_gap_s
        self.min_intervals = min_intervals
        self._lccs: dict[int, _Cadence] = {}

    def observe(self, lcc: int, now_s: float) -> None:
        """A frame of this LCC arrived at ``now_s`` (monotonic seconds)."""
        cadence = self._lccs.get(lcc)
        if cadence is None:
            self._lccs[lcc] = _Cadence(now_s)
            return
        cadence.intervals.append(now_s - cadence.last_s)
        cadence.last_s = now_s
        cadence.warmed = False

    def due(self, lcc: int) -> float | None:
        """Monotonic time to warm up for the LCC's next frame, or None (unknown or too frequent)."""
        cadence = self._lccs.get(lcc)
        if cadence is None or cadence.warmed or len(cadence.intervals) < self.min_intervals:
            return None
        period = statistics.median(cadence.intervals)
        if period < self.min_gap_s:
            return None
        return cadence.last_s + period - self.lead_s

    def next_warm_up(self) -> tuple[int, float] | None:
        """The earliest pending warm-up as (lcc, when), or None."""
        pending = [(when, lcc) for lcc in self._lccs if (when := self.due(lcc)) is not None]
        if not pending:
            return None
        when, lcc = min(pending)
        return lcc, when

    def warmed(self, lcc: int) -> None:
        """The warm-up for the LCC's next frame is done (or given up): not again until it arrives."""
        cadence = self._lccs.get(lcc)
        if cadence is not None:
            cadence.warmed = True
