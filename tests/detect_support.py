"""`laserguard detect` under test: a fake LCC's sockets and a detect process (real ZMQ on 127.0.0.1)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import zmq

from laserguard import sim
from laserguard.wire import codec
from service_support import endpoint, free_port, laserguard_process, metrics, wait_for

BOOT = 0x5EED_B007_0000_0001  # boot id of the frames the tests send (one LCC start)


@dataclass
class FakeLcc:
    """The LCC's two sockets (it binds both, like the real card)."""

    telemetry: zmq.Socket[bytes]
    feedback: zmq.Socket[bytes]
    telemetry_endpoint: str
    feedback_endpoint: str

    def send(self, payload: bytes, lcc_id: int = 1) -> None:
        self.telemetry.send_multipart([codec.telemetry_topic(lcc_id), payload])

    def receive(self, timeout_ms: int = 2000) -> codec.Feedback | None:
        if not self.feedback.poll(timeout_ms):
            return None
        topic, payload = self.feedback.recv_multipart()
        feedback = codec.decode_feedback(payload)
        assert topic == codec.feedback_topic(feedback.lcc_id)
        return feedback


@pytest.fixture
def lcc() -> Iterator[FakeLcc]:
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    sub = ctx.socket(zmq.SUB)
    for s in (pub, sub):
        s.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    telemetry, feedback = endpoint(), endpoint()
    pub.bind(telemetry)
    sub.bind(feedback)
    yield FakeLcc(pub, sub, telemetry, feedback)
    pub.close(0)
    sub.close(0)
    ctx.term()


@dataclass
class Detector:
    process: subprocess.Popen[bytes]
    metrics_port: int
    log: Path


def start_detect(
    telemetry: str,
    feedback: str,
    tmp_path: Path,
    model: Path | None = None,
    name: str = "detect",
    extra: tuple[str, ...] = (),
) -> Detector:
    port = free_port()
    args = [
        "detect",
        "--telemetry-endpoint", telemetry,
        "--feedback-endpoint", feedback,
        "--observer-endpoint", endpoint(),
        "--metrics-port", str(port),
        "--baseline-state-dir", str(tmp_path / "baselines"),
    ]  # fmt: skip
    if model is not None:
        args += ["--model", str(model)]
    args += extra
    log = tmp_path / f"{name}.log"
    process = laserguard_process(*args, log=log)
    wait_for(lambda: bool(metrics(port)) or process.poll() is not None, 30, "detect metrics endpoint")
    assert process.poll() is None, log.read_text()
    return Detector(process, port, log)


@pytest.fixture
def detector(lcc: FakeLcc, tmp_path: Path) -> Iterator[Detector]:
    d = start_detect(lcc.telemetry_endpoint, lcc.feedback_endpoint, tmp_path)
    yield d
    d.process.terminate()
    assert d.process.wait(10) == 0, d.log.read_text()


def sim_frames(n_frames: int, n_units: int = 32, seed: int = 0) -> np.ndarray:
    """(n_frames, n_units, channels) float32 of healthy units at 1 Hz."""
    frame = sim.generate(n_frames / 3600, rate_hz=1.0, lccs=1, units=n_units, seed=seed, fault_mix="none")
    values = frame[list(codec.CHANNELS)].to_numpy(np.float32)
    return values[: n_frames * n_units].reshape(n_frames, n_units, len(codec.CHANNELS)).copy()


def connect(
    link: FakeLcc,
    values: np.ndarray,
    time_ns: Callable[[int], int] | None = None,
    first_seq: int = 0,
    setpoint_a: np.ndarray | None = None,
) -> int:
    """Send frames until the detector answers (subscriptions take a moment: late joiner);
    returns the next sequence number. ``time_ns(seq)`` stamps the frames (default: now);
    ``setpoint_a``: the units' commanded currents the frames carry (default: unknown)."""
    seq = first_seq
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        stamp = time.time_ns() if time_ns is None else time_ns(seq)
        link.send(codec.encode_telemetry(1, seq, stamp, values, boot_id=BOOT, setpoint_a=setpoint_a))
        seq += 1
        if link.receive(100) is not None:
            while link.receive(200) is not None:
                pass
            return seq
    raise AssertionError("detect never answered")
