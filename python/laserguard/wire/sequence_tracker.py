"""Per-LCC sequence tracking: PUB/SUB drops silently, sequence numbers make it visible.

Sequence numbers restart at 0 whenever an LCC starts, and every start has its own boot id
(docs/protocol.md), so expectations are kept per (LCC, boot): a new boot is a restart (counted
and reported by the caller), never a gap storm or a run of "duplicates".
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SequenceTracker:
    """Counts missing frames per LCC from consecutive sequence numbers within one boot."""

    last_seq: dict[int, int] = field(default_factory=dict)
    boot: dict[int, int] = field(default_factory=dict)  # the LCC's current boot id
    gaps: dict[int, int] = field(default_factory=dict)
    # Sequence numbers that did not move forward within one boot (a duplicated or reordered frame).
    resets: dict[int, int] = field(default_factory=dict)
    # New boots of an LCC seen after its first one (the LCC restarted).
    restarts: dict[int, int] = field(default_factory=dict)
    # Frames the LCC's current boot sent before this consumer's first frame of it: a late join
    # (or the reconnect after an LCC restart), not a loss in flight, so kept apart from `gaps`.
    missed_before_first: dict[int, int] = field(default_factory=dict)
    # Set by observe(): (previous boot, new boot) when the last frame started a new boot, else None.
    last_restart: tuple[int, int] | None = None

    def observe(self, lcc_id: int, seq: int, boot_id: int) -> int:
        """Record a frame; returns how many frames of the same boot were missed just before it."""
        self.last_restart = None
        previous_boot = self.boot.get(lcc_id)
        last = self.last_seq.get(lcc_id)
        self.last_seq[lcc_id] = seq
        if previous_boot is None or previous_boot != boot_id:
            self.boot[lcc_id] = boot_id
            self.missed_before_first[lcc_id] = seq
            if previous_boot is not None:
                self.restarts[lcc_id] = self.restarts.get(lcc_id, 0) + 1
                self.last_restart = (previous_boot, boot_id)
            return 0
        assert last is not None
        if seq <= last:
            self.resets[lcc_id] = self.resets.get(lcc_id, 0) + 1
            self.last_seq[lcc_id] = last  # keep the high mark: a stray old frame must not fake a gap
            return 0
        missed = seq - last - 1
        if missed:
            self.gaps[lcc_id] = self.gaps.get(lcc_id, 0) + missed
        return missed

    @property
    def total_gaps(self) -> int:
        return sum(self.gaps.values())

    @property
    def total_restarts(self) -> int:
        return sum(self.restarts.values())
