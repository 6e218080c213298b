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

It reads one minute at a time in short time slices (``time_slices``) and keeps each frame only as
float32 arrays until its minute is summarised: the embedded server holds a query's whole result
in memory, and one query per pass of up to 10 minutes (120,000 frames at the soak's rate) was
what grew it ~150 MB/min (issue 17). For the same reason the first pass on a database does not
ask the server for the oldest frame (a sorted ``find_one`` loads the whole collection there): it
walks forward from ``first_lookback_s`` (1 day) ago, an empty minute costing 6 empty index ranges
(~4 ms). Frames already older than that when a database is first summarised are not summarised.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from laserguard.storage.frame_documents import column, f32_column
from laserguard.storage.schema import DEFAULT_NAMES, CollectionNames, unit_minutes_id
from laserguard.storage.time_slices import TimeSlicedReader
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


class _ChannelStats:
    """Running per-channel, per-unit sums, counts, minima and maxima (NaN ignored) of the frames
    that carried these channels in this order."""

    def __init__(self, shape: tuple[int, int]) -> None:
        self.total = np.zeros(shape, dtype=np.float64)
        self.count = np.zeros(shape, dtype=np.int64)
        self.low = np.full(shape, np.nan, dtype=np.float32)
        self.high = np.full(shape, np.nan, dtype=np.float32)

    def add(self, values: npt.NDArray[np.float32]) -> None:
        present = ~np.isnan(values)
        self.total += np.where(present, values, 0.0)
        self.count += present
        np.fmin(self.low, values, out=self.low)  # fmin/fmax ignore NaN, like nanmin/nanmax
        np.fmax(self.high, values, out=self.high)


class _UnitMinute:
    """One (lcc, minute, n_units) group: running aggregates, and the first and last frames' fields.
    Memory does not grow with the number of frames."""

    def __init__(self, n_units: int) -> None:
        self.n_units = n_units
        self.n = 0
        self.first_ts: int | None = None
        self.channels: tuple[str, ...] = ()
        self.last_ts: int | None = None
        self.last_values: dict[str, npt.NDArray[np.float32]] = {}
        self.last_setpoint: npt.NDArray[np.float32] | None = None
        self.last_state: npt.NDArray[np.uint8] | None = None
        self.stats: dict[tuple[str, ...], _ChannelStats] = {}
        self.worst: npt.NDArray[np.float32] | None = None
        self.flagged = np.zeros(n_units, dtype=np.int64)

    def add(self, doc: dict[str, Any]) -> None:
        ts = int(doc["ts_ns"])
        names = tuple(doc["values"])
        values = (
            np.stack([column(doc["values"][name]) for name in names])
            if names
            else np.zeros((0, self.n_units), dtype=np.float32)
        )
        self.n += 1
        if self.first_ts is None or ts < self.first_ts:  # ties: the first seen, as a stable sort
            self.first_ts, self.channels = ts, names
        if self.last_ts is None or ts >= self.last_ts:  # ties: the last seen
            self.last_ts = ts
            self.last_values = dict(zip(names, values, strict=True))
            self.last_setpoint = column(doc["setpoint_a"]) if "setpoint_a" in doc else None
            self.last_state = column(doc["state"], "u1") if "state" in doc else None
        stats = self.stats.get(names)
        if stats is None:
            stats = self.stats[names] = _ChannelStats(values.shape)
        stats.add(values)
        if "score" in doc:
            score = column(doc["score"])
            self.worst = score.copy() if self.worst is None else np.fmin(self.worst, score)
            for unit in doc.get("anomalous", []):
                if 0 <= unit < self.n_units:
                    self.flagged[unit] += 1

    def channel_columns(self) -> tuple[npt.NDArray[np.float32], ...]:
        """(mean, min, max, last), each (channels, units) float32, in the first frame's channel
        order; a channel no frame carried is NaN."""
        shape = (len(self.channels), self.n_units)
        total = np.zeros(shape, dtype=np.float64)
        count = np.zeros(shape, dtype=np.int64)
        low = np.full(shape, np.nan, dtype=np.float32)
        high = np.full(shape, np.nan, dtype=np.float32)
        last = np.full(shape, np.nan, dtype=np.float32)
        for c, name in enumerate(self.channels):
            for names, stats in self.stats.items():
                if name in names:
                    i = names.index(name)
                    total[c] += stats.total[i]
                    count[c] += stats.count[i]
                    low[c] = np.fmin(low[c], stats.low[i])
                    high[c] = np.fmax(high[c], stats.high[i])
            if name in self.last_values:
                last[c] = self.last_values[name]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, total / np.maximum(count, 1), np.nan).astype(np.float32)
        return mean, low, high, last


