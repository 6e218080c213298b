"""SequenceTracker: gaps within a boot, restarts across boots (issue 12), duplicates apart."""

from __future__ import annotations

from laserguard.wire.sequence_tracker import SequenceTracker

BOOT_A, BOOT_B = 0xA, 0xB


def test_gaps_are_counted_within_one_boot_and_a_late_join_is_not_a_gap() -> None:
    tracker = SequenceTracker()
    assert tracker.observe(1, 5, BOOT_A) == 0  # joined late: frames 0-4 were never ours to see
    assert tracker.missed_before_first == {1: 5}
    assert [tracker.observe(1, s, BOOT_A) for s in (6, 7, 10)] == [0, 0, 2]
    assert tracker.gaps == {1: 2} and tracker.restarts == {} and tracker.last_restart is None


def test_a_new_boot_is_a_restart_not_a_gap_storm_or_duplicates() -> None:
    tracker = SequenceTracker()
    for seq in range(100):
        tracker.observe(1, seq, BOOT_A)
    assert tracker.observe(1, 0, BOOT_B) == 0  # seq back to 0 under a new boot id
    assert tracker.last_restart == (BOOT_A, BOOT_B)
    assert tracker.restarts == {1: 1} and tracker.resets == {} and tracker.gaps == {}
    assert [tracker.observe(1, s, BOOT_B) for s in (1, 2)] == [0, 0]
    assert tracker.last_restart is None
    # The reconnect after a restart may miss the new boot's first frames: a late join, not a loss.
    assert tracker.observe(1, 7, BOOT_A) == 0 and tracker.restarts == {1: 2}
    assert tracker.missed_before_first == {1: 7} and tracker.total_gaps == 0


def test_a_repeated_or_reordered_frame_of_the_same_boot_is_a_reset_and_keeps_the_high_mark() -> None:
    tracker = SequenceTracker()
    for seq in (0, 1, 2, 3):
        tracker.observe(2, seq, BOOT_A)
    assert tracker.observe(2, 1, BOOT_A) == 0
    assert tracker.resets == {2: 1} and tracker.restarts == {}
    assert tracker.observe(2, 4, BOOT_A) == 0  # 3 -> 4 is no gap, whatever came in between
    assert tracker.total_restarts == 0
