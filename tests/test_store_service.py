"""`laserguard store` as a real process: real ZMQ sockets, the real codec, a real secantusd-py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from laserguard.storage.embedded_server import EmbeddedMongo, free_tcp_port
from laserguard.wire import codec
from mongo_fixtures import db, mongo_client, mongo_server
from stored_samples import all_samples, unit_sample_count
from wire_v2 import encode_telemetry_v2

BOOT = 0x5EED_B007_0000_0001  # boot id of the frames this file sends (one LCC start)

__all__ = ["db", "mongo_client", "mongo_server"]  # fixtures used by name

N_UNITS = 8
N_FRAMES = 40
LCC = 1
WARMUP_LCC = 99
ANOMALOUS_UNIT = 5


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except (urllib.error.URLError, ConnectionError):
        return {}
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def wait_for(
    condition: Callable[[], bool], what: str, process: subprocess.Popen[bytes], timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        assert process.poll() is None, f"store exited with {process.returncode} while waiting for {what}"
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def feedback_payload(lcc: int, seq: int) -> bytes:
    scores = np.full(N_UNITS, 0.2, dtype=np.float32)
    scores[ANOMALOUS_UNIT] = -0.25
    top_features = np.full((N_UNITS, 2), -1, dtype=np.int16)
    top_features[ANOMALOUS_UNIT] = [2, 4]
    top_weights = np.zeros((N_UNITS, 2), dtype=np.float32)
    top_weights[ANOMALOUS_UNIT] = [0.75, 0.25]
    return bytes(
        codec.encode_feedback(
            lcc,
            seq,
            seq * 1_000_000,
            "model-x",
            scores,
            np.array([ANOMALOUS_UNIT]),
            top_features,
            top_weights,
            boot_id=BOOT,
        )
    )


def unit_context(seq: int) -> tuple[np.ndarray, list[str]]:
    """Each unit's setpoint (unit 0's unknown: NaN) and a state that changes with seq."""
    setpoints = np.array([np.nan] + [8.0 - 0.25 * u for u in range(1, N_UNITS)], dtype=np.float32)
    return setpoints + np.float32(0.01 * seq), [codec.UNIT_STATES[(u + seq) % 4] for u in range(N_UNITS)]


def test_store_process_writes_stream_counts_bad_frames_and_flushes_on_sigterm(
    mongo_server: EmbeddedMongo, db: Any, tmp_path: Path
) -> None:
    import zmq

    telemetry_port, feedback_port, metrics_port = free_tcp_port(), free_tcp_port(), free_tcp_port()
    context = zmq.Context()
    telemetry = context.socket(zmq.PUB)  # plays the LCC: it binds
    feedback = context.socket(zmq.PUB)  # plays `detect`'s observer endpoint: it binds
    for socket, port in ((telemetry, telemetry_port), (feedback, feedback_port)):
        socket.setsockopt(zmq.SNDHWM, 0)
        socket.setsockopt(zmq.LINGER, 0)
        socket.bind(f"tcp://127.0.0.1:{port}")
    stats_path = tmp_path / "stats.json"
    command = [
        sys.executable, "-m", "laserguard.cli", "store", "--mongo-uri", mongo_server.uri, "--db", db.name,
        "--telemetry-endpoint", f"tcp://127.0.0.1:{telemetry_port}",
        "--feedback-endpoint", f"tcp://127.0.0.1:{feedback_port}",
        "--metrics-port", str(metrics_port), "--spool-dir", str(tmp_path / "spool"),
        "--join-window-s", "0.3", "--raise-after", "3", "--stats-json", str(stats_path),
    ]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        rng = np.random.default_rng(1)
        # Warm up on another LCC until both subscriptions are live (PUB/SUB late-joiner loss).
        warm_seq = 0

        def both_subscribed() -> bool:
            nonlocal warm_seq
            values = rng.normal(size=(N_UNITS, len(codec.CHANNELS))).astype(np.float32)
            telemetry.send_multipart(
                [
                    codec.telemetry_topic(WARMUP_LCC),
                    codec.encode_telemetry(WARMUP_LCC, warm_seq, 0, values, boot_id=BOOT),
                ]
            )
            feedback.send_multipart(
                [codec.feedback_topic(WARMUP_LCC), feedback_payload(WARMUP_LCC, warm_seq)]
            )
            warm_seq += 1
            m = scrape(metrics_port)
            return all(
                m.get(("laserguard_store_frames_received_total", (("kind", k),)), 0) > 0
                for k in ("telemetry", "feedback")
            )

        wait_for(both_subscribed, "both subscriptions", process)
        sent = []
        for seq in range(N_FRAMES):
            values = rng.normal(1.0, 0.1, size=(N_UNITS, len(codec.CHANNELS))).astype(np.float32)
            sent.append(values)
            setpoints, states = unit_context(seq)
            telemetry.send_multipart(
                [
                    codec.telemetry_topic(LCC),
                    codec.encode_telemetry(
                        LCC, seq, seq * 1_000_000, values, boot_id=BOOT, setpoint_a=setpoints, state=states
                    ),
                ]
            )
            feedback.send_multipart([codec.feedback_topic(LCC), feedback_payload(LCC, seq)])
        good = codec.encode_telemetry(LCC, 999, 0, sent[0], boot_id=BOOT)
        telemetry.send_multipart([codec.telemetry_topic(LCC), b"not a frame at all"])
        telemetry.send_multipart([codec.telemetry_topic(LCC), good[: len(good) // 2]])
        telemetry.send_multipart([codec.telemetry_topic(LCC), good, b"extra part"])
        telemetry.send_multipart([codec.telemetry_topic(LCC), good + b"\x00" * 4096])
        # An LCC that was not upgraded: genuine version-2 frames, refused (not half-decoded) and counted.
        for seq in (1000, 1001, 1002):
            v2 = encode_telemetry_v2(LCC, BOOT, seq, 0, sent[0])
            telemetry.send_multipart([codec.telemetry_topic(LCC), v2])

        def bad_frames_counted() -> bool:
            m = scrape(metrics_port)
            return (
                sum(v for (name, _), v in m.items() if name == "laserguard_store_invalid_frames_total") >= 7
            )

        wait_for(bad_frames_counted, "invalid frames to be counted", process)
        metrics = scrape(metrics_port)
        invalid = {dict(labels)["reason"]: v for (name, labels), v in metrics.items()
                   if name == "laserguard_store_invalid_frames_total"}  # fmt: skip
        assert invalid == {
            "bad_magic": 1,
            "truncated": 1,
            "multipart": 1,
            "count_mismatch": 1,
            "unknown_version": 3,
        }
        assert process.poll() is None  # bad input does not stop the service
    finally:
        process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=30)
        telemetry.close()
        feedback.close()
        context.term()
    stderr = process.stderr.read().decode() if process.stderr else ""
    assert status == 0, stderr
    # The old sender is named once (with both versions), not once per frame.
    assert stderr.count("telemetry frame version 2 is not supported (this decoder reads version 3") == 1, (
        stderr
    )
    # Everything received was flushed on SIGTERM: every unit-sample once, with its scores.
    lcc_docs = all_samples(db, {"lcc": LCC})
    assert db.frames.count_documents({"lcc": LCC}) == N_FRAMES  # one document per frame
    assert len(lcc_docs) == N_FRAMES * N_UNITS
    assert len({d["_id"] for d in lcc_docs}) == len(lcc_docs)
    by_key = {(d["seq"], d["unit"]): d for d in lcc_docs}
    for seq in (0, N_FRAMES // 2, N_FRAMES - 1):
        for unit in range(N_UNITS):
            doc = by_key[(seq, unit)]
            assert [doc["values"][c] for c in codec.CHANNELS] == sent[seq][unit].tolist()
            setpoints, states = unit_context(seq)
            # The unit's context at the top level next to values: an unknown setpoint is None.
            assert doc["setpoint_a"] == (None if unit == 0 else float(setpoints[unit]))
            assert doc["state"] == states[unit]
            assert doc["model_version"] == "model-x"
            assert doc["anomalous"] is (unit == ANOMALOUS_UNIT)
    last_setpoints, last_states = unit_context(N_FRAMES - 1)
    for unit in range(N_UNITS):
        state_doc = db.latest_state.find_one({"_id": f"{LCC}:{unit}"})
        assert state_doc is not None
        assert state_doc["setpoint_a"] == (None if unit == 0 else float(last_setpoints[unit]))
        assert state_doc["state"] == last_states[unit]
    latest = db.latest_state.find_one({"_id": f"{LCC}:{ANOMALOUS_UNIT}"})
    assert latest is not None
    assert (latest["seq"], latest["score_seq"], latest["alarm_state"]) == (
        N_FRAMES - 1,
        N_FRAMES - 1,
        "active",
    )
    events = list(db.anomaly_events.find({"lcc": LCC}))
    assert [(e["unit"], e["raised_seq"], e["top_features"]) for e in events] == [(ANOMALOUS_UNIT, 2, [2, 4])]
    stats = json.loads(stats_path.read_text())
    assert stats["unit_samples_written"] == unit_sample_count(db)
    assert stats["duplicate_unit_samples"] == 0
    assert stats["spool_backlog_unit_samples"] == 0
