"""CurveZMQ on the hardware link with real processes (lcc-sim, detect) on 127.0.0.1 (issue 18).

A rogue publisher that watches the telemetry and answers every frame with "all 32 units
anomalous" derates every unit of `lcc-sim --derate-on-anomaly` without CURVE (the control case),
and nothing with CURVE unless it holds a command key; refusals show in lcc-sim's summary.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq

from laserguard.wire import codec
from laserguard.wire.curve_keys import KeyPair, read_key_pair, read_public_key, write_key_pair
from laserguard.wire.link_security import secure_client
from service_support import endpoint
from test_lcc_sim import lcc_sim_path as installed_lcc_sim

UNITS = 32


def lcc_sim_path() -> str:
    return os.environ.get("LASERGUARD_TEST_LCC_SIM") or installed_lcc_sim()  # a build not installed yet


@pytest.fixture
def site(tmp_path: Path) -> Path:
    out = tmp_path / "keys"
    subprocess.run(
        [sys.executable, "-m", "laserguard.cli", "keys", "generate", "--out", str(out)], check=True
    )
    return out


def sim_argv(telemetry: str, feedback: str, *extra: str, duration_s: float = 4.0) -> list[str]:
    return [
        lcc_sim_path(), "--lccs", "1", "--units", str(UNITS), "--rate-hz", "10", "--duration-s", str(duration_s),
        "--telemetry-endpoint", telemetry, "--feedback-endpoint", feedback, "--derate-on-anomaly",
        "--drain-s", "0.5", "--log-level", "warning", *extra,
    ]  # fmt: skip


def detect_argv(telemetry: str, feedback: str, tmp_path: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "laserguard.cli", "detect", "--telemetry-endpoint", telemetry,
        "--feedback-endpoint", feedback, "--observer-endpoint", "none", "--metrics-port", "0",
        "--baseline-state-dir", "none", "--log-level", "WARNING", *extra,
    ]  # fmt: skip


def all_units_anomalous(frame: Any) -> bytes:
    scores = np.full(UNITS, -0.5, dtype=np.float32)
    return codec.encode_feedback(
        int(frame.lcc_id),
        int(frame.seq),
        int(frame.timestamp_ns),
        "rogue",
        scores,
        np.arange(UNITS, dtype=np.int32),
        np.zeros((UNITS, 1), dtype=np.int16),
        np.ones((UNITS, 1), dtype=np.float32),
        boot_id=int(frame.boot_id),
    )


def run_rogue(
    sim: subprocess.Popen[str],
    telemetry: str,
    feedback: str,
    reader: KeyPair | None,
    sender: KeyPair | None,
    lcc: bytes,
) -> int:
    """Answers every telemetry frame with all units anomalous until lcc-sim exits; frames answered.

    The rogue reads the telemetry with a read key (so it knows every boot id and seq: the worst
    case) and sends feedback with `sender`'s key (None: plain ZeroMQ, for the unsecured control).
    """
    ctx: zmq.Context[Any] = zmq.Context()
    sub, pub = ctx.socket(zmq.SUB), ctx.socket(zmq.PUB)
    for s in (sub, pub):
        s.linger = 0
    if reader is not None:
        secure_client(sub, reader, lcc)
    if sender is not None:
        secure_client(pub, sender, lcc)
    sub.subscribe(b"lcc.")
    sub.connect(telemetry)
    pub.connect(feedback)
    answered = 0
    try:
        while sim.poll() is None:
            if sub.poll(50):
                _topic, payload = sub.recv_multipart()
                frame = codec.decode_telemetry(payload)
                pub.send_multipart([codec.feedback_topic(frame.lcc_id), all_units_anomalous(frame)])
                answered += 1
    finally:
        sub.close(0)
        pub.close(0)
        ctx.term()
    return answered


def finish(sim: subprocess.Popen[str], timeout: float = 60) -> tuple[dict[str, Any], str]:
    out, err = sim.communicate(timeout=timeout)
    assert sim.returncode == 0, err
    return json.loads(out), err


@pytest.mark.parametrize("sender", ["plain_control", "unknown_key", "read_key", "command_key"])
def test_a_rogue_publisher_derates_nothing_without_a_command_key(site: Path, sender: str) -> None:
    telemetry, feedback = endpoint(), endpoint()
    curve = sender != "plain_control"
    observer = read_key_pair(site / "observer.key_secret")
    public, secret = zmq.curve_keypair()
    keys = {
        "plain_control": None,
        "unknown_key": KeyPair(public=public, secret=secret),
        "read_key": observer,
        "command_key": read_key_pair(site / "detector.key_secret"),
    }
    extra = ["--curve-keys", str(site)] if curve else []
    sim = subprocess.Popen(
        sim_argv(telemetry, feedback, "--wait-for-subscriber", "20", *extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lcc = read_public_key(site / "lcc.key")
    answered = run_rogue(sim, telemetry, feedback, observer if curve else None, keys[sender], lcc)
    summary, err = finish(sim)
    assert answered >= 30  # the rogue saw the telemetry and answered every frame it saw
    security = summary["link_security"]
    if sender in ("plain_control", "command_key"):
        # The attack works without CURVE, and with a stolen command key: guard those keys.
        assert summary["derated"] >= UNITS
        assert security["curve"] is curve
        return
    assert summary["derated"] == 0
    assert summary["feedback_received"] == 0
    reason = "unknown_key" if sender == "unknown_key" else "read_role"
    assert security["refused"]["feedback"][reason] >= 1
    assert security["accepted"]["telemetry"]["read"] >= 1  # the rogue's read key could watch
    assert err.count("refused feedback connection") == 1  # logged once, however often it retried


def test_a_detector_with_a_command_key_works_as_without_curve(site: Path, tmp_path: Path) -> None:
    telemetry, feedback = endpoint(), endpoint()
    detect = subprocess.Popen(
        detect_argv(telemetry, feedback, tmp_path, "--curve-keys", str(site)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        sim = subprocess.run(
            sim_argv(telemetry, feedback, "--curve-keys", str(site), "--wait-for-subscriber", "30"),
            capture_output=True,
            text=True,
            timeout=90,
            check=True,
        )
    finally:
        detect.send_signal(signal.SIGTERM)
        _, detect_err = detect.communicate(timeout=30)
    summary = json.loads(sim.stdout)
    assert summary["frames_sent"] == 40
    # Every frame after the detector's feedback PUB joined is answered (its first answers can be
    # lost to the late-joiner gap, as without CURVE).
    assert summary["feedback_received"] >= summary["frames_sent"] - 5, detect_err
    assert summary["feedback_rejected"] == {}
    security = summary["link_security"]
    assert security["curve"] is True
    assert security["accepted"]["feedback"]["command"] >= 1
    assert security["refused_total"] == 0
    assert detect.returncode == 0, detect_err


def _detect_fails(argv: list[str], within_s: float = 20) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=within_s, check=False)
    assert proc.returncode == 2, proc.stderr
    return proc.stderr


def test_a_wrong_server_key_fails_with_a_clear_message(site: Path, tmp_path: Path) -> None:
    telemetry, feedback = endpoint(), endpoint()
    other = tmp_path / "other"
    other.mkdir()
    write_key_pair(other, "lcc")
    sim = subprocess.Popen(
        sim_argv(telemetry, feedback, "--curve-keys", str(site), duration_s=0),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        err = _detect_fails(
            detect_argv(
                telemetry,
                feedback,
                tmp_path,
                "--curve-keys",
                str(site),
                "--server-key",
                str(other / "lcc.key"),
            )
        )
    finally:
        sim.send_signal(signal.SIGTERM)
    summary, _ = finish(sim)
    assert "is not that server's public key" in err
    assert str(other / "lcc.key") in err
    refused = summary["link_security"]["refused"]
    assert sum(refused.get("telemetry", {}).values()) + sum(refused.get("feedback", {}).values()) >= 1


@pytest.mark.parametrize("holder", ["detect", "lcc-sim"])
def test_key_files_with_loose_permissions_are_refused(site: Path, tmp_path: Path, holder: str) -> None:
    telemetry, feedback = endpoint(), endpoint()
    secret = site / ("detector.key_secret" if holder == "detect" else "lcc.key_secret")
    os.chmod(secret, 0o644)
    if holder == "detect":
        argv = detect_argv(telemetry, feedback, tmp_path, "--curve-keys", str(site))
    else:
        argv = sim_argv(telemetry, feedback, "--curve-keys", str(site), duration_s=0.2)
    err = _detect_fails(argv)
    assert f"'{secret}' has mode 0644" in err
    assert "chmod 600" in err


@pytest.mark.parametrize("curve_side", ["lcc-sim", "detect"])
def test_curve_on_one_side_only_fails_clearly_and_nothing_passes(
    site: Path, tmp_path: Path, curve_side: str
) -> None:
    telemetry, feedback = endpoint(), endpoint()
    keys = ["--curve-keys", str(site)]
    sim = subprocess.Popen(
        sim_argv(telemetry, feedback, *(keys if curve_side == "lcc-sim" else []), duration_s=0),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        err = _detect_fails(
            detect_argv(telemetry, feedback, tmp_path, *(keys if curve_side == "detect" else []))
        )
    finally:
        sim.send_signal(signal.SIGTERM)
    summary, _ = finish(sim)
    assert summary["feedback_received"] == 0
    if curve_side == "lcc-sim":
        assert "requires CURVE: start this tool with --curve-keys" in err
        assert summary["link_security"]["refused_total"] >= 1
    else:
        assert "does not use CURVE" in err
        assert summary["link_security"] == {"curve": False}


def test_lcc_sim_refuses_a_non_loopback_bind_without_keys() -> None:
    # Refused before anything is bound: the address is never exposed.
    proc = subprocess.run(
        sim_argv("tcp://0.0.0.0:5999", endpoint(), duration_s=0.2), capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 2
    assert "refusing to bind tcp://0.0.0.0:5999 without --curve-keys" in proc.stderr
    assert "--insecure" in proc.stderr


def test_lcc_sim_on_loopback_without_keys_warns_once() -> None:
    proc = subprocess.run(
        sim_argv(endpoint(), endpoint(), duration_s=0.2),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert proc.stderr.count("no --curve-keys") == 1
    assert json.loads(proc.stdout)["link_security"] == {"curve": False}


def test_the_observer_stream_admits_read_keys_only_from_the_allow_list(site: Path, tmp_path: Path) -> None:
    telemetry, feedback, observer = endpoint(), endpoint(), endpoint()
    argv = detect_argv(telemetry, feedback, tmp_path, "--curve-keys", str(site))
    argv[argv.index("--observer-endpoint") + 1] = observer
    detect = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ctx: zmq.Context[Any] = zmq.Context()
    detector_public = read_public_key(site / "detector.key")
    subs = {}
    public, secret = zmq.curve_keypair()
    for name, pair in (
        ("reader", read_key_pair(site / "observer.key_secret")),
        ("stranger", KeyPair(public, secret)),
    ):
        s = ctx.socket(zmq.SUB)
        s.linger = 0
        secure_client(s, pair, detector_public)
        s.subscribe(b"lcc.")
        s.connect(observer)
        subs[name] = s
    try:
        time.sleep(1.0)  # let both handshakes finish before frames flow
        subprocess.run(
            sim_argv(
                telemetry, feedback, "--curve-keys", str(site), "--wait-for-subscriber", "30", duration_s=2
            ),
            capture_output=True,
            timeout=90,
            check=True,
        )
        assert subs["reader"].poll(2000), "the read key got no observer feedback"
        assert not subs["stranger"].poll(0), "an unknown key got observer feedback"
    finally:
        for s in subs.values():
            s.close(0)
        ctx.term()
        detect.send_signal(signal.SIGTERM)
        _, err = detect.communicate(timeout=30)
    assert "refused observer connection" in err


@pytest.mark.parametrize("sender", ["read_key", "command_key"])
def test_replay_as_an_lcc_stand_in_admits_feedback_from_command_keys_only(
    site: Path, tmp_path: Path, sender: str
) -> None:
    from laserguard import sim as simulation

    recording = tmp_path / "telemetry.csv"
    simulation.generate(20 / 3600, rate_hz=2.0, lccs=1, seed=3, fault_mix="none").to_csv(
        recording, index=False
    )
    telemetry, feedback = endpoint(), endpoint()
    # --wait-subscribers also waits for a feedback connection, which a read key never gets.
    wait = ["--wait-subscribers", "1"] if sender == "command_key" else []
    replay = subprocess.Popen(
        [
            sys.executable, "-m", "laserguard.cli", "replay", str(recording), "--speed", "5",
            "--telemetry-endpoint", telemetry, "--feedback-endpoint", feedback, *wait,
            "--drain-s", "1", "--curve-keys", str(site),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    key = read_key_pair(site / ("observer.key_secret" if sender == "read_key" else "detector.key_secret"))
    answered = run_rogue(
        replay,
        telemetry,
        feedback,
        read_key_pair(site / "observer.key_secret"),
        key,
        read_public_key(site / "lcc.key"),
    )
    summary, _ = finish(replay)
    assert answered >= 25  # of 40 frames; without the wait the rogue may miss the first ones
    if sender == "command_key":
        assert summary["feedback_received"] >= 30
        return
    assert summary["feedback_received"] == 0
    assert summary["link_security"]["refused"]["feedback"]["read_role"] >= 1
