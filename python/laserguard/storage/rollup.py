"""Per unit per minute summaries of the raw frames, kept far longer than the frames themselves.

A summary of one unit's minute: ``n`` samples, per channel ``mean``, ``min``, ``max`` and
``last`` (float32 columns in the order of ``channels``), ``flagged`` (samples the detector called
anomalous), ``worst`` (the lowest score: scores below 0 are anomalous; None without scores), and
the last ``setpoint_a`` and ``state``. They are stored per unit per hour, one document holding the
hour's minutes under ``m.<MM>`` (``_id`` "<lcc>:<unit:03>:<hour epoch s:012>"): a unit's 30 days
are 720 documents in one _id range instead of 43,200.

The rollup reads closed minutes back from ``frames`` (after ``grace_s``, and only while nothing
waits in the spool), so what it summarises is what was stored, whoever stored it, and running it
twice writes the same thing. A watermark in ``rollup_state`` says how far it got. Frames that
reach the database after their minute was summarised (an LCC clock far behind) are not in it.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import numpy as np

from laserguard.storage.frame_documents import column, f32_column
from laserguard.storage.schema import DEFAULT_NAMES, CollectionNames, unit_minutes_id
from laserguard.wire.codec import UNIT_STATES

if TYPE_CHECKING:
    from laserguard.storage.metrics import StoreMetrics

MINUTE_S = 60
WATERMARK_ID = "unit_minutes"


def floor_minute(when: dt.datetime) -> dt.datetime:
    return when.replace(second=0, microsecond=0)


def _epoch_s(when: dt.datetime) -> int:
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp())


def summarize(frames: list[dict[str, Any]]) -> dict[tuple[int, int, int], dict[str, Any]]:
    """Summaries keyed (lcc, unit, minute start epoch s) of frame documents (any order)."""
    groups: dict[tuple[int, int, int], list[dict[str, Any]]] = defaultdict(list)
    for doc in frames:
        minute = int(doc["ts_ns"]) // 1_000_000_000 // MINUTE_S * MINUTE_S
        groups[(int(doc["lcc"]), minute, int(doc["n_units"]))].append(doc)
    out: dict[tuple[int, int, int], dict[str, Any]] = {}
    for (lcc, minute, n_units), docs in groups.items():
        docs.sort(key=lambda d: int(d["ts_ns"]))
        channels = list(docs[0]["values"])
        # (frames, channels, units); a channel missing from a frame is NaN
        values = np.full((len(docs), len(channels), n_units), np.nan, dtype=np.float32)
        for i, doc in enumerate(docs):
            for c, name in enumerate(channels):
                data = doc["values"].get(name)
                if data is not None:
                    values[i, c] = column(data)
        scored = [d for d in docs if "score" in d]
        scores = np.stack([column(d["score"]) for d in scored]) if scored else None
        flagged = np.zeros(n_units, dtype=np.int64)
        for doc in scored:
            for unit in doc.get("anomalous", []):
                if 0 <= unit < n_units:
                    flagged[unit] += 1
        last = docs[-1]
        setpoints = column(last["setpoint_a"]) if "setpoint_a" in last else None
        states = column(last["state"], "u1") if "state" in last else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN channels stay NaN
            mean, low, high = np.nanmean(values, 0), np.nanmin(values, 0), np.nanmax(values, 0)
            worst = np.nanmin(scores, 0) if scores is not None else None
        for unit in range(n_units):
            setpoint = float(setpoints[unit]) if setpoints is not None else float("nan")
            out[(lcc, unit, minute)] = {
                "channels": channels,
                "n": len(docs),
                "flagged": int(flagged[unit]),
                "worst": float(worst[unit]) if worst is not None and worst[unit] == worst[unit] else None,
                "mean": f32_column(mean[:, unit]),
                "min": f32_column(low[:, unit]),
                "max": f32_column(high[:, unit]),
                "last": f32_column(values[-1, :, unit]),
                "setpoint_a": None if setpoint != setpoint else setpoint,
                "state": UNIT_STATES[int(states[unit])] if states is not None else None,
            }
    return out


def summary_writes(summaries: dict[tuple[int, int, int], dict[str, Any]]) -> list[Any]:
    """One upsert per unit-hour, setting that hour's minutes (idempotent)."""
    from pymongo import UpdateOne

    per_hour: dict[tuple[int, int, int], dict[str, Any]] = defaultdict(dict)
    for (lcc, unit, minute), summary in summaries.items():
        hour = minute // 3600 * 3600
        fields = per_hour[(lcc, unit, hour)]
        fields["channels"] = summary["channels"]
        fields[f"m.{(minute - hour) // MINUTE_S:02d}"] = {k: v for k, v in summary.items() if k != "channels"}
    return [
        UpdateOne(
            {"_id": unit_minutes_id(lcc, unit, hour)},
            {
                "$set": {
                    "lcc": lcc,
                    "unit": unit,
                    "hour": dt.datetime.fromtimestamp(hour, dt.UTC),
                    **fields,
                }
            },
            upsert=True,
        )
        for (lcc, unit, hour), fields in per_hour.items()
    ]


class MinuteRollup:
    """Summarises closed minutes, at most ``max_minutes_per_pass`` per ``run_once``."""

    def __init__(
        self,
        db: Any,
        names: CollectionNames = DEFAULT_NAMES,
        *,
        grace_s: float = 90.0,
        max_minutes_per_pass: int = 10,
        metrics: StoreMetrics | None = None,
        lcc_ids: tuple[int, ...] = (),
    ) -> None:
        self.db = db
        self.names = names
        self.grace_s = grace_s
        self.max_minutes_per_pass = max_minutes_per_pass
        self.metrics = metrics
        # A store of some LCCs (--lcc) summarises only those, with its own watermark: another
        # pair's minutes may still be in that pair's spool.
        self.lcc_filter: dict[str, Any] = {"lcc": {"$in": sorted(lcc_ids)}} if lcc_ids else {}
        self.watermark_id = WATERMARK_ID + (":" + ",".join(map(str, sorted(lcc_ids))) if lcc_ids else "")

    def _start(self) -> dt.datetime | None:
        state = self.db[self.names.rollup_state].find_one({"_id": self.watermark_id})
        if state is not None:
            return state["done_until"].replace(tzinfo=dt.UTC)  # type: ignore[no-any-return]
        oldest = self.db[self.names.frames].find_one(self.lcc_filter, {"ts": 1}, sort=[("ts", 1)])
        return None if oldest is None else floor_minute(oldest["ts"].replace(tzinfo=dt.UTC))

    def run_once(self, now: dt.datetime) -> int:
        """Summarise the closed minutes since the watermark; returns the unit-minutes written."""
        start = self._start()
        end = floor_minute(now - dt.timedelta(seconds=self.grace_s))
        if start is None or end <= start:
            return 0
        stop = min(end, start + dt.timedelta(minutes=self.max_minutes_per_pass))
        frames = list(
            self.db[self.names.frames].find(
                {**self.lcc_filter, "ts": {"$gte": start, "$lt": stop}}, {"top": 0, "boot": 0}
            )
        )
        summaries = summarize(frames)
        writes = summary_writes(summaries)
        if writes:
            self.db[self.names.unit_minutes].bulk_write(writes, ordered=False)
        self.db[self.names.rollup_state].update_one(
            {"_id": self.watermark_id}, {"$set": {"done_until": stop}}, upsert=True
        )
        if self.metrics is not None:
            self.metrics.summary_minutes.inc(len(summaries))
        return len(summaries)
