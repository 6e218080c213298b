"""Telemetry frames and anomaly feedback on the wire (design §4, docs/protocol.md).

The encoders and decoders are the C++ ones ``lcc-sim`` uses, so the two sides cannot drift
apart. Every decoder validates the payload and raises :class:`FrameError`, whose ``reason``
is a short code (``"bad_magic"``, ``"truncated"``, ...) meant for a metric label.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

from laserguard import _core

if TYPE_CHECKING:

    class FrameError(ValueError):
        """A payload that is not a valid frame; ``reason`` is one of FRAME_ERROR_REASONS."""

        reason: str

else:
    FrameError = _core.FrameError

# Every value FrameError.reason can take (stable: services use them as metric labels).
FRAME_ERROR_REASONS: Final[tuple[str, ...]] = tuple(_core.FRAME_ERROR_REASONS)

# Column order of schema 1 (design §3); a frame's values[:, i] is channel CHANNELS[i].
CHANNELS: Final[tuple[str, ...]] = tuple(_core.CHANNELS)
SCHEMA_LASER_V1: Final = 1
# Telemetry version 3 carries each unit's setpoint and state; the feedback layout is unchanged.
TELEMETRY_VERSION: Final[int] = int(_core.TELEMETRY_VERSION)
FEEDBACK_VERSION: Final[int] = int(_core.FEEDBACK_VERSION)
# Unit state names by wire code: a frame's state[u] == 2 means UNIT_STATES[2] == "on".
UNIT_STATES: Final[tuple[str, ...]] = tuple(_core.UNIT_STATES)
STATE_ON: Final = 2  # what an encoder sends when the caller gives no states

Float32Array = npt.NDArray[np.float32]

__all__ = [
    "CHANNELS",
    "FEEDBACK_VERSION",
    "FRAME_ERROR_REASONS",
    "SCHEMA_LASER_V1",
    "STATE_ON",
    "TELEMETRY_VERSION",
    "UNIT_STATES",
    "Feedback",
    "FrameError",
    "TelemetryFrame",
    "decode_feedback",
    "decode_telemetry",
    "encode_feedback",
    "encode_telemetry",
    "feedback_topic",
    "new_boot_id",
    "state_codes",
    "telemetry_topic",
]


@dataclass(frozen=True, slots=True)
class TelemetryFrame:
    """One LCC's units at one instant: ``values`` is (n_units, n_features) float32.

    ``boot_id`` is chosen by the LCC at each start and ``seq`` restarts at 0 with it, so a frame
    is named by (lcc_id, boot_id, seq). ``setpoint_a`` (float32 (n_units,), A, NaN = unknown) and
    ``state`` (uint8 (n_units,), codes into UNIT_STATES) are each unit's operating context.
    """

    lcc_id: int
    boot_id: int
    seq: int
    timestamp_ns: int
    schema_id: int
    values: Float32Array
    setpoint_a: Float32Array
    state: npt.NDArray[np.uint8]

    @property
    def n_units(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.values.shape[1])


@dataclass(frozen=True, slots=True)
class Feedback:
    """The detector's answer to one telemetry frame (``boot_id`` and ``seq`` echo the frame's)."""

    lcc_id: int
    boot_id: int
    seq: int
    timestamp_ns: int
    model_version: str
    n_features: int
    scores: Float32Array  # (n_units,) decision function; < 0 means anomalous
    anomalous_units: npt.NDArray[np.uint32]  # strictly increasing unit indices
    top_features: npt.NDArray[np.int16]  # (n_units, K) feature index, -1 = empty slot
    top_weights: Float32Array  # (n_units, K) contribution of that feature


def _require_dtype(name: str, array: npt.NDArray[np.generic], dtype: type[np.generic], ndim: int) -> None:
    if array.dtype != np.dtype(dtype):
        raise TypeError(f"{name} must be {np.dtype(dtype).name}, got {array.dtype}")
    if array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {array.shape}")


def _require_boot_id(boot_id: int) -> None:
    if isinstance(boot_id, bool) or not isinstance(boot_id, int | np.integer):
        raise TypeError(f"boot_id must be an int, got {type(boot_id).__name__}")
    if not 0 <= int(boot_id) < 2**64:
        raise ValueError(f"boot_id {boot_id} is outside 0..2**64-1")


def state_codes(states: npt.ArrayLike, n_units: int) -> npt.NDArray[np.uint8]:
    """Wire codes (uint8 (n_units,)) for unit states given as names ("on") or codes (2).

    Raises ValueError naming the first unknown name or out-of-range code."""
    array = np.asarray(states)
    if array.shape != (n_units,):
        raise ValueError(f"state must have one entry per unit ({n_units}), got shape {array.shape}")
    if array.dtype.kind in "USO":
        codes = np.empty(n_units, dtype=np.uint8)
        for i, name in enumerate(array.tolist()):
            if name not in UNIT_STATES:
                raise ValueError(f"unit {i} has state {name!r}; known states are {', '.join(UNIT_STATES)}")
            codes[i] = UNIT_STATES.index(name)
        return codes
    if array.dtype.kind not in "iu":
        raise TypeError(f"state must be state names or integer codes, got {array.dtype}")
    if array.dtype == np.uint8 and (n_units == 0 or int(array.max()) < len(UNIT_STATES)):
        return array  # already wire codes (a decoded frame's .state): one check, no copy
    bad = np.flatnonzero((array < 0) | (array >= len(UNIT_STATES)))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"unit {i} has state code {int(array[i])}; valid codes are 0..{len(UNIT_STATES) - 1}"
        )
    return array.astype(np.uint8)


def new_boot_id() -> int:
    """A random 64-bit boot id for one start of a sender (as lcc-sim draws one per start)."""
    return secrets.randbits(64)


def encode_telemetry(
    lcc_id: int,
    seq: int,
    timestamp_ns: int,
    values: Float32Array,
    schema_id: int = SCHEMA_LASER_V1,
    *,
    boot_id: int,
    setpoint_a: npt.ArrayLike | None = None,
    state: npt.ArrayLike | None = None,
) -> bytes:
    """Encode one frame; ``values`` is a float32 (n_units, n_features) array. ``boot_id`` (0..2**64-1)
    names this start of the LCC (required: a sender that restarts its seq must change it).

    ``setpoint_a`` is each unit's commanded drive current in A (any real array of n_units; NaN =
    unknown) and ``state`` each unit's state as names or codes (see UNIT_STATES). None sends
    NaN setpoints / every unit "on", which is what a sender that does not know them should say."""
    values = np.asarray(values)
    _require_dtype("values", values, np.float32, 2)
    _require_boot_id(boot_id)
    n_units = values.shape[0]
    if setpoint_a is None:
        setpoints = np.full(n_units, np.nan, dtype=np.float32)
    else:
        raw = np.asarray(setpoint_a)
        if raw.dtype.kind not in "fiu":
            raise TypeError(f"setpoint_a must be real numbers, got {raw.dtype}")
        if raw.shape != (n_units,):
            raise ValueError(f"setpoint_a must have one entry per unit ({n_units}), got shape {raw.shape}")
        setpoints = raw.astype(np.float32)
    codes = np.full(n_units, STATE_ON, dtype=np.uint8) if state is None else state_codes(state, n_units)
    payload: bytes = _core.encode_telemetry(
        lcc_id, boot_id, seq, timestamp_ns, values, setpoints, codes, schema_id
    )
    return payload


def decode_telemetry(payload: bytes | bytearray | memoryview) -> TelemetryFrame:
    """Validate and decode a telemetry payload (each array copied once, into a new array)."""
    return TelemetryFrame(*_core.decode_telemetry(payload))


def encode_feedback(
    lcc_id: int,
    seq: int,
    timestamp_ns: int,
    model_version: str,
    scores: Float32Array,
    anomalous_units: npt.ArrayLike,
    top_features: npt.NDArray[np.int16],
    top_weights: Float32Array,
    n_features: int = len(CHANNELS),
    *,
    boot_id: int,
) -> bytes:
    """Encode the feedback for one frame. ``anomalous_units`` are unit indices (any int dtype);
    ``boot_id`` echoes the frame's (required, so an answer can never match another boot's frame)."""
    _require_boot_id(boot_id)
    scores = np.asarray(scores)
    top_features = np.asarray(top_features)
    top_weights = np.asarray(top_weights)
    _require_dtype("scores", scores, np.float32, 1)
    _require_dtype("top_features", top_features, np.int16, 2)
    _require_dtype("top_weights", top_weights, np.float32, 2)
    units = np.asarray(anomalous_units)
    if units.ndim != 1 or (units.size and units.dtype.kind not in "iu"):
        raise TypeError(f"anomalous_units must be a 1-D integer array, got {units.dtype} shape {units.shape}")
    if units.size and (int(units.min()) < 0 or int(units.max()) >= scores.shape[0]):
        bad = int(units.min()) if int(units.min()) < 0 else int(units.max())
        raise ValueError(f"anomalous unit {bad} is outside [0, {scores.shape[0]})")
    if top_features.shape != top_weights.shape or top_features.shape[0] != scores.shape[0]:
        raise ValueError(
            f"top_features {top_features.shape} and top_weights {top_weights.shape} must both be "
            f"({scores.shape[0]}, K)"
        )
    payload: bytes = _core.encode_feedback(
        lcc_id,
        boot_id,
        seq,
        timestamp_ns,
        model_version,
        scores,
        units.astype(np.uint32),
        top_features,
        top_weights,
        n_features,
    )
    return payload


def decode_feedback(payload: bytes | bytearray | memoryview) -> Feedback:
    """Validate and decode a feedback payload."""
    return Feedback(*_core.decode_feedback(payload))


def telemetry_topic(lcc_id: int) -> bytes:
    """ZMQ topic of an LCC's telemetry: ``b"lcc.<id>.telemetry"``."""
    topic: bytes = _core.telemetry_topic(lcc_id)
    return topic


def feedback_topic(lcc_id: int) -> bytes:
    """ZMQ topic of the anomaly feedback for an LCC: ``b"lcc.<id>.anomaly"``."""
    topic: bytes = _core.feedback_topic(lcc_id)
    return topic
