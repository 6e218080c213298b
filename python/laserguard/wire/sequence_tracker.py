"""Per-LCC sequence tracking: PUB/SUB drops silently, sequence numbers make it visible."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SequenceTracker:
    """Counts missing frames per LCC from consecutive sequence numbers."""

    last_seq: dict[int, int] = field(default_factory=dict)
    gaps: dict[int, int] = field(default_factory=dict)
    resets: dict[int, int] = field(default_factory=dict)
    # Frames an LCC sent before this consumer's first one (sequences start at 0): a late
    # join, not a loss in flight, so kept apart from `gaps`.
    missed_before_first: dict[int, int] = field(default_factory=dict)

    def observe(self, lcc_id: int, seq: int) -> int:
        """Record a frame; returns how many frames were missed just before it (0 if none).

        A sequence number that does not move forward means the sender restarted (or a frame
        was duplicated): it is counted as a reset and tracking starts again from it.
        """
        last = self.last_seq.get(lcc_id)
        self.last_seq[lcc_id] = seq
        if last is None:
            self.missed_before_first[lcc_id] = seq
            return 0
        if seq <= last:
            self.resets[lcc_id] = self.resets.get(lcc_id, 0) + 1
            return 0
        missed = seq - last - 1
        if missed:
            self.gaps[lcc_id] = self.gaps.get(lcc_id, 0) + missed
        return missed

    @property
    def total_gaps(self) -> int:
        return sum(self.gaps.values())