class MinuteSummaries:
    """Collects frame documents (any order, one at a time) and summarises them per unit-minute;
    it keeps running aggregates, not the frames."""

    def __init__(self) -> None:
        self._groups: dict[tuple[int, int, int], _UnitMinute] = {}

    def add(self, doc: dict[str, Any]) -> None:
        minute = int(doc["ts_ns"]) // 1_000_000_000 // MINUTE_S * MINUTE_S
        key = (int(doc["lcc"]), minute, int(doc["n_units"]))
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _UnitMinute(key[2])
        group.add(doc)

    def summaries(self) -> dict[tuple[int, int, int], dict[str, Any]]:
        """Summaries keyed (lcc, unit, minute start epoch s)."""
        out: dict[tuple[int, int, int], dict[str, Any]] = {}
        for (lcc, minute, n_units), group in self._groups.items():
            mean, low, high, last = group.channel_columns()
            worst, setpoints, states = group.worst, group.last_setpoint, group.last_state
            for unit in range(n_units):
                setpoint = float(setpoints[unit]) if setpoints is not None else float("nan")
                out[(lcc, unit, minute)] = {
                    "channels": list(group.channels),
                    "n": group.n,
                    "flagged": int(group.flagged[unit]),
                    "worst": float(worst[unit]) if worst is not None and worst[unit] == worst[unit] else None,
                    "mean": f32_column(mean[:, unit]),
                    "min": f32_column(low[:, unit]),
                    "max": f32_column(high[:, unit]),
                    "last": f32_column(last[:, unit]),
                    "setpoint_a": None if setpoint != setpoint else setpoint,
                    "state": UNIT_STATES[int(states[unit])] if states is not None else None,
                }
        return out


def summarize(frames: list[dict[str, Any]]) -> dict[tuple[int, int, int], dict[str, Any]]:
    """Summaries keyed (lcc, unit, minute start epoch s) of frame documents (any order)."""
    collected = MinuteSummaries()
    for doc in frames:
        collected.add(doc)
    return collected.summaries()


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
    """Summarises closed minutes: per ``run_once`` at most ``max_minutes_per_pass`` minutes with
    frames and ``max_reads_per_pass`` queries (empty minutes cost one each)."""

    def __init__(
        self,
        db: Any,
        names: CollectionNames = DEFAULT_NAMES,
        *,
        grace_s: float = 90.0,
        max_minutes_per_pass: int = 10,
        max_reads_per_pass: int = 10_000,
        first_lookback_s: float = 86_400.0,
        metrics: StoreMetrics | None = None,
        lcc_ids: tuple[int, ...] = (),
        reader: TimeSlicedReader | None = None,
    ) -> None:
        self.db = db
        self.names = names
        self.grace_s = grace_s
        self.max_minutes_per_pass = max_minutes_per_pass
        self.max_reads_per_pass = max_reads_per_pass
        self.first_lookback_s = first_lookback_s
        self.metrics = metrics
        self.reader = reader if reader is not None else TimeSlicedReader()
        # A store of some LCCs (--lcc) summarises only those, with its own watermark: another
        # pair's minutes may still be in that pair's spool.
        self.lcc_filter: dict[str, Any] = {"lcc": {"$in": sorted(lcc_ids)}} if lcc_ids else {}
        self.watermark_id = WATERMARK_ID + (":" + ",".join(map(str, sorted(lcc_ids))) if lcc_ids else "")

    def _start(self, now: dt.datetime) -> dt.datetime:
        state = self.db[self.names.rollup_state].find_one({"_id": self.watermark_id})
        if state is not None:
            return state["done_until"].replace(tzinfo=dt.UTC)  # type: ignore[no-any-return]
        # No watermark yet (a new database, or a new --lcc set): start first_lookback_s ago.
        return floor_minute(now - dt.timedelta(seconds=self.first_lookback_s))

    def _save_watermark(self, done_until: dt.datetime) -> None:
        self.db[self.names.rollup_state].update_one(
            {"_id": self.watermark_id}, {"$set": {"done_until": done_until}}, upsert=True
        )

    def run_once(self, now: dt.datetime, should_stop: Callable[[], bool] = bool) -> int:
        """Summarise the closed minutes since the watermark; returns the unit-minutes written.
        ``should_stop`` is asked between minutes (a first pass walks a day of them)."""
        start = self._start(now)
        end = floor_minute(now - dt.timedelta(seconds=self.grace_s))
        if end <= start:
            return 0
        reads_before = self.reader.reads
        minute, minutes, written, saved = start, 0, 0, start
        while (
            minute < end
            and minutes < self.max_minutes_per_pass
            and self.reader.reads - reads_before < self.max_reads_per_pass
            and not should_stop()
        ):
            following = minute + dt.timedelta(minutes=1)
            collected = MinuteSummaries()
            for doc in self.reader.read(
                self.db[self.names.frames], self.lcc_filter, "ts", minute, following, {"top": 0, "boot": 0}
            ):
                collected.add(doc)
            summaries = collected.summaries()
            if summaries:
                self.db[self.names.unit_minutes].bulk_write(summary_writes(summaries), ordered=False)
                self._save_watermark(following)  # a minute written is never read again
                saved = following
                minutes += 1
                written += len(summaries)
            minute = following
        if minute > saved:
            self._save_watermark(minute)  # past the empty minutes walked since
        if self.metrics is not None:
            self.metrics.summary_minutes.inc(written)
        return written
