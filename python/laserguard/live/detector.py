"""The scoring step of `laserguard detect`: telemetry payload in, feedback payload out.

Every unit is scored by detection engine v2 (``laserguard.model.unit_scoring``): the fleet
forest and the unit's own baseline; the feedback lists the flagged units, every unit's score
and the explanation codes of flagged units (which stage, which channel).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from laserguard.model.unit_scoring import UnitScorer, UnitScores
from laserguard.wire.codec import decode_telemetry, encode_feedback

TOP_K = 3


@dataclass(frozen=True)
class ScoredFrame:
    lcc_id: int
    seq: int
    timestamp_ns: int
    decision: np.ndarray  # float64 per unit: the v2 score (< 0 flagged)
    anomalous_units: np.ndarray  # int indices of flagged units
    nonfinite_values: int  # +-inf readings (scored as missing)
    units: UnitScores  # both stages, learning flags and explanations
    feedback: bytes  # encoded feedback message


def score_frame(
    scorer_for: Callable[[int, int], UnitScorer], version: str, payload: bytes, top_k: int = TOP_K
) -> ScoredFrame:
    """Decode a telemetry frame, score every unit, encode the feedback message.

    ``scorer_for(lcc_id, n_units)`` gives the LCC's scorer (it holds the units' baselines).
    Raises laserguard.wire.codec.FrameError (a ValueError) for a malformed frame.
    """
    frame = decode_telemetry(payload)
    values = frame.values
    n_units = values.shape[0]
    scorer = scorer_for(frame.lcc_id, n_units)
    t = np.full(n_units, frame.timestamp_ns / 1e9)
    units = scorer.score(np.arange(n_units, dtype=np.uint32), t, values, top_k)
    anomalous = np.flatnonzero(units.flagged)
    feedback = encode_feedback(
        frame.lcc_id,
        frame.seq,
        time.time_ns(),  # the detector's send time (docs/protocol.md); seq links it to the frame
        version,
        units.score.astype(np.float32),
        anomalous.astype(np.uint16),
        units.top_code,
        units.top_weight,
    )
    nonfinite = int(np.isinf(values).sum())
    return ScoredFrame(
        frame.lcc_id, frame.seq, frame.timestamp_ns, units.score, anomalous, nonfinite, units, feedback
    )
