"""How long stored telemetry is kept: raw frames ``raw_s`` (7 days), minute summaries ``summary_s``
(2 years), alarms (``anomaly_events``) until deleted.

On a real ``mongod`` retention is a TTL index on ``frames.ts`` and ``unit_minutes.hour`` and the
server deletes. Otherwise (``mode="deletes"``, a server that ignores ``expireAfterSeconds``, and by
default the embedded SecantusDB) the store deletes itself, in bounded chunks per pass
(``enforce``: an index range on the time field), with the time passed in so tests can move the clock.

Not TTL on SecantusDB although it keeps TTL indexes: its TTL monitor (every 60 s) reads every
document of a collection with a TTL index into one list, under the server's global lock, instead
of walking the index (``Storage.prune_ttl`` in 0.7.0b3). On ``frames`` that is the whole raw
history each minute: measured on 100,000 idle 2.2 KB documents, RSS 263 -> 627 MB and a 1-document
insert blocked 3.7 s; in the soak the server grew 148 MB/min (docs/benchmarks.md, issue 17).
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


def ttl_monitor_scans_collections(db: Any) -> bool:
    """True for the embedded SecantusDB (``buildInfo`` has ``secantusVersion``), whose TTL monitor
    reads whole collections into memory every minute (module docstring): auto avoids TTL there."""
    return "secantusVersion" in db.client.server_info()


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
    use_ttl = config.mode == "ttl" or (config.mode == "auto" and not ttl_monitor_scans_collections(db))
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
