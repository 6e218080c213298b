"""Frame documents: one per telemetry frame, every unit's readings as little-endian float32 columns.

Shape (what ``frame_document`` writes, what ``unit_points`` reads)::

    _id: "<lcc>:<boot:016x>:<seq:020>"   lcc, boot, seq, ts (UTC date), ts_ns, n_units, schema
    values:     {channel: Binary(float32 x n_units)}     NaN = missing reading
    setpoint_a: Binary(float32 x n_units)                NaN = unknown setpoint
    state:      Binary(uint8 x n_units)                  codes into codec.UNIT_STATES
    score:      Binary(float32 x n_units)                once the detector's feedback is known
    model_version, anomalous: [unit, ...], top: [{unit, features, weights}, ...] (anomalous units)

Columns rather than one sub-document per unit: a BSON double in an array costs 12-13 bytes with
its type byte and index key, a float32 in a binary column 4, and the wire already carries float32,
so nothing is rounded. That is what makes a unit-sample ~10x smaller than the per-sample
documents of earlier versions (benchmarks/storage_footprint.py). The price: values are not
queryable by the server; readers decode the column (``np.frombuffer``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from bson import Binary

from laserguard.storage.alarms import ns_to_datetime
from laserguard.storage.schema import boot_key, frame_id
from laserguard.wire.codec import UNIT_STATES


def f32_column(values: npt.ArrayLike) -> Binary:
    return Binary(np.ascontiguousarray(values, dtype="<f4").tobytes())


def column(data: bytes, dtype: str = "<f4") -> npt.NDArray[Any]:
    return np.frombuffer(data, dtype=dtype)


def frame_document(
    lcc_id: int,
    boot_id: int,
    seq: int,
    timestamp_ns: int,
    schema_id: int,
    channel_names: tuple[str, ...],
    values: npt.NDArray[np.float32],
    setpoint_a: npt.NDArray[np.float32],
    state: npt.NDArray[np.uint8],
) -> dict[str, Any]:
    columns = np.ascontiguousarray(values.T, dtype="<f4")  # one row per channel
    return {
        "_id": frame_id(lcc_id, boot_id, seq),
        "lcc": lcc_id,
        "boot": boot_key(boot_id),
        "seq": seq,
        "ts": ns_to_datetime(timestamp_ns),
        "ts_ns": timestamp_ns,
        "n_units": int(values.shape[0]),
        "schema": schema_id,
        "values": {name: Binary(columns[i].tobytes()) for i, name in enumerate(channel_names)},
        "setpoint_a": f32_column(setpoint_a),
        "state": Binary(np.ascontiguousarray(state, dtype=np.uint8).tobytes()),
    }


def score_fields(
    model_version: str,
    scores: npt.NDArray[np.float32],
    anomalous: npt.NDArray[np.bool_],
    top_features: npt.NDArray[Any],
    top_weights: npt.NDArray[Any],
) -> dict[str, Any]:
    """The detector's answer for one frame; top features only for the anomalous units."""
    flagged = np.flatnonzero(anomalous).tolist()
    has_top = top_features.ndim == 2
    return {
        "score": f32_column(scores),
        "model_version": model_version,
        "anomalous": flagged,
        "top": [
            {
                "unit": unit,
                "features": top_features[unit].tolist() if has_top and unit < len(top_features) else [],
                "weights": top_weights[unit].tolist() if has_top and unit < len(top_weights) else [],
            }
            for unit in flagged
        ],
    }


def is_frame_document(doc: dict[str, Any]) -> bool:
    return "n_units" in doc


def unit_samples_of(doc: dict[str, Any]) -> int:
    """Unit-samples a stored document holds: n_units for a frame, 1 for a per-sample document."""
    return int(doc.get("n_units", 1))


def unit_points(doc: dict[str, Any], unit: int) -> dict[str, Any] | None:
    """One unit's sample of a frame document, shaped like a per-sample document of earlier versions
    (``ts, ts_ns, lcc, unit, boot, seq, values{}, setpoint_a, state, score, anomalous, ...``);
    None when the frame has no such unit."""
    n_units = int(doc["n_units"])
    if not 0 <= unit < n_units:
        return None
    point: dict[str, Any] = {
        "_id": f"{doc['_id']}:{unit:03d}",
        "lcc": doc["lcc"],
        "unit": unit,
        "boot": doc.get("boot"),
        "seq": doc.get("seq"),
        "ts": doc.get("ts"),
        "ts_ns": doc.get("ts_ns"),
        "values": {name: float(column(data)[unit]) for name, data in (doc.get("values") or {}).items()},
    }
    if "setpoint_a" in doc:
        setpoint = float(column(doc["setpoint_a"])[unit])
        point["setpoint_a"] = None if setpoint != setpoint else setpoint
    if "state" in doc:
        point["state"] = UNIT_STATES[int(column(doc["state"], "u1")[unit])]
    if "score" in doc:
        point["score"] = float(column(doc["score"])[unit])
        point["anomalous"] = unit in doc.get("anomalous", [])
        point["model_version"] = doc.get("model_version")
        for top in doc.get("top", []):
            if top.get("unit") == unit:
                point["top_features"] = top.get("features", [])
                point["top_weights"] = top.get("weights", [])
    return point


def unit_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Every unit's sample of a frame document (``unit_points`` for each unit)."""
    return [p for unit in range(int(doc["n_units"])) if (p := unit_points(doc, unit)) is not None]
