"""Storage layer against a real secantusd-py server: idempotence, latest state, alarms, spool."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from laserguard import cli
from laserguard.storage.alarms import AlarmTracker, acknowledge_alarm
from laserguard.storage.batch_writer import BatchWriter, WriteBatch
from laserguard.storage.embedded_server import EmbeddedMongo
from laserguard.storage.metrics import StoreMetrics
from laserguard.storage.schema import (
    alarm_event_id,
    ensure_indexes,
    frame_id,
    frame_range_filter,
    latest_state_id,
)
from laserguard.storage.spool import WriteSpool, read_segment
from laserguard.storage.telemetry_store import TelemetryStore
from laserguard.storage.unit_history import recent_samples
from mongo_fixtures import CHANNELS, db, mongo_client, mongo_server, require_server_executable
from stored_samples import all_samples, stored_sample, unit_sample_count

__all__ = ["db", "mongo_client", "mongo_server"]  # fixtures used by name

N_UNITS = 32
MODEL_VERSION = "test-model-1"


def frame_values(seq: int, n_units: int = N_UNITS) -> np.ndarray:
    """Deterministic, distinct per (seq, unit, channel) so a mixed-up document is detected."""
    rng = np.random.default_rng(seq)
    return rng.normal(1.0, 0.1, size=(n_units, len(CHANNELS))).astype(np.float32)


def add_feedback(
    store: TelemetryStore, lcc: int, seq: int, anomalous: list[int], n_units: int = N_UNITS
) -> None:
    scores = np.linspace(0.1, 0.2, n_units, dtype=np.float32) + np.float32(seq) / 1000
    scores[[u for u in anomalous if u < n_units]] = -0.3
    top_features = np.tile(np.array([2, 4, 0], dtype=np.int16), (n_units, 1))
    top_weights = np.tile(np.array([0.5, 0.3, 0.2], dtype=np.float32), (n_units, 1))
    store.add_feedback(
        lcc,
        seq,
        seq * 100_000_000,
        MODEL_VERSION,
        scores,
        np.array(anomalous, dtype=np.int64),
        top_features,
        top_weights,
    )


def make_writer(db: Any, tmp_path: Path, metrics: StoreMetrics | None = None) -> BatchWriter:
    ensure_indexes(db)
    return BatchWriter(db, WriteSpool(tmp_path / "spool"), metrics=metrics, retry_interval_s=0.0)


def write_frames(store: TelemetryStore, lcc: int, seqs: range, with_feedback: bool = True) -> WriteBatch:
    for seq in seqs:
        store.add_telemetry(lcc, seq, seq * 100_000_000, frame_values(seq))
        if with_feedback:
            add_feedback(store, lcc, seq, anomalous=[])
    batch = store.take_batch(flush_all=True)
    assert batch is not None
    return batch


def sample(registry: CollectorRegistry, name: str) -> float:
    value = registry.get_sample_value(name)
    assert value is not None, f"metric {name} not found"
    return value


def test_replaying_a_batch_never_duplicates(db: Any, tmp_path: Path) -> None:
    metrics = StoreMetrics(CollectorRegistry())
    writer = make_writer(db, tmp_path, metrics)
    batch = write_frames(TelemetryStore(CHANNELS), lcc=1, seqs=range(5))
    writer.write(batch)
    writer.write(batch)  # a retry of the same batch
    assert unit_sample_count(db) == 5 * N_UNITS
    assert db.frames.count_documents({}) == 5
    assert writer.totals.inserted == 5 * N_UNITS
    assert writer.totals.duplicates == 5 * N_UNITS
    assert sample(metrics.registry, "laserguard_store_duplicate_unit_samples_total") == 5 * N_UNITS
    # Re-delivering the same frames to a new store (e.g. after a restart) is also a no-op.
    writer.write(write_frames(TelemetryStore(CHANNELS), lcc=1, seqs=range(3, 7)))
    assert unit_sample_count(db) == 7 * N_UNITS


def test_nothing_is_written_before_the_collections_are_set_up(db: Any, tmp_path: Path) -> None:
    # The store's set-up may replace an empty `frames` (a time-series collection the server
    # ignores); a batch written before it ended was once dropped with it. Until ready, batches spool.
    ready = False
    writer = BatchWriter(db, WriteSpool(tmp_path / "spool"), retry_interval_s=0.0, ready=lambda: ready)
    writer.write(write_frames(TelemetryStore(CHANNELS), lcc=1, seqs=range(3)), older_than_spool=True)
    writer.write(write_frames(TelemetryStore(CHANNELS), lcc=1, seqs=range(3, 5)))
    assert writer.replay() is False
    assert "frames" not in db.list_collection_names()
    assert writer.spool.backlog_weight == 5 * N_UNITS
    ready = True
    assert writer.replay() is True
    assert unit_sample_count(db) == 5 * N_UNITS


def test_telemetry_document_holds_every_channel_score_and_model(db: Any, tmp_path: Path) -> None:
    writer = make_writer(db, tmp_path)
    store = TelemetryStore(CHANNELS)
    values = frame_values(7)
    values[5, 3] = np.nan  # a sensor dropout is data, not an error
    store.add_telemetry(2, 7, 700_000_000, values)
    add_feedback(store, 2, 7, anomalous=[5])
    batch = store.take_batch()  # feedback attached: due without waiting for the join window
    assert batch is not None
    writer.write(batch)
    doc = stored_sample(db, 2, 7, 5)
    assert doc is not None
    assert set(doc["values"]) == set(CHANNELS)
    assert math.isnan(doc["values"][CHANNELS[3]])
    assert doc["values"][CHANNELS[0]] == pytest.approx(float(values[5, 0]), rel=0, abs=0)
    assert (doc["lcc"], doc["seq"], doc["unit"], doc["ts_ns"]) == (2, 7, 5, 700_000_000)
    assert doc["anomalous"] is True
    assert doc["score"] == pytest.approx(-0.3, abs=1e-6)
    assert doc["model_version"] == MODEL_VERSION
    assert doc["top_features"] == [2, 4, 0]
    normal = stored_sample(db, 2, 7, 0)
    assert normal is not None and normal["anomalous"] is False


def test_telemetry_waits_for_feedback_then_is_written_without_it(db: Any, tmp_path: Path) -> None:
    writer = make_writer(db, tmp_path)
    store = TelemetryStore(CHANNELS, join_window_s=0.5)
    store.add_telemetry(1, 1, 100, frame_values(1), now=10.0)
    assert store.take_batch(now=10.1) is None  # still inside the join window
    batch = store.take_batch(now=10.6)
    assert batch is not None and batch.unit_samples == N_UNITS
    writer.write(batch)
    assert [s for s in all_samples(db) if "score" in s] == []
    # Feedback arriving after the write becomes an update of the stored documents.
    add_feedback(store, 1, 1, anomalous=[3])
    late = store.take_batch(now=10.7)
    assert late is not None and late.unit_samples == 0
    writer.write(late)
    assert unit_sample_count(db) == N_UNITS
    assert len([s for s in all_samples(db) if s.get("model_version") == MODEL_VERSION]) == N_UNITS
    doc = stored_sample(db, 1, 1, 3)
    assert doc is not None and doc["anomalous"] is True


def test_latest_state_has_newest_sample_of_every_unit_and_only_moves_forward(db: Any, tmp_path: Path) -> None:
    writer = make_writer(db, tmp_path)
    store = TelemetryStore(CHANNELS)
    old_batch = write_frames(store, lcc=1, seqs=range(1, 4))
    writer.write(old_batch)
    writer.write(write_frames(store, lcc=1, seqs=range(4, 11)))
    writer.write(write_frames(store, lcc=2, seqs=range(1, 3)))
    writer.write(old_batch)  # a late replay of older data must not move the latest state back
    states = {doc["_id"]: doc for doc in db.latest_state.find({})}
    assert len(states) == 2 * N_UNITS
    newest = frame_values(10)
    for unit in range(N_UNITS):
        doc = states[latest_state_id(1, unit)]
        assert doc["seq"] == 10 and doc["score_seq"] == 10
        assert [doc["values"][c] for c in CHANNELS] == newest[unit].tolist()
        assert doc["score"] == pytest.approx(float(np.linspace(0.1, 0.2, N_UNITS)[unit]) + 0.010, abs=1e-6)
    assert states[latest_state_id(2, 0)]["seq"] == 2


def test_feedback_out_of_range_unit_is_rejected_with_the_value() -> None:
    store = TelemetryStore(CHANNELS)
    with pytest.raises(ValueError, match=r"out of range 0\.\.31: \[40\]"):
        add_feedback(store, 1, 1, anomalous=[40])
    with pytest.raises(ValueError, match=r"values shape \(32, 5\)"):
        store.add_telemetry(1, 1, 0, np.zeros((32, 5), dtype=np.float32))


def test_alarm_hysteresis_raise_acknowledge_clear(db: Any, tmp_path: Path) -> None:
    writer = make_writer(db, tmp_path)
    store = TelemetryStore(CHANNELS, alarms=AlarmTracker(raise_after=3, clear_after=4, clear_after_s=0.0))
    unit = 6
    pattern = [True, False, True, True, False]  # noisy samples: never 3 in a row
    pattern += [True, True, True, True]  # raised at the 3rd of these (seq 8)
    pattern += [False, False, True, False, False, False]  # 2 normal then anomalous: run restarts
    pattern += [False]  # 4th normal in a row: cleared (seq 16)
    raised_seq, cleared_seq = 8, 16
    for seq, is_anomalous in enumerate(pattern + [False] * 2, start=1):
        store.add_telemetry(1, seq, seq * 100_000_000, frame_values(seq))
        add_feedback(store, 1, seq, anomalous=[unit] if is_anomalous else [])
        batch = store.take_batch()
        assert batch is not None
        writer.write(batch)
        events = list(db.anomaly_events.find({}))
        if seq < raised_seq:
            assert events == [], f"alarm raised too early at seq {seq}"
        elif seq == raised_seq:
            assert [(e["unit"], e["raised_seq"], e["state"]) for e in events] == [
                (unit, raised_seq, "active")
            ]
            assert acknowledge_alarm(db, events[0]["_id"], "operator-a")
            latest = db.latest_state.find_one({"_id": latest_state_id(1, unit)})
            assert latest is not None
            assert (latest["alarm_state"], latest["alarm_acknowledged"]) == ("active", True)
        elif seq < cleared_seq:
            assert [(e["state"], e["acknowledged"]) for e in events] == [("active", True)]
        else:
            assert len(events) == 1 and events[0]["state"] == "cleared"
            assert events[0]["cleared_seq"] == cleared_seq
            assert events[0]["acknowledged_by"] == "operator-a"
    latest = db.latest_state.find_one({"_id": latest_state_id(1, unit)})
    assert latest is not None and latest["alarm_state"] == "cleared"
    assert db.latest_state.count_documents({"alarm_state": "active"}) == 0
    assert not acknowledge_alarm(db, "1:6:999", "operator-a")


def test_an_lcc_restart_raises_a_new_alarm_even_at_a_seq_an_old_one_used(db: Any, tmp_path: Path) -> None:
    writer = make_writer(db, tmp_path)
    store = TelemetryStore(CHANNELS, alarms=AlarmTracker(raise_after=2, clear_after=2, clear_after_s=0.0))
    unit = 3

    def frame(boot: int, seq: int, ts_s: float, anomalous: bool) -> None:
        ts = int(ts_s * 1e9)
        store.add_telemetry(1, seq, ts, frame_values(seq), boot_id=boot)
        scores = np.full(N_UNITS, 0.1, dtype=np.float32)
        scores[unit] = -0.3 if anomalous else 0.1
        feedback_at = np.array([unit] if anomalous else [], dtype=np.int64)
        top = np.zeros((N_UNITS, 0), dtype=np.int16)
        store.add_feedback(1, seq, ts, "m", scores, feedback_at, top, top.astype(np.float32), boot_id=boot)
        batch = store.take_batch()
        assert batch is not None
        writer.write(batch)

    # Boot A: raised at seq 1, cleared at seq 3. The LCC restarts (boot B, seq from 0 again) and
    # the unit fails: raised at seq 1 again, a new event, and the latest state follows boot B.
    for seq, bad in enumerate([True, True, False, False]):
        frame(0xA, seq, 100.0 + seq, bad)
    for seq, bad in enumerate([True, True]):
        frame(0xB, seq, 200.0 + seq, bad)
    events = sorted(db.anomaly_events.find({}), key=lambda e: e["boot"])
    assert [(e["boot"], e["raised_seq"], e["state"]) for e in events] == [
        (f"{0xA:016x}", 1, "cleared"),
        (f"{0xB:016x}", 1, "active"),
    ]
    latest = db.latest_state.find_one({"_id": latest_state_id(1, unit)})
    assert latest is not None
    assert (latest["alarm_state"], latest["alarm_event_id"]) == ("active", events[1]["_id"])


def test_alarm_tracker_restores_active_alarms_after_restart() -> None:
    tracker = AlarmTracker(raise_after=2, clear_after=2, clear_after_s=0.0)
    tracker.restore([(1, 4, "1:4:17")])
    scores = np.zeros(8, dtype=np.float32)
    empty = np.zeros((8, 0))
    normal = np.zeros(8, dtype=bool)
    assert tracker.observe(1, 20, 0, normal, scores, "m", empty, empty) == []
    cleared = tracker.observe(1, 21, 0, normal, scores, "m", empty, empty)
    assert [(t.kind, t.unit, t.event_id) for t in cleared] == [("clear", 4, "1:4:17")]
    with pytest.raises(ValueError, match="got 0 and 2"):
        AlarmTracker(raise_after=0, clear_after=2)


def test_an_intermittent_fault_keeps_one_alarm_until_it_has_been_quiet_for_clear_after_s() -> None:
    tracker = AlarmTracker(raise_after=2, clear_after=3, clear_after_s=10.0)
    scores = np.zeros(4, dtype=np.float32)
    empty = np.zeros((4, 0))
    # 10 Hz for 30 s: unit 2 is flagged in bursts (an oscillating driver), with quiet gaps of up
    # to 5 s; then it stays quiet.
    transitions = []
    for i in range(300):
        in_burst = i < 200 and (i // 10) % 5 == 0
        anomalous = np.zeros(4, dtype=bool)
        anomalous[2] = in_burst
        transitions += tracker.observe(1, i, i * 100_000_000, anomalous, scores, "m", empty, empty)
    # One alarm from the first burst; cleared 10 s after the last flagged sample (seq 159).
    assert [(t.kind, t.seq) for t in transitions] == [("raise", 1), ("clear", 259)]


def test_spool_survives_a_restart_and_ignores_a_torn_tail(tmp_path: Path) -> None:
    spool = WriteSpool(tmp_path)
    spool.append({"ops": [], "n": 1}, weight=32)
    spool.append({"ops": [], "n": 2}, weight=64)
    spool.close()
    segment = spool.segments()[0]
    with open(segment, "ab") as f:
        f.write(b"\x40\x00\x00\x00torn")  # a crash in the middle of an append
    reopened = WriteSpool(tmp_path)
    assert (reopened.backlog_records, reopened.backlog_weight) == (2, 96)
    assert [r["n"] for r in read_segment(segment)] == [1, 2]
    seen: list[int] = []

    def fail_on_second(record: dict[str, Any]) -> None:
        if record["n"] == 2 and not seen.count(-1):
            seen.append(-1)
            raise ConnectionError("database went away")
        seen.append(record["n"])

    with pytest.raises(ConnectionError):
        reopened.replay(fail_on_second)
    assert (reopened.backlog_records, reopened.backlog_weight) == (1, 64)
    reopened.append({"ops": [], "n": 3}, weight=1)  # goes behind the unfinished segment
    assert reopened.replay(fail_on_second) == 2
    assert seen == [1, -1, 2, 3]
    assert reopened.empty and reopened.backlog_bytes == 0 and reopened.segments() == []


def test_database_down_mid_run_spools_and_replays_without_loss_or_duplicates(tmp_path: Path) -> None:
    import pymongo

    require_server_executable()
    metrics = StoreMetrics(CollectorRegistry())
    registry = metrics.registry
    with EmbeddedMongo(tmp_path / "db", attach_existing=False) as server:
        client: Any = pymongo.MongoClient(server.uri, serverSelectionTimeoutMS=300, connectTimeoutMS=300)
        database = client["laserguard"]
        writer = BatchWriter(database, WriteSpool(tmp_path / "spool"), metrics=metrics, retry_interval_s=0.0)
        ensure_indexes(database)
        store = TelemetryStore(CHANNELS)
        seq = 0

        def write_some(n_frames: int) -> None:
            nonlocal seq
            writer.write(write_frames(store, lcc=1, seqs=range(seq, seq + n_frames)))
            seq += n_frames

        for _ in range(3):
            write_some(4)
        server.kill()  # crash, not a clean stop: journaled writes must survive
        for _ in range(5):
            write_some(4)
        assert writer.database_up is False
        assert sample(registry, "laserguard_store_spool_backlog_unit_samples") == 5 * 4 * N_UNITS
        assert sample(registry, "laserguard_store_database_up") == 0
        server.start()
        assert server.port is not None
        write_some(4)  # the first write after the restart replays the backlog first
        assert writer.database_up is True
        assert sample(registry, "laserguard_store_spool_backlog_unit_samples") == 0
        assert sample(registry, "laserguard_store_spool_backlog_bytes") == 0
        assert sample(registry, "laserguard_store_replayed_batches_total") == 5
        total = seq * N_UNITS
        assert unit_sample_count(database) == total
        ids = {doc["_id"] for doc in database.frames.find({}, {"_id": 1})}
        expected = {frame_id(1, 0, s) for s in range(seq)}
        assert ids == expected
        assert {doc["n_units"] for doc in database.frames.find({}, {"n_units": 1})} == {N_UNITS}
        assert sample(registry, "laserguard_store_unit_samples_written_total") == total
        latest = database.latest_state.find_one({"_id": latest_state_id(1, 0)})
        assert latest is not None and latest["seq"] == seq - 1
        client.close()


def test_unit_history_is_an_id_range_in_sequence_order(db: Any, tmp_path: Path) -> None:
    writer = make_writer(db, tmp_path)
    store = TelemetryStore(CHANNELS)
    seqs = [*range(1, 4), 9, 10, 11, 120, 1_000_000]  # 9 < 10 < 120 numerically, not as plain text
    for seq in seqs:
        store.add_telemetry(3, seq, seq, frame_values(seq, n_units=12))
    batch = store.take_batch(flush_all=True)
    assert batch is not None
    writer.write(batch)
    history = recent_samples(db, 3, 11, 0, 0, 2_000_000)
    assert [doc["seq"] for doc in history] == seqs
    assert {doc["unit"] for doc in history} == {11}
    assert [d["values"][CHANNELS[2]] for d in history] == [float(frame_values(s, 12)[11, 2]) for s in seqs]
    window = db.frames.find(frame_range_filter(3, 0, 9, 120))
    assert sorted(doc["seq"] for doc in window) == [9, 10, 11]


def test_feedback_with_a_different_unit_count_than_its_frame_is_rejected() -> None:
    store = TelemetryStore(CHANNELS)
    store.add_telemetry(1, 4, 0, frame_values(4, n_units=8))
    with pytest.raises(ValueError, match="has 32 scores but its telemetry frame has 8 units"):
        add_feedback(store, 1, 4, anomalous=[])
    add_feedback(store, 1, 4, anomalous=[], n_units=8)
    batch = store.take_batch()
    assert batch is not None and batch.unit_samples == 8


def test_latest_state_is_refreshed_at_most_every_interval_with_the_newest_values() -> None:
    store = TelemetryStore(CHANNELS, latest_interval_s=0.25)

    def latest_seqs(batch: WriteBatch | None) -> set[int]:
        assert batch is not None
        return {op["update"]["$set"]["seq"] for op in batch.ops if op["c"] == "latest_state"}

    for seq, now in ((1, 10.0), (2, 10.1), (3, 10.2)):
        store.add_telemetry(1, seq, seq, frame_values(seq, n_units=4), now=now)
        add_feedback(store, 1, seq, anomalous=[], n_units=4)
        batch = store.take_batch(now=now)
        assert batch is not None and batch.unit_samples == 4  # telemetry is never held back
        assert latest_seqs(batch) == ({1} if seq == 1 else set())
    store.add_telemetry(1, 4, 4, frame_values(4, n_units=4), now=10.3)
    add_feedback(store, 1, 4, anomalous=[], n_units=4)
    assert latest_seqs(store.take_batch(now=10.3)) == {4}  # one upsert per unit, the newest sample


def test_alarms_command_lists_and_acknowledges(
    mongo_server: EmbeddedMongo, db: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    writer = make_writer(db, tmp_path)
    store = TelemetryStore(CHANNELS, alarms=AlarmTracker(raise_after=2, clear_after=2, clear_after_s=0.0))
    for seq in (1, 2):
        store.add_telemetry(1, seq, seq * 1_000_000_000, frame_values(seq, n_units=4))
        add_feedback(store, 1, seq, anomalous=[3], n_units=4)
    batch = store.take_batch(flush_all=True)
    assert batch is not None
    writer.write(batch)
    db_args = ["--mongo-uri", mongo_server.uri, "--db", db.name]
    assert cli.main(["alarms", "list", *db_args]) == 0
    event_id = alarm_event_id(1, 3, 2)  # lcc 1, unit 3, boot 0, raised at seq 2
    assert event_id in capsys.readouterr().out
    assert cli.main(["alarms", "ack", *db_args, event_id, "--by", "operator-b"]) == 0
    event = db.anomaly_events.find_one({"_id": event_id})
    assert event is not None and (event["acknowledged"], event["acknowledged_by"]) == (True, "operator-b")
    assert cli.main(["alarms", "ack", *db_args, "9:9:9"]) == 1
    assert "no alarm with id '9:9:9'" in capsys.readouterr().err


def test_failed_replays_keep_appending_to_the_same_segment(tmp_path: Path) -> None:
    spool = WriteSpool(tmp_path)

    def database_down(record: dict[str, Any]) -> None:
        raise ConnectionError("still down")

    for n in range(5):
        spool.append({"ops": [], "n": n}, weight=1)
        with pytest.raises(ConnectionError):
            spool.replay(database_down)
    assert len(spool.segments()) == 1
    applied: list[int] = []
    assert spool.replay(lambda record: applied.append(record["n"])) == 5
    assert applied == [0, 1, 2, 3, 4] and spool.empty


# ---------------------------------------------------------------- LCC restarts (boot ids, issue 12)

BOOT_A = 0xA000_0000_0000_0001
BOOT_B = 0xFFFF_FFFF_FFFF_FFF0  # above 2**63: stored as hex, never as a (signed) BSON integer


def add_boot_frames(store: TelemetryStore, boot: int, seqs: range, t0_ns: int, n_units: int = 4) -> None:
    for seq in seqs:
        ts = t0_ns + seq * 100_000_000
        store.add_telemetry(1, seq, ts, frame_values(seq, n_units=n_units), boot_id=boot)
        scores = np.full(n_units, 0.1 if boot == BOOT_A else 0.2, dtype=np.float32)
        empty = np.zeros((n_units, 0))
        store.add_feedback(
            1, seq, ts, MODEL_VERSION, scores, np.array([], np.int64), empty, empty, boot_id=boot
        )


def test_a_restarted_lcc_is_stored_in_full_not_deduplicated(db: Any, tmp_path: Path) -> None:
    # Issue 12's measurement: seq restarts at 0 with a new boot; keyed (lcc, unit, seq) the second
    # boot was dropped as duplicates. Keyed on the boot too, both boots are stored in full.
    writer = make_writer(db, tmp_path)
    store = TelemetryStore(CHANNELS)
    add_boot_frames(store, BOOT_A, range(0, 20), t0_ns=10**18)
    writer.write(store.take_batch(flush_all=True))  # type: ignore[arg-type]
    add_boot_frames(store, BOOT_B, range(0, 15), t0_ns=10**18 + 5 * 10**9)
    writer.write(store.take_batch(flush_all=True))  # type: ignore[arg-type]
    assert unit_sample_count(db) == (20 + 15) * 4
    assert writer.totals.duplicates == 0 and writer.totals.inserted == 35 * 4
    doc = stored_sample(db, 1, 0, 2, boot_id=BOOT_B)
    assert doc is not None and doc["boot"] == f"{BOOT_B:016x}" and doc["score"] == pytest.approx(0.2)
    first_boot = recent_samples(db, 1, 2, BOOT_A, 0, 1000)
    assert sorted(d["seq"] for d in first_boot) == list(range(20))
    latest = db.latest_state.find_one({"_id": latest_state_id(1, 2)})
    assert latest is not None
    # The new boot's seq 14 replaced the old boot's seq 19: across boots the sender's clock decides.
    assert (latest["boot"], latest["seq"], latest["score_boot"], latest["score_seq"]) == (
        f"{BOOT_B:016x}",
        14,
        f"{BOOT_B:016x}",
        14,
    )
    assert latest["score"] == pytest.approx(0.2)


def test_a_late_replay_of_the_previous_boot_does_not_move_latest_state_back(db: Any, tmp_path: Path) -> None:
    # A second (redundant) store or a spool replay may write the old boot after the new one.
    writer = make_writer(db, tmp_path)
    new_store, old_store = TelemetryStore(CHANNELS), TelemetryStore(CHANNELS)
    add_boot_frames(new_store, BOOT_B, range(0, 3), t0_ns=10**18 + 5 * 10**9)
    writer.write(new_store.take_batch(flush_all=True))  # type: ignore[arg-type]
    add_boot_frames(old_store, BOOT_A, range(0, 40), t0_ns=10**18)  # higher seq, older clock
    writer.write(old_store.take_batch(flush_all=True))  # type: ignore[arg-type]
    latest = db.latest_state.find_one({"_id": latest_state_id(1, 0)})
    assert latest is not None and (latest["boot"], latest["seq"]) == (f"{BOOT_B:016x}", 2)
    assert latest["score"] == pytest.approx(0.2)
    assert unit_sample_count(db) == (3 + 40) * 4
