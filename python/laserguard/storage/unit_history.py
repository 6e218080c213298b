"""Reading stored telemetry back: a unit's history and the unit-samples stored.

Readers see one shape whatever wrote it: a unit's sample as the per-sample documents of earlier
versions had it (``ts, values{}, setpoint_a, state, score, anomalous, ...``). Frame documents are
cut to the unit (``frame_documents.unit_points``); per-sample documents of the ``telemetry``
collection (earlier versions; no migration needed) are read as they are. Long windows come from
the minute summaries (``rollup``): one point per minute with the channel means, the worst score,
and ``anomalous`` when any sample of the minute was flagged.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from laserguard.storage.frame_documents import column, unit_points
from laserguard.storage.schema import (
    DEFAULT_NAMES,
    CollectionNames,
    boot_key,
    unit_history_filter,
)
from laserguard.storage.time_slices import TimeSlicedReader

# Windows up to 10 min are read from raw frames (6,000 frames of the LCC), longer ones from the
# minute summaries (an hour of raw frames would be 36,000 documents for one unit's plot).
RAW_WINDOW_S = 600


def stored_unit_samples(db: Any, names: CollectionNames = DEFAULT_NAMES) -> int:
    """Unit-samples stored: the units of every frame document plus per-sample documents."""
    total = list(db[names.frames].aggregate([{"$group": {"_id": None, "n": {"$sum": "$n_units"}}}]))
    legacy = db[names.telemetry].count_documents({}) if names.telemetry in db.list_collection_names() else 0
    return (int(total[0]["n"]) if total else 0) + int(legacy)


def duplicated_frames(db: Any, names: CollectionNames = DEFAULT_NAMES) -> int:
    """(lcc, boot, seq) keys stored more than once (0 unless an id scheme broke)."""
    found = list(
        db[names.frames].aggregate(
            [
                {"$group": {"_id": {"l": "$lcc", "b": "$boot", "s": "$seq"}, "n": {"$sum": 1}}},
                {"$match": {"n": {"$gt": 1}}},
                {"$count": "keys"},
            ]
        )
    )
    return int(found[0]["keys"]) if found else 0


def recent_samples(
    db: Any,
    lcc: int,
    unit: int,
    boot_id: int,
    first_seq: int,
    end_seq: int,
    names: CollectionNames = DEFAULT_NAMES,
) -> list[dict[str, Any]]:
    """The unit's samples of one boot with first_seq <= seq < end_seq, oldest first: one range of
    the ``(lcc, boot, seq)`` index of ``frames``, else (data of an earlier version) the unit's
    _id range of the per-sample ``telemetry``."""
    frames = db[names.frames].find(
        {"lcc": lcc, "boot": boot_key(boot_id), "seq": {"$gte": first_seq, "$lt": end_seq}}
    )
    points = [p for doc in frames if (p := unit_points(doc, unit)) is not None]
    if not points and names.telemetry in db.list_collection_names():
        points = list(
            db[names.telemetry].find(unit_history_filter(lcc, unit, first_seq, end_seq, boot_id=boot_id))
        )
    points.sort(key=lambda p: (str(p.get("boot")), int(p.get("seq", 0))))
    return points


def raw_window(
    db: Any, lcc: int, unit: int, start: dt.datetime, end: dt.datetime, names: CollectionNames = DEFAULT_NAMES
) -> list[dict[str, Any]]:
    """The unit's raw samples with start <= ts < end across boots, oldest first (index (lcc, ts);
    per-sample documents of an earlier version: the unit's _id range, filtered by time)."""
    window = {"$gte": start, "$lt": end}
    # In time slices: the embedded server holds a query's whole result in memory (time_slices).
    frames = TimeSlicedReader().read(db[names.frames], {"lcc": lcc}, "ts", start, end)
    points = [p for doc in frames if (p := unit_points(doc, unit)) is not None]
    if names.telemetry in db.list_collection_names():
        prefix = f"{lcc}:{unit:03d}:"
        points += list(
            db[names.telemetry].find({"_id": {"$gte": prefix, "$lt": f"{lcc}:{unit:03d};"}, "ts": window})
        )
    points.sort(key=lambda p: int(p.get("ts_ns") or 0))
    return points


def summary_window(
    db: Any,
    lcc: int,
    unit: int,
    start: dt.datetime,
    end: dt.datetime,
    names: CollectionNames = DEFAULT_NAMES,
    *,
    detail: bool = False,
) -> list[dict[str, Any]]:
    """One point per summarised minute with start <= minute < end, oldest first: ``ts``, ``values``
    (channel means), ``score`` (the minute's worst), ``anomalous`` (any sample flagged),
    ``flagged``, ``n``, ``setpoint_a``, ``state``; with ``detail`` also ``min``/``max``/``last``
    per channel (30 days are 43,200 points: building those dicts too would take ~1 s more)."""
    first_hour = dt.datetime.fromtimestamp(int(start.timestamp()) // 3600 * 3600, dt.UTC)
    # The (lcc, unit, hour) index, not an _id range: SecantusDB scans the whole collection for
    # an _id range (measured: 6 s for 1 h of one unit among 23,000 unit-hours).
    docs = db[names.unit_minutes].find({"lcc": lcc, "unit": unit, "hour": {"$gte": first_hour, "$lte": end}})
    start_s, end_s = start.timestamp(), end.timestamp()
    points: list[dict[str, Any]] = []
    for doc in docs:
        hour = int(doc["hour"].replace(tzinfo=dt.UTC).timestamp())
        channels = doc.get("channels", [])
        minutes = doc.get("m") or {}
        keys = [k for k in sorted(minutes) if start_s <= hour + int(k) * 60 < end_s]
        if not keys:
            continue
        # All of the hour's means in one decode: per-minute numpy calls dominated the read.
        means = column(b"".join(minutes[k]["mean"] for k in keys)).reshape(len(keys), -1).tolist()
        for key, mean in zip(keys, means, strict=True):
            minute = minutes[key]
            flagged = int(minute.get("flagged", 0))
            point = {
                "ts": dt.datetime.fromtimestamp(hour + int(key) * 60, dt.UTC),
                "values": dict(zip(channels, mean, strict=False)),
                "score": minute.get("worst"),
                "anomalous": flagged > 0,
                "flagged": flagged,
                "n": int(minute.get("n", 0)),
                "setpoint_a": minute.get("setpoint_a"),
                "state": minute.get("state"),
            }
            if detail:
                for name in ("min", "max", "last"):
                    point[name] = dict(zip(channels, column(minute[name]).tolist(), strict=False))
            points.append(point)
    points.sort(key=lambda p: p["ts"])
    return points


def unit_history(
    db: Any,
    lcc: int,
    unit: int,
    window_s: float,
    now: dt.datetime | None = None,
    *,
    raw_window_s: float = RAW_WINDOW_S,
    names: CollectionNames = DEFAULT_NAMES,
) -> list[dict[str, Any]]:
    """The unit's last ``window_s``: raw samples when the window is at most ``raw_window_s``, else
    minute summaries (raw frames are kept for days, summaries for years)."""
    end = now if now is not None else dt.datetime.now(dt.UTC)
    start = end - dt.timedelta(seconds=window_s)
    if window_s <= raw_window_s:
        return raw_window(db, lcc, unit, start, end, names)
    return summary_window(db, lcc, unit, start, end, names)
