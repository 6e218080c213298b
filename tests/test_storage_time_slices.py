"""Reading frames in time slices (issue 17): no query's result is large, and nothing changes.

The embedded server holds a query's whole result in memory, so the minute rollup and the raw
history read ``frames`` in index ranges of about ``target_docs`` documents. Against a real
secantusd-py server: the largest result a query returned is bounded, and the summaries and the
history are the same as from one read of everything.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from laserguard.storage.rollup import MinuteRollup, summarize
from laserguard.storage.time_slices import TimeSlicedReader
from laserguard.storage.unit_history import raw_window
from mongo_fixtures import db, mongo_client, mongo_server
from test_storage_retention import NOW, write_frames

__all__ = ["db", "mongo_client", "mongo_server"]  # fixtures used by name


class RecordingReader(TimeSlicedReader):
    """Keeps the number of documents each of its queries returned."""

    def __init__(self, target_docs: int) -> None:
        super().__init__(target_docs)
        self.results: list[int] = []

    def read(
        self,
        collection: Any,
        query: Mapping[str, Any],
        field: str,
        start: dt.datetime,
        end: dt.datetime,
        projection: Mapping[str, Any] | None = None,
    ) -> Any:
        reads, n = self.reads, 0
        for doc in super().read(collection, query, field, start, end, projection):
            if self.reads != reads:  # a new query's result begins
                if n:
                    self.results.append(n)
                reads, n = self.reads, 0
            n += 1
            yield doc
        if n:
            self.results.append(n)


def test_reader_returns_every_document_once_in_bounded_slices(db: Any, tmp_path: Path) -> None:
    start = NOW - dt.timedelta(minutes=10)
    write_frames(db, tmp_path, 1, start, 120, period_s=0.25)  # 30 s at 4 Hz
    write_frames(db, tmp_path, 2, start, 40, period_s=0.75)
    reader = TimeSlicedReader(target_docs=12)
    got = list(reader.read(db.frames, {}, "ts", start, start + dt.timedelta(minutes=1), {"_id": 1}))
    assert sorted(d["_id"] for d in got) == sorted(d["_id"] for d in db.frames.find({}, {"_id": 1}))
    assert reader.reads > 160 // 12
    one_lcc = list(reader.read(db.frames, {"lcc": 2}, "ts", start, NOW, {"lcc": 1}))
    assert len(one_lcc) == 40 and {d["lcc"] for d in one_lcc} == {2}
    with pytest.raises(ValueError, match="target_docs must be at least 1, got 0"):
        TimeSlicedReader(0)


def test_rollup_reads_a_minute_in_slices_and_summarises_as_one_read(db: Any, tmp_path: Path) -> None:
    start = NOW - dt.timedelta(minutes=10)
    write_frames(db, tmp_path, 3, start, 600, period_s=0.2)  # 2 minutes at 5 Hz: 300 frames a minute
    everything = summarize(list(db.frames.find({}, {"top": 0, "boot": 0})))
    reader = RecordingReader(target_docs=25)
    rollup = MinuteRollup(db, grace_s=90, first_lookback_s=3600, reader=reader)
    assert rollup.run_once(NOW, should_stop=lambda: True) == 0  # a stopping store reads nothing
    assert reader.reads == 0
    assert rollup.run_once(NOW) == len(everything) == 2 * 4
    # The first slice (1 s, 5 frames) grows to ~25 frames; none returned many more than that.
    assert max(reader.results) <= 3 * 25, reader.results
    assert sum(reader.results) == 600
    stored = {d["_id"]: d for d in db.unit_minutes.find({})}
    for (lcc, unit, minute), summary in everything.items():
        hour = minute // 3600 * 3600
        doc = stored[f"{lcc}:{unit:03d}:{hour:012d}"]
        kept = doc["m"][f"{(minute - hour) // 60:02d}"]
        # Columns come back as bytes (a Binary of subtype 0 equals no bytes object).
        assert kept == {
            k: bytes(v) if isinstance(v, bytes) else v for k, v in summary.items() if k != "channels"
        }
    assert rollup.run_once(NOW) == 0  # watermark moved on: nothing twice


def test_raw_history_in_slices_is_every_sample_of_the_window(db: Any, tmp_path: Path) -> None:
    start = NOW - dt.timedelta(minutes=5)
    write_frames(db, tmp_path, 4, start, 400, period_s=0.5)
    points = raw_window(db, 4, 2, start, start + dt.timedelta(seconds=150))
    assert [p["seq"] for p in points] == list(range(300))
