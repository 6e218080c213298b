"""`laserguard replay`: recorded telemetry into a real `detect`, and into the embedded MongoDB server."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import zmq
from zmq.utils.monitor import recv_monitor_message

from laserguard import ForestModel, sim
from laserguard.model.unit_scoring import UnitScorer
from laserguard.sim.recording import Recording, RecordingError
from laserguard.storage.embedded_server import EmbeddedMongo
from laserguard.wire import codec
from mongo_fixtures import mongo_server
from service_support import endpoint, free_port, laserguard_process, metrics, wait_for

__all__ = ["mongo_server"]  # fixture used by name

RATE_HZ = 2.0
SAMPLES = 40  # per unit: 40 frames per LCC, 19.5 s of recorded time
SPEED = 10.0
BASELINE_SAMPLES = 20  # the replay model's units learn their baseline from their first 10 s
FAULTS = [{"lcc": 1, "unit": 5, "type": "facet_damage", "start_s": 12.0, "severity": 1.0}]


@pytest.fixture(scope="module")
def recording_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `laserguard simulate`-style CSV: 2 LCCs x 32 units, one high-severity fault."""
    frame = sim.generate(SAMPLES / RATE_HZ / 3600, rate_hz=RATE_HZ, seed=3, fault_mix="none", faults=FAULTS)
    path = tmp_path_factory.mktemp("replay") / "telemetry.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def replay_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A v2 model whose baseline stage does not depend on frame times (count baseline, no EWMA),
    so the test can replay exactly what detect computed without knowing the send times."""
    from sklearn.ensemble import IsolationForest
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from laserguard.offline.detector_training import BaselineOptions, export_detector
    from laserguard.offline.sensor_table import sensor_table

    nominal = sim.generate(60 / 3600, rate_hz=RATE_HZ, seed=4, fault_mix="none")
    table = sensor_table(nominal, unit_columns=["lcc", "unit"], time_column="time_s", channels=codec.CHANNELS)
    pipeline = Pipeline([("s", StandardScaler()), ("m", IsolationForest(n_estimators=50, random_state=0))])
    pipeline.fit(table.values)
    folder = tmp_path_factory.mktemp("replay_model")
    options = BaselineOptions(baseline_samples=BASELINE_SAMPLES, window=10, mean_tau_s=0.0, target_fpr=0.01)
    export_detector(
        pipeline, folder / "model.lgf", table, np.ones(len(nominal), bool), options, workdir=folder
    )
    return folder / "model.lgf"


def expected_frames(path: Path) -> dict[int, list[np.ndarray]]:
    """Each LCC's frames in send order, straight from the CSV."""
    table = pd.read_csv(path).sort_values(["time_s", "lcc", "unit"])
    frames: dict[int, list[np.ndarray]] = {}
    for (_, lcc), rows in table.groupby(["time_s", "lcc"], sort=True):
        frames.setdefault(int(lcc), []).append(rows[list(codec.CHANNELS)].to_numpy(np.float32))
    return frames


