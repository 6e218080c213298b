"""Retention, minute summaries and old per-sample documents against a real secantusd-py server.

The clock is injected: frames carry sender timestamps days in the past, and the rollup and the
store's own deletes are given ``now``. Only the TTL test waits for the server's own clock.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from laserguard.sim.recording import read_collection
from laserguard.storage.batch_writer import BatchWriter
from laserguard.storage.retention import DAY_S, RetentionConfig, enforce, ensure_retention
from laserguard.storage.rollup import MinuteRollup
from laserguard.storage.schema import CollectionNames, boot_key, ensure_indexes, telemetry_id
from laserguard.storage.spool import WriteSpool
from laserguard.storage.telemetry_store import TelemetryStore
from laserguard.storage.unit_history import recent_samples, stored_unit_samples, summary_window, unit_history
from mongo_fixtures import CHANNELS, db, mongo_client, mongo_server

__all__ = ["db", "mongo_client", "mongo_server"]  # fixtures used by name

N_UNITS = 4
NOW = dt.datetime(2026, 12, 6, 12, 0, 0, tzinfo=dt.UTC)


def ns(when: dt.datetime) -> int:
    return int(when.timestamp()) * 1_000_000_000


def write_frames(
    db: Any, tmp_path: Path, lcc: int, start: dt.datetime, n: int, *, period_s: float = 1.0, boot: int = 0
) -> list[np.ndarray]:
    """n frames of N_UNITS units from ``start`` every ``period_s``, with scores (unit 1 flagged on
    even seq, scores -seq/1000 for unit 1); returns the values sent."""
    ensure_indexes(db)
    store = TelemetryStore(CHANNELS, latest_interval_s=0.0)
    writer = BatchWriter(db, WriteSpool(tmp_path / f"spool-{lcc}-{boot}"))
    sent = []
    for seq in range(n):
        values = (
            np.random.default_rng(seq + 1000 * lcc)
            .normal(1.0, 0.1, (N_UNITS, len(CHANNELS)))
            .astype(np.float32)
        )
        ts = ns(start) + int(seq * period_s * 1e9)
        store.add_telemetry(lcc, seq, ts, values, boot_id=boot, setpoint_a=np.full(N_UNITS, 1.5), now=0.0)
        scores = np.full(N_UNITS, 0.1, dtype=np.float32)
        scores[1] = -seq / 1000
        flagged = np.array([1] if seq % 2 == 0 else [], dtype=np.int64)
        top = np.zeros((N_UNITS, 2), dtype=np.int16)
        store.add_feedback(
            lcc, seq, ts, "m1", scores, flagged, top, top.astype(np.float32), boot_id=boot, now=0.0
        )
        sent.append(values)
    batch = store.take_batch(now=1.0, flush_all=True)
    assert batch is not None
    writer.write(batch)
    return sent


def test_minute_summaries_hold_mean_min_max_last_flagged_and_worst_score(db: Any, tmp_path: Path) -> None:
    start = NOW - dt.timedelta(minutes=10)
    sent = np.stack(write_frames(db, tmp_path, 3, start, 150))  # 2.5 minutes at 1 Hz
    rollup = MinuteRollup(db, grace_s=90, first_lookback_s=3600)
    assert rollup.run_once(start + dt.timedelta(seconds=100)) == 0  # minute 0 not closed + grace yet
    written = rollup.run_once(NOW)
    assert written == 3 * N_UNITS  # minutes 0, 1 and the half minute 2
    assert rollup.run_once(NOW) == 0  # the watermark moved: nothing twice
    # A store of other LCCs (--lcc 4) has its own watermark and summarises only its LCCs.
    assert MinuteRollup(db, grace_s=90, lcc_ids=(4,), first_lookback_s=3600).run_once(NOW) == 0
    assert MinuteRollup(db, grace_s=90, lcc_ids=(3, 4), first_lookback_s=3600).run_once(NOW) == 3 * N_UNITS
    points = summary_window(db, 3, 1, NOW - dt.timedelta(minutes=20), NOW, detail=True)
    assert [p["values"] for p in points] == [
        p["values"] for p in unit_history(db, 3, 1, 20 * 60, NOW, raw_window_s=60)
    ]
    assert [p["ts"] for p in points] == [start + dt.timedelta(minutes=m) for m in range(3)]
    for minute, point in enumerate(points):
        rows = sent[minute * 60 : (minute + 1) * 60, 1, :]  # unit 1, (samples, channels)
        assert point["n"] == len(rows)
        for c, name in enumerate(CHANNELS):
            assert point["values"][name] == pytest.approx(float(rows[:, c].mean()), rel=1e-6)
            assert point["min"][name] == float(rows[:, c].min())
            assert point["max"][name] == float(rows[:, c].max())
            assert point["last"][name] == float(rows[-1, c])
        seqs = range(minute * 60, minute * 60 + len(rows))
        assert point["flagged"] == sum(1 for s in seqs if s % 2 == 0)
        assert point["score"] == pytest.approx(-max(seqs) / 1000)  # the worst (lowest) score
        assert point["setpoint_a"] == 1.5 and point["state"] == "on"
    healthy = unit_history(db, 3, 0, 20 * 60, NOW, raw_window_s=60)
    assert [p["flagged"] for p in healthy] == [0, 0, 0] and healthy[0]["score"] == pytest.approx(0.1)


def test_store_deletes_in_bounded_chunks_by_an_injected_clock_and_keeps_alarms(
    db: Any, tmp_path: Path
) -> None:
    config = RetentionConfig(
        raw_s=7 * DAY_S, summary_s=30 * DAY_S, mode="deletes", delete_chunk=5, max_chunks_per_pass=2
    )
    assert ensure_retention(db, config) == "deletes"
    assert "expireAfterSeconds" not in db.frames.index_information()["ts_retention"]
    write_frames(db, tmp_path, 1, NOW - dt.timedelta(days=8), 25, boot=1)  # past raw retention
    write_frames(db, tmp_path, 1, NOW - dt.timedelta(days=6), 7, boot=2)  # within it
    MinuteRollup(db, grace_s=0, max_minutes_per_pass=100_000, first_lookback_s=2 * 3600).run_once(
        NOW - dt.timedelta(days=7, hours=23)
    )
    db.unit_minutes.insert_one({"_id": "1:000:old", "lcc": 1, "unit": 0, "hour": NOW - dt.timedelta(days=40)})
    db.anomaly_events.insert_one(
        {"_id": "1:1:old", "state": "cleared", "raised_at": NOW - dt.timedelta(days=400)}
    )
    summaries = db.unit_minutes.count_documents({})
    first = enforce(db, config, NOW)
    assert first["frames"] == 10  # bounded: 2 chunks of 5 per pass
    passes = 1
    while enforce(db, config, NOW)["frames"]:
        passes += 1
    assert passes == 3
    assert db.frames.count_documents({}) == 7
    assert {d["boot"] for d in db.frames.find({}, {"boot": 1})} == {boot_key(2)}
    # Summaries of the old frames stay (2 y default, 30 d here); the 40-day-old one goes.
    assert db.unit_minutes.count_documents({}) == summaries - 1
    assert db.anomaly_events.count_documents({}) == 1  # alarms are kept until deleted
    # A clock one more day ahead takes the rest.
    enforce(db, config, NOW + dt.timedelta(days=1, minutes=1))
    assert db.frames.count_documents({}) == 0


def test_old_per_sample_documents_are_read_counted_replayed_and_expired(db: Any, tmp_path: Path) -> None:
    # What the store wrote before frame documents: one document per unit-sample in `telemetry`.
    old_start = NOW - dt.timedelta(minutes=30)
    legacy = [
        {
            "_id": telemetry_id(2, seq, unit, boot_id=7),
            "lcc": 2, "boot": boot_key(7), "seq": seq, "unit": unit,
            "ts": old_start + dt.timedelta(seconds=seq), "ts_ns": ns(old_start) + seq * 10**9,
            "values": {name: float(seq + unit) for name in CHANNELS},
            "score": 0.2, "anomalous": False, "model_version": "old",
        }
        for seq in range(5)
        for unit in range(N_UNITS)
    ]  # fmt: skip
    db.telemetry.insert_many(legacy)
    write_frames(db, tmp_path, 2, NOW - dt.timedelta(minutes=10), 6, boot=8)
    assert stored_unit_samples(db) == 5 * N_UNITS + 6 * N_UNITS
    old = recent_samples(db, 2, 3, 7, 0, 100)
    assert [d["seq"] for d in old] == list(range(5)) and old[2]["values"][CHANNELS[0]] == 5.0
    new = recent_samples(db, 2, 3, 8, 0, 100)
    assert [d["seq"] for d in new] == list(range(6)) and new[0]["model_version"] == "m1"
    # One hour read raw: the old documents and the frames, in time order.
    both = unit_history(db, 2, 3, 3600, NOW, raw_window_s=3600)
    assert [d["boot"] for d in both] == [boot_key(7)] * 5 + [boot_key(8)] * 6
    assert [d["ts_ns"] for d in both] == sorted(d["ts_ns"] for d in both)
    assert len(list(read_collection(db.telemetry).frames())) == 5  # replay --mongo-collection telemetry
    config = RetentionConfig(raw_s=20 * 60, mode="deletes")
    ensure_retention(db, config)
    enforce(db, config, NOW)  # old per-sample documents count as raw
    assert db.telemetry.count_documents({}) == 0 and db.frames.count_documents({}) == 6


def test_ttl_indexes_where_the_server_keeps_them_and_it_expires_old_frames(db: Any, tmp_path: Path) -> None:
    # Asked for explicitly: on the embedded server auto chooses the store's own deletes (next test).
    config = RetentionConfig(raw_s=7 * DAY_S, summary_s=730 * DAY_S, mode="ttl")
    assert ensure_retention(db, config) == "ttl"
    assert db.frames.index_information()["ts_retention"]["expireAfterSeconds"] == 7 * DAY_S
    assert db.unit_minutes.index_information()["hour_retention"]["expireAfterSeconds"] == 730 * DAY_S + 3600
    shorter = RetentionConfig(raw_s=DAY_S, summary_s=730 * DAY_S, mode="ttl")
    assert ensure_retention(db, shorter) == "ttl"  # a changed retention replaces the TTL
    assert db.frames.index_information()["ts_retention"]["expireAfterSeconds"] == DAY_S
    now = dt.datetime.now(dt.UTC)
    write_frames(db, tmp_path, 5, now - dt.timedelta(days=2), 3, boot=1)
    write_frames(db, tmp_path, 5, now - dt.timedelta(minutes=1), 3, boot=2)
    deadline = time.monotonic() + 150  # the server's TTL monitor runs every 60 s
    while db.frames.count_documents({"boot": boot_key(1)}) and time.monotonic() < deadline:
        time.sleep(1)
    assert db.frames.count_documents({"boot": boot_key(1)}) == 0
    assert db.frames.count_documents({"boot": boot_key(2)}) == 3


def test_auto_retention_on_the_embedded_server_is_the_stores_deletes_without_ttl_indexes(db: Any) -> None:
    # SecantusDB's TTL monitor reads a TTL-indexed collection whole every minute (the soak's
    # memory growth, issue 17): auto leaves no TTL index there, also replacing an earlier version's.
    assert ensure_retention(db, RetentionConfig(mode="ttl")) == "ttl"
    assert ensure_retention(db, RetentionConfig()) == "deletes"
    for collection in db.list_collection_names():
        for name, info in db[collection].index_information().items():
            assert "expireAfterSeconds" not in info, (collection, name)
    assert db.frames.index_information()["ts_retention"]["key"] == [("ts", 1)]  # the deletes' range
    assert db.unit_minutes.index_information()["hour_retention"]["key"] == [("hour", 1)]


def test_frames_is_a_plain_collection_with_a_unique_id_where_time_series_are_not_real(db: Any) -> None:
    import pymongo.errors

    from laserguard.storage.frames_collection import TIMESERIES_OPTIONS, ensure_frames_collection

    # The embedded server accepts time-series options but keeps a plain collection without a
    # unique _id: auto falls back to plain, asking for time series is refused by name.
    with pytest.raises(ValueError, match="does not make time-series collections"):
        ensure_frames_collection(db, "timeseries")
    assert ensure_frames_collection(db, "auto") is False
    db.frames.insert_one({"_id": "1:0:0", "lcc": 1})
    with pytest.raises(pymongo.errors.DuplicateKeyError):
        db.frames.insert_one({"_id": "1:0:0", "lcc": 1})
    db.create_collection("ignored", timeseries=TIMESERIES_OPTIONS)
    with pytest.raises(ValueError, match="has no unique _id"):
        ensure_frames_collection(db, "auto", CollectionNames(frames="ignored"))


def test_a_collection_without_unique_ids_gets_each_frame_once(db: Any, tmp_path: Path) -> None:
    # What the writer does on a real time-series collection, exercised on a plain one: frames
    # already stored are dropped from the batch before the insert and counted as duplicates.
    ensure_indexes(db)
    store = TelemetryStore(CHANNELS)
    writer = BatchWriter(db, WriteSpool(tmp_path / "spool"))
    writer.frames_without_unique_id = True
    for seq in range(3):
        store.add_telemetry(1, seq, ns(NOW) + seq, np.ones((N_UNITS, len(CHANNELS)), np.float32), now=0.0)
    batch = store.take_batch(now=1.0, flush_all=True)
    assert batch is not None
    writer.write(batch)
    writer.write(batch)
    assert writer.totals.inserted == 3 * N_UNITS and writer.totals.duplicates == 3 * N_UNITS
    assert writer.totals.rejected == 0 and db.frames.count_documents({}) == 3
