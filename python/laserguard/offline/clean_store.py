"""The ``clean_samples`` collection: cleaned raw-log rows, one document per (LCC, unit, time).

Kept apart from the live ``telemetry`` collection (different source, different key). The
``_id`` is "<lcc>:<unit:03>:<epoch ms:013>", so uploading the same rows again inserts nothing
(duplicate-key errors mean "already stored") and one unit's history is one ``_id`` range.
Documents are flat: ``lcc, unit, psu, time`` (BSON date), every channel by name (null when
missing), ``setpoint_a`` (A) and ``state`` (name; both null when unknown), ``fault_type,
severity, label`` and ``source`` (the raw file). Documents stored before the context fields
existed read back with both unknown.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
import pandas as pd

from laserguard.offline.raw_format import CHANNELS
from laserguard.storage.batch_writer import DUPLICATE_KEY

CLEAN_SAMPLES: Final = "clean_samples"
DEFAULT_BATCH_SIZE: Final = 5000
UNIX_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
DOCUMENT_FIELDS: Final = (
    "lcc",
    "unit",
    "psu",
    "time",
    *CHANNELS,
    "setpoint_a",
    "state",
    "fault_type",
    "severity",
    "label",
    "source",
)


def clean_sample_id(lcc: int, unit: int, epoch_ms: int) -> str:
    return f"{lcc}:{unit:03d}:{epoch_ms:013d}"


@dataclass
class UploadOutcome:
    inserted: int = 0
    already_stored: int = 0
    batches: int = 0


def _documents(rows: pd.DataFrame) -> Iterator[dict[str, Any]]:
    lcc = rows["lcc"].to_numpy(dtype=np.int64).tolist()
    unit = rows["unit"].to_numpy(dtype=np.int64).tolist()
    psu = rows["psu"].to_numpy(dtype=np.int64).tolist()
    epoch_ms = rows["epoch_ms"].to_numpy(dtype=np.int64).tolist()
    # NaN (missing reading) is stored as null.
    channels = {
        c: [None if math.isnan(v) else v for v in rows[c].to_numpy(np.float64).tolist()]
        for c in (*CHANNELS, "setpoint_a")
    }
    state = [s if isinstance(s, str) else None for s in rows["state"].tolist()]
    fault_type = rows["fault_type"].astype(str).tolist()
    severity = rows["severity"].to_numpy(dtype=np.float64).tolist()
    label = rows["label"].to_numpy(dtype=np.int64).tolist()
    source = rows["source"].astype(str).tolist()
    for i in range(len(rows)):
        document: dict[str, Any] = {
            "_id": clean_sample_id(lcc[i], unit[i], epoch_ms[i]),
            "lcc": lcc[i],
            "unit": unit[i],
            "psu": psu[i],
            "time": UNIX_EPOCH + timedelta(milliseconds=epoch_ms[i]),  # exact, no float rounding
        }
        for c, column in channels.items():
            document[c] = column[i]
        document["state"] = state[i]
        document.update(fault_type=fault_type[i], severity=severity[i], label=label[i], source=source[i])
        yield document


def upload_clean_rows(db: Any, rows: pd.DataFrame, *, batch_size: int = DEFAULT_BATCH_SIZE) -> UploadOutcome:
    """Insert ``rows`` (from laserguard.offline.cleaning) in journaled, unordered batches."""
    from pymongo.errors import BulkWriteError
    from pymongo.write_concern import WriteConcern

    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    collection = db.get_collection(CLEAN_SAMPLES, write_concern=WriteConcern(w=1, j=True))
    outcome = UploadOutcome()
    if rows.empty:  # every file was rejected
        return outcome
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        try:
            result = collection.insert_many(batch, ordered=False)
            outcome.inserted += len(result.inserted_ids)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            other = [e for e in errors if e.get("code") != DUPLICATE_KEY]
            if other:
                raise RuntimeError(f"{CLEAN_SAMPLES}: the server refused a document: {other[0]}") from exc
            outcome.inserted += int(exc.details.get("nInserted", 0))
            outcome.already_stored += len(errors)
        outcome.batches += 1
        batch.clear()

    for document in _documents(rows):
        batch.append(document)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return outcome


def read_clean_rows(db: Any) -> pd.DataFrame:
    """Every stored clean row as a frame with DOCUMENT_FIELDS columns (in no particular order)."""
    cursor = db[CLEAN_SAMPLES].find({}, {f: 1 for f in DOCUMENT_FIELDS}).batch_size(10_000)
    frame = pd.DataFrame(list(cursor), columns=["_id", *DOCUMENT_FIELDS])
    for c in (*CHANNELS, "setpoint_a"):
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype(np.float64)
    # null, or absent in a document stored before states were recorded: unknown (None).
    frame["state"] = (
        frame["state"].astype(object).where(frame["state"].map(lambda s: isinstance(s, str)), None)
    )
    return frame.drop(columns="_id")