def run_replay(*args: str, timeout_s: float = 60) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "laserguard.cli", "replay", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def connected_sub(ctx: zmq.Context[Any], address: str) -> zmq.Socket[bytes]:
    """A SUB socket connected to a bound PUB, returned once the connection is up."""
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    monitor = sub.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
    sub.connect(address)
    assert monitor.poll(20_000), f"no connection to {address}"
    assert recv_monitor_message(monitor)["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED
    sub.disable_monitor()
    monitor.close(0)
    return sub


def drain(sub: zmq.Socket[bytes], quiet_ms: int = 1000) -> list[list[bytes]]:
    messages = []
    while sub.poll(quiet_ms):
        messages.append(sub.recv_multipart())
    return messages


def test_replayed_csv_is_scored_by_a_real_detect_exactly_like_live_frames(
    recording_csv: Path, replay_model: Path, tmp_path: Path
) -> None:
    telemetry, feedback, observer = endpoint(), endpoint(), endpoint()
    port = free_port()
    detect = laserguard_process(
        "detect", "--telemetry-endpoint", telemetry, "--feedback-endpoint", feedback,
        "--observer-endpoint", observer, "--metrics-port", str(port),
        "--baseline-state-dir", str(tmp_path / "baselines"), "--model", str(replay_model),
        log=tmp_path / "detect.log",
    )  # fmt: skip
    ctx = zmq.Context()
    try:
        wait_for(lambda: bool(metrics(port)) or detect.poll() is not None, 30, "detect up")
        assert detect.poll() is None, (tmp_path / "detect.log").read_text()
        watcher = connected_sub(ctx, observer)
        summary = run_replay(
            str(recording_csv), "--speed", str(SPEED), "--telemetry-endpoint", telemetry,
            "--feedback-endpoint", feedback, "--wait-subscribers", "1", "--drain-s", "5",
        )  # fmt: skip
        answers = [codec.decode_feedback(payload) for topic, payload in drain(watcher)]
        watcher.close(0)
    finally:
        detect.terminate()
        status = detect.wait(10)
        ctx.destroy(linger=0)
    assert status == 0, (tmp_path / "detect.log").read_text()[-2000:]

    frames = expected_frames(recording_csv)
    n_frames = sum(len(f) for f in frames.values())
    assert n_frames == 2 * SAMPLES
    assert summary["frames_sent"] == n_frames
    assert summary["frames_dropped"] == 0
    assert summary["missing_unit_samples"] == 0
    # Replay listens on the feedback endpoint like an LCC: every frame was answered there too.
    assert summary["feedback_received"] == n_frames
    assert summary["frames_without_feedback"] == 0
    assert summary["feedback_other_boot"] == 0 and 0 < summary["boot_id"] < 2**64
    # Paced on the recorded clock: it cannot finish before the last frame's due time.
    assert summary["elapsed_s"] >= (SAMPLES - 1) / RATE_HZ / SPEED
    model = ForestModel.load(replay_model)
    by_lcc: dict[int, list[codec.Feedback]] = {}
    for answer in answers:
        by_lcc.setdefault(answer.lcc_id, []).append(answer)
    assert sorted(by_lcc) == [1, 2]
    flagged = 0
    for lcc, answered in by_lcc.items():
        assert [a.seq for a in answered] == list(range(SAMPLES))  # numbered from 0, none lost
        assert {a.boot_id for a in answered} == {summary["boot_id"]}  # the replay's own boot, echoed
        scorer = UnitScorer(model, 32)  # the same C++ stage, fed the same frames in the same order
        for answer, values in zip(answered, frames[lcc], strict=True):
            expected = scorer.score(np.arange(32), np.zeros(32), values, answer.top_features.shape[1])
            np.testing.assert_array_equal(answer.scores, expected.score.astype(np.float32))
            np.testing.assert_array_equal(answer.anomalous_units, np.flatnonzero(expected.flagged))
            np.testing.assert_array_equal(answer.top_features, expected.top_code)
            assert answer.model_version == model.version
            flagged += int(5 in answer.anomalous_units.tolist() and lcc == 1)
    assert flagged > 0, "the facet-damaged unit was never flagged"
    assert summary["anomalous_unit_samples"] == sum(a.anomalous_units.size for a in answers)


def test_to_mongo_writes_rows_on_the_recorded_clock_and_replays_back_from_the_collection(
    recording_csv: Path, mongo_server: EmbeddedMongo
) -> None:
    import pymongo

    db_name = f"lgreplay_{uuid.uuid4().hex[:10]}"
    client: Any = pymongo.MongoClient(mongo_server.uri, serverSelectionTimeoutMS=5000)
    try:
        db_args = ["--mongo-uri", mongo_server.uri, "--db", db_name]
        client[db_name]["rows"].insert_one({"_id": "stale", "lcc": 9})  # a scratch collection: dropped first
        written = run_replay(str(recording_csv), "--speed", str(SPEED), "--to-mongo", "rows", *db_args)
        table = pd.read_csv(recording_csv)
        assert written["rows_written"] == len(table) == 2 * 32 * SAMPLES
        assert written["time_steps_written"] == SAMPLES
        docs = list(client[db_name]["rows"].find({}))
        assert len(docs) == len(table)
        assert all(d["_id"] != "stale" for d in docs)
        stored = pd.DataFrame(docs).sort_values(["time_s", "lcc", "unit"]).reset_index(drop=True)
        table = table.sort_values(["time_s", "lcc", "unit"]).reset_index(drop=True)
        np.testing.assert_array_equal(stored[["lcc", "unit"]].to_numpy(), table[["lcc", "unit"]].to_numpy())
        np.testing.assert_array_equal(
            stored[list(codec.CHANNELS)].to_numpy(np.float32),
            table[list(codec.CHANNELS)].to_numpy(np.float32),
        )
        # Written in real time (/ speed): the last step cannot be written before it fell due
        # (BSON dates have millisecond resolution, hence the 2 ms).
        written_at = stored.groupby("time_s")["written_at"].min()
        span = (written_at.iloc[-1] - written_at.iloc[0]).total_seconds()
        assert span >= (SAMPLES - 1) / RATE_HZ / SPEED - 0.002

        # The collection is a recording too: replay it into a subscriber, frames identical to the CSV.
        messages, out = run_replay_into_subscriber(
            "--mongo-collection", "rows", *db_args, speed=50, quiet_ms=5000
        )
        assert json.loads(out)["frames_sent"] == 2 * SAMPLES
        received: dict[int, list[codec.TelemetryFrame]] = {}
        for topic, payload in messages:
            frame = codec.decode_telemetry(payload)
            assert topic == codec.telemetry_topic(frame.lcc_id)
            received.setdefault(frame.lcc_id, []).append(frame)
        for lcc, frames in expected_frames(recording_csv).items():
            assert [f.seq for f in received[lcc]] == list(range(SAMPLES))
            for got, values in zip(received[lcc], frames, strict=True):
                np.testing.assert_array_equal(got.values, values)
    finally:
        client.drop_database(db_name)
        client.close()


def test_recording_accepts_iso_times_and_sends_missing_units_as_nan() -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    rows = []
    for step in range(3):
        for unit in range(4):
            if (step, unit) == (1, 2):
                continue  # a dropout
            stamp = (start + dt.timedelta(seconds=0.5 * step)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            rows.append(
                {"time": stamp, "lcc": 7, "unit": unit, **{c: step + unit / 10 for c in codec.CHANNELS}}
            )
    recording = Recording(pd.DataFrame(rows).iloc[::-1])  # order does not matter
    frames = list(recording.frames())
    assert [f.time_s - frames[0].time_s for f in frames] == [0.0, 0.5, 1.0]
    assert recording.duration_s == 1.0
    assert all(f.lcc_id == 7 and f.values.shape == (4, len(codec.CHANNELS)) for f in frames)
    assert np.isnan(frames[1].values[2]).all()
    assert frames[1].present.tolist() == [True, True, False, True]
    assert frames[2].values[3, 0] == np.float32(2.3)


def good_table() -> pd.DataFrame:
    return pd.DataFrame([{"time_s": 0.0, "lcc": 1, "unit": 0, **dict.fromkeys(codec.CHANNELS, 1.0)}])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.drop(columns=["psu_ripple_mv"]), "psu_ripple_mv"),
        (lambda t: t.drop(columns=["time_s"]), "'time_s' or 'time'"),
        (lambda t: t.assign(unit=-1), "-1"),
        (lambda t: t.assign(lcc="one"), "'one'"),
        (lambda t: t.assign(diode_temp_c="hot"), "'hot'"),
        (lambda t: pd.concat([t, t]), "two rows for time 0.0, lcc 1, unit 0"),
        (lambda t: t.assign(state="standby"), "'standby', not a unit state"),
        (lambda t: t.assign(setpoint_a="eight"), "'setpoint_a' has a value that is not a number: 'eight'"),
    ],
)
def test_bad_recordings_are_refused_naming_the_offending_value(change: Any, message: str) -> None:
    with pytest.raises(RecordingError) as info:
        Recording(change(good_table()))
    assert message in str(info.value)


