"""What the store wrote, one unit-sample at a time: frame documents cut to each unit
(``frame_documents.unit_points``), so tests check unit-samples whatever the document shape."""

from __future__ import annotations

from typing import Any

from laserguard.storage.frame_documents import unit_points, unit_rows
from laserguard.storage.schema import frame_id
from laserguard.storage.unit_history import stored_unit_samples


def unit_sample_count(db: Any) -> int:
    return stored_unit_samples(db)


def all_samples(db: Any, query: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return [row for doc in db.frames.find(query or {}) for row in unit_rows(doc)]


def stored_sample(db: Any, lcc: int, seq: int, unit: int, *, boot_id: int = 0) -> dict[str, Any] | None:
    doc = db.frames.find_one({"_id": frame_id(lcc, boot_id, seq)})
    return None if doc is None else unit_points(doc, unit)
