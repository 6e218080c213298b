"""The scoring step of `laserguard detect`: telemetry payload in, feedback payload out.

One native call per frame (C++ ``FrameScorer``, GIL released): decode, score every unit with
both stages of detection engine v2 (the fleet forest and the unit's own baseline), explain the
flagged units (which stage, which channel), encode the feedback. Python only registers an LCC
with its saved baselines when its first frame arrives.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from laserguard.live.baseline_store import LiveBaselines

TOP_K = 3


@dataclass(frozen=True)
class ScoredFrame:
    lcc_id: int
    boot_id: int
    seq: int
    timestamp_ns: int
    n_units: int
    anomalous: int  # units flagged
    by_fleet: int  # of which flagged by the fleet forest
    by_baseline: int  # of which flagged against their own baseline
    learning: int  # units still learning their baseline (never flagged)
    nonfinite_values: int  # +-inf readings (scored as missing)
    feedback: bytes  # encoded feedback message


def score_frame(baselines: LiveBaselines, payload: bytes, *, dry_run: bool = False) -> ScoredFrame:
    """Raises laserguard.wire.codec.FrameError (a ValueError) for a malformed frame.

    ``dry_run``: score on a copy of the LCC's state and keep nothing, through this same path.
    `detect` dry-runs an LCC's last frame just before its next one is due, to refill the caches an
    idle 100 ms empties (live/arrival_forecast.py). An LCC not seen yet is not registered.
    """
    outcome, feedback = baselines.frames.score(payload, time.time_ns(), dry_run)
    if outcome[0] and not dry_run:  # first frame of this LCC (or a new unit count): load its baselines
        baselines.register(int(outcome[1]), int(outcome[5]))
        outcome, feedback = baselines.frames.score(payload, time.time_ns())
    _, lcc, boot, seq, ts, n_units, anomalous, by_fleet, by_baseline, learning, nonfinite = outcome
    return ScoredFrame(
        lcc, boot, seq, ts, n_units, anomalous, by_fleet, by_baseline, learning, nonfinite, feedback
    )