def test_cli_reports_a_bad_file_and_bad_flags(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    good_table().drop(columns=["optical_power_w"]).to_csv(bad, index=False)
    for argv, expected in [
        ([str(bad)], "optical_power_w"),
        ([str(tmp_path / "missing.csv")], "missing.csv"),
        ([str(bad), "--speed", "0"], "--speed must be > 0, got 0.0"),
        ([], "exactly one of SOURCE"),
    ]:
        result = subprocess.run(
            [sys.executable, "-m", "laserguard.cli", "replay", *argv],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2, (argv, result.stderr)
        assert expected in result.stderr, (argv, result.stderr)


def context_table() -> pd.DataFrame:
    """1 LCC x 4 units x 5 steps; each unit's setpoint and state change over time, with gaps."""
    states = ("off", "warming", "on", "derated")
    rows = []
    for step in range(5):
        for unit in range(4):
            rows.append(
                {
                    "time_s": 0.5 * step,
                    "lcc": 3,
                    "unit": unit,
                    **{c: step + unit / 10 for c in codec.CHANNELS},
                    # unit 3 at step 2: an empty cell (unknown setpoint, state not recorded)
                    "setpoint_a": np.nan if (step, unit) == (2, 3) else 8.0 - 0.5 * unit - 0.125 * step,
                    "state": "" if (step, unit) == (2, 3) else states[(step + unit) % 4],
                }
            )
    return pd.DataFrame(rows)


def expected_context(table: pd.DataFrame) -> list[tuple[list[float], list[int]]]:
    """(setpoints, state codes) per frame: empty cells are NaN / "on"."""
    out = []
    for _, rows in table.groupby("time_s", sort=True):
        rows = rows.sort_values("unit")
        states = [codec.UNIT_STATES.index(s) if s else codec.STATE_ON for s in rows["state"]]
        out.append((rows["setpoint_a"].astype(np.float32).tolist(), states))
    return out


def run_replay_into_subscriber(
    *source: str, speed: int = 20, quiet_ms: int = 3000
) -> tuple[list[list[bytes]], str]:
    """Run `laserguard replay` of ``source`` into a real SUB socket: (topic, payload) in order, its stdout."""
    telemetry = endpoint()
    ctx = zmq.Context()
    replay = subprocess.Popen(
        [
            sys.executable, "-m", "laserguard.cli", "replay", *source, "--speed", str(speed),
            "--telemetry-endpoint", telemetry, "--feedback-endpoint", "none", "--wait-subscribers", "1",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"lcc.")
        sub.connect(telemetry)
        messages = drain(sub, quiet_ms=quiet_ms)
        sub.close(0)
        out, err = replay.communicate(timeout=60)
    finally:
        if replay.poll() is None:
            replay.kill()
            replay.wait()
        ctx.destroy(linger=0)
    assert replay.returncode == 0, err
    return messages, out


def replay_into_subscriber(*source: str) -> list[codec.TelemetryFrame]:
    """The decoded frames `laserguard replay` of ``source`` sends, in order."""
    messages, _ = run_replay_into_subscriber(*source)
    return [codec.decode_telemetry(payload) for _, payload in messages]


def assert_context(frames: list[codec.TelemetryFrame], table: pd.DataFrame) -> None:
    expected = expected_context(table)
    assert [f.seq for f in frames] == list(range(len(expected)))
    for frame, (setpoints, states) in zip(frames, expected, strict=True):
        np.testing.assert_array_equal(
            frame.setpoint_a, np.array(setpoints, dtype=np.float32)
        )  # NaN == NaN here
        assert frame.state.tolist() == states


def test_replay_carries_setpoint_and_state_from_csv_to_mongo_and_back(
    tmp_path: Path, mongo_server: EmbeddedMongo
) -> None:
    import pymongo

    table = context_table()
    path = tmp_path / "context.csv"
    table.to_csv(path, index=False)
    # CSV -> the wire: every unit's context as recorded.
    assert_context(replay_into_subscriber(str(path)), table)

    # CSV -> a collection (--to-mongo) -> the wire: the documents carry it the way the store writes it.
    db_name = f"lgreplay_{uuid.uuid4().hex[:10]}"
    client: Any = pymongo.MongoClient(mongo_server.uri, serverSelectionTimeoutMS=5000)
    try:
        db_args = ["--mongo-uri", mongo_server.uri, "--db", db_name]
        run_replay(str(path), "--speed", "20", "--to-mongo", "rows", *db_args)
        doc = client[db_name]["rows"].find_one({"lcc": 3, "unit": 3, "time_s": 1.0})
        assert doc is not None and (doc["setpoint_a"], doc["state"]) == (None, "on")
        doc = client[db_name]["rows"].find_one({"lcc": 3, "unit": 1, "time_s": 0.5})
        assert doc is not None and (doc["setpoint_a"], doc["state"]) == (7.375, "on")
        assert_context(replay_into_subscriber("--mongo-collection", "rows", *db_args), table)
    finally:
        client.drop_database(db_name)
        client.close()


def test_a_recording_without_context_replays_as_unknown_setpoint_and_on() -> None:
    table = context_table().drop(columns=["setpoint_a", "state"])
    frames = list(Recording(table).frames())
    assert len(frames) == 5
    for frame in frames:
        assert np.isnan(frame.setpoint_a).all() and frame.setpoint_a.dtype == np.float32
        assert frame.state.tolist() == [codec.STATE_ON] * 4


def test_the_store_telemetry_collection_replays_with_its_context(mongo_server: EmbeddedMongo) -> None:
    import pymongo

    from laserguard.sim.recording import read_collection
    from laserguard.storage.batch_writer import BatchWriter
    from laserguard.storage.spool import WriteSpool
    from laserguard.storage.telemetry_store import TelemetryStore

    db_name = f"lgreplay_{uuid.uuid4().hex[:10]}"
    client: Any = pymongo.MongoClient(mongo_server.uri, serverSelectionTimeoutMS=5000)
    try:
        store = TelemetryStore(codec.CHANNELS)
        with tempfile.TemporaryDirectory() as spool:
            writer = BatchWriter(client[db_name], WriteSpool(Path(spool)))
            values = np.ones((3, len(codec.CHANNELS)), dtype=np.float32)
            for seq in range(2):
                setpoints = np.array([8.0, np.nan, 6.0 + seq], dtype=np.float32)
                store.add_telemetry(
                    4, seq, (seq + 1) * 10**9, values, setpoint_a=setpoints, state=["on", "off", "derated"]
                )
            batch = store.take_batch(flush_all=True)
            assert batch is not None
            writer.write(batch)
        frames = list(read_collection(client[db_name]["frames"]).frames())
        assert len(frames) == 2
        for seq, frame in enumerate(frames):
            np.testing.assert_array_equal(
                frame.setpoint_a, np.array([8.0, np.nan, 6.0 + seq], dtype=np.float32)
            )
            assert frame.state.tolist() == [2, 0, 3]
    finally:
        client.drop_database(db_name)
        client.close()
