"""A genuine telemetry frame of the previous protocol version (2), built byte by byte.

Version 2 is version 3 without the per-unit setpoint and state after the values. Tests send it
to live services to check that a not-upgraded LCC is refused and counted, not half-decoded.
"""

from __future__ import annotations

import struct

import numpy as np


def encode_telemetry_v2(lcc_id: int, boot_id: int, seq: int, timestamp_ns: int, values: np.ndarray) -> bytes:
    """The version-2 layout of docs/protocol.md (48-byte header, then the float32 values)."""
    n_units, n_features = values.shape
    header = struct.pack(
        "<4sHHIIQQqII", b"LGTM", 2, 1, lcc_id, 0, boot_id, seq, timestamp_ns, n_units, n_features
    )
    return header + np.ascontiguousarray(values, dtype="<f4").tobytes()
