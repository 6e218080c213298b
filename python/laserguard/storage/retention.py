"""How long stored telemetry is kept: raw frames ``raw_s`` (7 days), minute summaries ``summary_s``
(2 years), alarms (``anomaly_events``) until deleted.

Where the server has TTL indexes (a real ``mongod``, and the embedded SecantusDB: its TTL monitor
runs every 60 s like mongod's), retention is a TTL index on ``frames.ts`` and
``unit_minutes.hour`` and the server deletes. Otherwise (``mode="deletes"``, or a server that
ignores ``expireAfterSeconds``) the store deletes itself, in bounded chunks per pass
(``enforce``), with the time passed in so tests can move the clock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from laserguard.storage.schema import DEFAULT_NAMES, CollectionNames

DAY_S = 86_400
HOUR_S = 3_600
MODES = ("auto", "ttl", "deletes", "off")


@dataclass(frozen=True)
class RetentionConfig:
    raw_s: float = 7 * DAY_S
    summary_s: float = 2 * 365 * DAY_S
    mode: str = "auto"  # auto: TTL indexes if the server keeps them, else the store's own deletes
    delete_chunk: int = 2_000
    max_chunks_per_pass: int = 10


def _targets(names: CollectionNames, config: RetentionConfig) -> list[tuple[str, str, float]]:
    """(collection, time field, seconds kept). A summary bucket holds an hour: it goes once its
    last minute is older than summary_s. Per-sample documents of earlier versions count as raw."""
    return [
        (names.frames, "ts", config.raw_s),
        (names.telemetry, "ts", config.raw_s),
        (names.unit_minutes, "hour", config.summary_s + HOUR_S),
    ]


def _index_name(field: str) -> str:
    return f"{field}_retention"


def _ensure_index(collection: Any, field: str, expire_s: int | None) -> None:
    """The retention index on ``field``, with ``expire_s`` as its TTL (None: a plain index)."""
    name = _index_name(field)
    existing = collection.index_information().get(name)
    if existing is not None and existing.get("expireAfterSeconds") == expire_s:
        return
    if existing is not None:
        collection.drop_index(name)  # TTL changed or mode switched: rebuilt with the new option
    options: dict[str, Any] = {"name": name}
    if expire_s is not None:
        options["expireAfterSeconds"] = expire_s
    collection.create_index([(field, 1)], **options)


def ttl_kept(db: Any, names: CollectionNames) -> bool:
    """True if the server keeps ``expireAfterSeconds`` on an index (asked on ``frames``)."""
    info = db[names.frames].index_information().get(_index_name("ts"), {})
    return "expireAfterSeconds" in info


def ensure_retention(
    db: Any,
    config: RetentionConfig,
    names: CollectionNames = DEFAULT_NAMES,
    *,
    frames_timeseries: bool = False,
) -> str:
    """Create the retention indexes; returns the mode in force ("ttl", "deletes" or "off").
    A time-series ``frames`` expires by its ``expireAfterSeconds`` option instead of an index."""
    if config.mode not in MODES:
        raise ValueError(f"retention mode {config.mode!r} is not one of {', '.join(MODES)}")
    existing = set(db.list_collection_names())
    use_ttl = config.mode in ("auto", "ttl")
    for collection, field, keep_s in _targets(names, config):
        if collection == names.telemetry and collection not in existing:
            continue  # no per-sample documents of an earlier version here: nothing to create
        expire = int(keep_s) if use_ttl else None
        if collection == names.frames and frames_timeseries:
            _ensure_index(db[collection], field, None)  # the rollup's and the deletes' time range
            if expire is not None:
                db.command("collMod", collection, expireAfterSeconds=expire)
            continue
        _ensure_index(db[collection], field, expire)
    if config.mode == "off":
        return "off"
    if use_ttl and (ttl_kept(db, names) or frames_timeseries):
        return "ttl"
    if config.mode == "ttl":
        raise ValueError(
            "retention mode 'ttl': the server does not keep TTL indexes; use --retention-mode deletes"
        )
    return "deletes"


def enforce(
    db: Any, config: RetentionConfig, now: dt.datetime, names: CollectionNames = DEFAULT_NAMES
) -> dict[str, int]:
    """One bounded pass of the store's own deletes (mode "deletes"): per collection at most
    ``max_chunks_per_pass`` x ``delete_chunk`` documents older than their retention. Returns the
    number deleted per collection; a large backlog takes several passes."""
    deleted: dict[str, int] = {}
    for collection, field, keep_s in _targets(names, config):
        cutoff = now - dt.timedelta(seconds=keep_s)
        count = 0
        for _ in range(config.max_chunks_per_pass):
            ids = [
                d["_id"]
                for d in db[collection].find({field: {"$lt": cutoff}}, {"_id": 1}).limit(config.delete_chunk)
            ]
            if not ids:
                break
            count += int(db[collection].delete_many({"_id": {"$in": ids}}).deleted_count)
        deleted[collection] = count
    return deleted
