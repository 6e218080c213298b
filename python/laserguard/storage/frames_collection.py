"""The ``frames`` collection: a MongoDB time-series collection where the server really makes one.

A frame document is already shaped like a time-series bucket (one LCC's units at one instant),
and on a real ``mongod`` (5.0+) a time-series collection (``timeField`` ``ts``, ``metaField``
``lcc``) adds column compression on top. Two things differ there, and the store handles both:

- a time-series collection has no unique ``_id`` index, so a replayed batch would store a frame
  twice: the writer first asks which of a batch's frames are there (``existing_frame_ids``: one
  query on lcc and the batch's time range, which the bucket index serves) and inserts the rest;
- retention is the collection's ``expireAfterSeconds``, not a TTL index (``retention``).

The embedded SecantusDB accepts the time-series options but stores a plain collection and then
also drops the unique ``_id`` index (measured: a duplicate ``_id`` was accepted). So the store
asks ``listCollections`` what it got, and where the answer is not ``timeseries`` it drops the
new, empty collection and creates a plain one: unique ``_id``, duplicates refused by the server.
"""

from __future__ import annotations

from typing import Any

from laserguard.storage.schema import DEFAULT_NAMES, CollectionNames

MODES = ("auto", "timeseries", "plain")
TIMESERIES_OPTIONS = {"timeField": "ts", "metaField": "lcc", "granularity": "seconds"}


def collection_type(db: Any, name: str) -> str | None:
    for info in db.list_collections(filter={"name": name}):
        kind = str(info.get("type", "collection"))
        if kind == "collection" and "timeseries" in (info.get("options") or {}):
            return "timeseries-ignored"  # the option was accepted but not acted on (SecantusDB)
        return kind
    return None


def ensure_frames_collection(db: Any, mode: str = "auto", names: CollectionNames = DEFAULT_NAMES) -> bool:
    """Create ``frames`` if missing; True if it is a real time-series collection."""
    if mode not in MODES:
        raise ValueError(f"frames collection mode {mode!r} is not one of {', '.join(MODES)}")
    kind = collection_type(db, names.frames)
    if kind is None and mode != "plain":
        db.create_collection(names.frames, timeseries=TIMESERIES_OPTIONS)
        kind = collection_type(db, names.frames)
        if kind != "timeseries":
            # Only dropped while empty: the store's writer waits for this set-up, but another
            # store on the same database may already write (the server then refuses duplicates).
            if db[names.frames].count_documents({}, limit=1):
                raise ValueError(
                    f"collection {names.frames!r} has documents in a time-series collection the server "
                    "ignores (another store wrote while this one set it up); start this store again"
                )
            db.drop_collection(names.frames)
            if mode == "timeseries":
                raise ValueError(
                    "--frames-collection timeseries: this server does not make time-series collections "
                    "(the embedded server stores them as plain collections); use auto or plain"
                )
            kind = None
    if kind is None:
        db.create_collection(names.frames)
        kind = "collection"
    if kind == "timeseries-ignored":
        raise ValueError(
            f"collection {names.frames!r} was created with time-series options the server ignores, so "
            "it has no unique _id; drop it (or rename it) and let the store create it again"
        )
    return kind == "timeseries"


def existing_frame_ids(collection: Any, docs: list[dict[str, Any]]) -> set[str]:
    """Which of these frame documents are stored already (for a collection without a unique _id)."""
    if not docs:
        return set()
    query = {
        "lcc": {"$in": sorted({d["lcc"] for d in docs})},
        "ts": {"$gte": min(d["ts"] for d in docs), "$lte": max(d["ts"] for d in docs)},
        "_id": {"$in": [d["_id"] for d in docs]},
    }
    return {str(d["_id"]) for d in collection.find(query, {"_id": 1})}
