"""The scoring step of `laserguard detect`: telemetry payload in, feedback payload out."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from laserguard.model.forest import ForestModel
from laserguard.wire.codec import decode_telemetry, encode_feedback

TOP_K = 3


@dataclass(frozen=True)
class ScoredFrame:
    lcc_id: int
    boot_id: int
    seq: int
    timestamp_ns: int
    decision: np.ndarray  # float64 per unit, sklearn's decision_function
    anomalous_units: np.ndarray  # int indices where decision < 0
    nonfinite_values: int  # +-inf readings treated as missing (NaN)
    feedback: bytes  # encoded feedback message


def score_frame(model: ForestModel, payload: bytes, top_k: int = TOP_K) -> ScoredFrame:
    """Decode a telemetry frame, score every unit, encode the feedback message.

    Raises laserguard.wire.codec.FrameError (a ValueError) for a malformed frame.
    Top features are computed only for anomalous units (the others carry -1 / 0): the
    attribution walk costs more than scoring and operators only look at flagged units.
    """
    frame = decode_telemetry(payload)
    values = frame.values
    inf_mask = np.isinf(values)
    nonfinite = int(inf_mask.sum())
    if nonfinite:
        # An infinite reading is a sensor fault, not a number: score it as missing, which
        # the model routes like sklearn routes NaN (StandardScaler would refuse inf).
        values = np.where(inf_mask, np.float32(np.nan), values)
    decision = model.decision_function(values)
    anomalous = np.flatnonzero(decision < 0)
    n_units = values.shape[0]
    k = min(top_k, model.n_features)
    top_features = np.full((n_units, k), -1, dtype=np.int16)
    top_weights = np.zeros((n_units, k), dtype=np.float32)
    if anomalous.size:
        idx, weights = model.top_features(values[anomalous], k)
        top_features[anomalous] = idx
        top_weights[anomalous] = weights
    feedback = encode_feedback(
        frame.lcc_id,
        frame.seq,
        time.time_ns(),  # the detector's send time (docs/protocol.md); seq links it to the frame
        model.version,
        decision.astype(np.float32),
        anomalous.astype(np.uint16),
        top_features,
        top_weights,
        boot_id=frame.boot_id,  # echoed with seq: the answer names the LCC start it belongs to
    )
    return ScoredFrame(
        frame.lcc_id, frame.boot_id, frame.seq, frame.timestamp_ns, decision, anomalous, nonfinite, feedback
    )
