"""lcc-sim as a real process over real ZMQ sockets on 127.0.0.1 (random free ports)."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq

from laserguard import sim
from laserguard.wire import codec


def lcc_sim_path() -> str:
    beside_python = Path(sys.executable).with_name("lcc-sim")
    found = str(beside_python) if beside_python.exists() else shutil.which("lcc-sim")
    if found is None:
        pytest.fail("lcc-sim is not installed (pip install . puts it next to the interpreter)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Endpoints:
    def __init__(self) -> None:
        self.telemetry = f"tcp://127.0.0.1:{free_port()}"
        self.feedback = f"tcp://127.0.0.1:{free_port()}"

    def args(self) -> list[str]:
        return ["--telemetry-endpoint", self.telemetry, "--feedback-endpoint", self.feedback]


def run_sim(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [lcc_sim_path(), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@contextmanager
def sim_process(*args: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [lcc_sim_path(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class Detector(threading.Thread):
    """A stand-in detector on real sockets: answers every frame through the codec, flagging
    units for which `rule(values)` is true, with the two most-deviating channels as top features."""

    def __init__(self, endpoints: Endpoints, rule: Callable[[np.ndarray], np.ndarray]) -> None:
        super().__init__(daemon=True)
        self.ctx = zmq.Context()
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.connect(endpoints.telemetry)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"lcc.")
        self.pub = self.ctx.socket(zmq.PUB)
        self.pub.connect(endpoints.feedback)
        self.rule = rule
        self.stop = threading.Event()
        self.frames: list[codec.TelemetryFrame] = []

    def run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.sub, zmq.POLLIN)
        while not self.stop.is_set():
            if not poller.poll(50):
                continue
            _topic, payload = self.sub.recv_multipart()
            frame = codec.decode_telemetry(payload)
            self.frames.append(frame)
            flagged = np.flatnonzero(self.rule(frame.values))
            deviation = np.abs(frame.values - np.nanmedian(frame.values, axis=0))
            top = np.argsort(-np.nan_to_num(deviation), axis=1)[:, :2].astype(np.int16)
            weights = np.take_along_axis(np.nan_to_num(deviation), top.astype(np.intp), axis=1).astype(
                np.float32
            )
            scores = np.where(self.rule(frame.values), -0.1, 0.1).astype(np.float32)
            self.pub.send_multipart(
                [
                    codec.feedback_topic(frame.lcc_id),
                    codec.encode_feedback(
                        frame.lcc_id,
                        frame.seq,
                        0,
                        "test-rule",
                        scores,
                        flagged,
                        top,
                        weights,
                        boot_id=frame.boot_id,
                    ),
                ]
            )

    def close(self) -> None:
        self.stop.set()
        self.join(5)
        self.sub.close(0)
        self.pub.close(0)
        self.ctx.term()


def test_help_lists_every_flag() -> None:
    out = run_sim("--help")
    assert out.returncode == 0
    for flag in (
        "--lccs", "--units", "--rate-hz", "--duration-s", "--seed", "--faults", "--fault-mix",
        "--telemetry-endpoint", "--feedback-endpoint", "--summary-json", "--log-level", "--derate-on-anomaly",
        "--profile", "--schedule",
    ):  # fmt: skip
        assert flag in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate-hz", "fast"], "--rate-hz expects a number, got 'fast'"),
        (["--units", "0"], "--units 0 is outside"),
        (["--fault-mix", "chaos"], "unknown fault mix 'chaos'"),
        (["--log-level", "loud"], "--log-level expects debug, info, warning or error, got 'loud'"),
        (["--bogus"], "unknown option '--bogus'"),
        (["--param", "warp=9"], "unknown parameter 'warp'"),
        (["--profile", "factory"], "unknown operating profile 'factory'"),
        (["--param", "ramp_share=2"], "ramp_share = 2.000000 is above 1"),
        (["--param", "ambient_c"], "--param expects NAME=VALUE, got 'ambient_c'"),
    ],
)
def test_bad_arguments_exit_2_naming_the_value(args: list[str], message: str) -> None:
    out = run_sim(*args, "--duration-s", "0.1", *Endpoints().args())
    assert out.returncode == 2
    assert message in out.stderr


def test_bad_fault_spec_names_the_entry(tmp_path: Path) -> None:
    spec = tmp_path / "f.json"
    spec.write_text(json.dumps([{"lcc": 1, "unit": 40, "type": "facet_damage"}]))
    out = run_sim("--faults", str(spec), "--duration-s", "0.1", *Endpoints().args())
    assert out.returncode == 2
    assert "fault 0: unit 40 is not below the unit count 32" in out.stderr


def test_bad_schedule_names_the_entry_and_value(tmp_path: Path) -> None:
    schedule = tmp_path / "s.json"
    schedule.write_text(
        json.dumps({"changes": [{"lcc": 1, "unit": 2, "type": "power_off", "at_s": 1, "ramp_s": 3}]})
    )
    out = run_sim("--schedule", str(schedule), "--duration-s", "0.1", *Endpoints().args())
    assert out.returncode == 2
    assert "change 0 (power_off): unknown key 'ramp_s'" in out.stderr
    schedule.write_text(
        json.dumps([{"lcc": 1, "unit": 2, "type": "setpoint_step", "at_s": 1, "setpoint_a": 20}])
    )
    out = run_sim("--schedule", str(schedule), "--duration-s", "0.1", *Endpoints().args())
    assert out.returncode == 2
    assert (
        "change 0 (setpoint_step): setpoint_a 20.000000 A is outside the range 4.000000..8.800000 A"
        in out.stderr
    )


def test_python_subscriber_gets_contiguous_frames_at_the_requested_rate() -> None:
    ep = Endpoints()
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, codec.telemetry_topic(1))
    sub.setsockopt(zmq.RCVTIMEO, 5000)
    try:
        run_args = ("--lccs", "2", "--units", "8", "--rate-hz", "200", "--duration-s", "2")
        with sim_process(*run_args, "--wait-for-subscriber", "20", *ep.args()) as proc:
            sub.connect(ep.telemetry)
            frames = []
            while True:
                try:
                    topic, payload = sub.recv_multipart()
                except zmq.Again:
                    break
                assert topic == b"lcc.1.telemetry"
                frames.append(codec.decode_telemetry(payload))
            summary = json.loads(proc.communicate(timeout=30)[0])
    finally:
        sub.close(0)
        ctx.term()
    assert proc.returncode == 0
    # --wait-for-subscriber closes the late-joiner gap: every frame from seq 0 arrives.
    assert [f.seq for f in frames] == list(range(400))  # 2 s at 200 Hz
    assert summary["ticks"] == 400 and summary["frames_sent"] == 800 and summary["frames_dropped"] == 0
    assert summary["telemetry_subscriptions"] == 1
    assert all(f.lcc_id == 1 and f.values.shape == (8, 11) and f.schema_id == 1 for f in frames)
    period_ns = np.median(np.diff([f.timestamp_ns for f in frames]))
    assert 0.5 * 5e6 < period_ns < 1.5 * 5e6  # paced at 200 Hz, not as fast as possible


def test_lcc_sim_frames_are_the_physics_of_sim_generate() -> None:
    ep = Endpoints()
    detector = Detector(ep, lambda v: np.zeros(len(v), dtype=bool))
    detector.start()
    try:
        out = run_sim(
            *("--lccs", "1", "--units", "4", "--rate-hz", "50", "--duration-s", "2", "--seed", "9"),
            *("--wait-for-subscriber", "20", *ep.args()),
        )
    finally:
        detector.close()
    assert out.returncode == 0, out.stderr
    assert [f.seq for f in detector.frames] == list(range(100))
    table = sim.generate(2 / 3600, rate_hz=50, lccs=1, units=4, seed=9, fault_mix="none")
    values = table[list(codec.CHANNELS)].to_numpy().reshape(-1, 4, 11)
    for frame in detector.frames:
        assert frame.values.tobytes() == values[frame.seq].tobytes()


def test_closed_loop_detection_latency_and_derating(tmp_path: Path) -> None:
    ep = Endpoints()
    spec = tmp_path / "faults.json"
    spec.write_text(json.dumps({"faults": [{"lcc": 1, "unit": 3, "type": "facet_damage", "start_s": 1.0}]}))
    summary_path = tmp_path / "summary.json"
    # Healthy units emit 6.5-8 W; facet damage at severity 1 leaves < 1 W.
    detector = Detector(ep, lambda v: ~(v[:, 2] > 3.0))
    detector.start()
    try:
        out = run_sim(
            *("--lccs", "1", "--units", "8", "--rate-hz", "100", "--duration-s", "3", "--faults", str(spec)),
            *("--derate-on-anomaly", "--derate-floor", "0.75", "--wait-for-subscriber", "20"),
            *("--summary-json", str(summary_path), *ep.args()),
        )
    finally:
        detector.close()
    assert out.returncode == 0, out.stderr
    summary = json.loads(summary_path.read_text())
    assert summary == json.loads(out.stdout)
    assert summary["feedback_received"] > 0
    lat = summary["round_trip_latency_us"]
    assert lat["count"] == summary["feedback_received"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    cod = summary["detection"]["per_fault_type"]["facet_damage"]
    assert cod["events"] == 1 and cod["true_positives"] == 1 and cod["false_negatives"] == 0
    assert 0 <= cod["time_to_first_flag_s"]["max"] < 1.0
    assert summary["detection"]["healthy"]["false_positives"] == 0
    # Flagged from t = 1 s: derated at ~1 s and ~2 s (at most once a second), then held at
    # the floor of 0.75 x 8 A.
    assert summary["derated"] == 2
    assert "lcc 1 unit 3 flagged" in out.stderr and "truth facet_damage" in out.stderr
    assert "unit 3 derated: drive current 8.000 A -> 6.400 A" in out.stderr
    assert "unit 3 derated: drive current 6.400 A -> 6.000 A" in out.stderr
    # The derating acts through the unit's setpoint: its frames say so from the next one on.
    derates = [c for c in summary["schedule"] if c["type"] == "derate"]
    assert [(c["unit"], c["setpoint_a"]) for c in derates] == [
        (3, pytest.approx(6.4)),
        (3, pytest.approx(6.0)),
    ]
    by_seq = {f.seq: f for f in detector.frames}
    first = by_seq[round(derates[0]["at_s"] * 100)]
    assert codec.UNIT_STATES[first.state[3]] == "derated" and first.setpoint_a[3] == pytest.approx(6.4)
    assert by_seq[first.seq - 1].state[3] == codec.UNIT_STATES.index("on")
    assert all(codec.UNIT_STATES[s] == "on" for s in first.state[:3])
    last = by_seq[max(by_seq)]
    assert last.setpoint_a[3] == pytest.approx(6.0) and last.values[3, 0] == pytest.approx(6.0, abs=0.05)


def test_bad_feedback_is_counted_by_reason_and_the_sim_keeps_running() -> None:
    ep = Endpoints()
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    try:
        with sim_process(
            "--lccs", "1", "--units", "4", "--rate-hz", "50", "--duration-s", "2", *ep.args()
        ) as proc:
            pub.connect(ep.feedback)
            good = codec.encode_feedback(
                1,
                10**9,  # an answer to another boot of this LCC: counted apart, not rejected
                0,
                "m",
                np.zeros(4, np.float32),
                [],
                np.zeros((4, 0), np.int16),
                np.zeros((4, 0), np.float32),
                boot_id=0,  # lcc-sim draws a random boot id; this is not it
            )
            for _ in range(40):  # repeated: the first ones are lost while the subscription propagates
                pub.send_multipart([codec.feedback_topic(1), b"JUNKJUNK" + good[8:]])
                pub.send_multipart([codec.feedback_topic(1), good[:30]])
                pub.send_multipart([codec.feedback_topic(1), good])
                pub.send_multipart([codec.feedback_topic(1)])
                threading.Event().wait(0.02)
            stdout, _ = proc.communicate(timeout=30)
    finally:
        pub.close(0)
        ctx.term()
    assert proc.returncode == 0
    summary = json.loads(stdout)
    rejected = summary["feedback_rejected"]
    assert rejected["bad_magic"] > 0 and rejected["truncated"] > 0 and rejected["bad_topic"] > 0
    assert (
        summary["feedback_other_boot"] > 0 and summary["feedback_received"] == summary["feedback_other_boot"]
    )
    assert summary["feedback_stale"] == 0 and summary["boot_id"] != 0
    assert summary["ticks"] == 100  # the run was not disturbed


def test_sigterm_stops_cleanly_with_a_summary() -> None:
    ep = Endpoints()
    with sim_process("--rate-hz", "20", "--log-level", "warning", *ep.args()) as proc:
        assert proc.stderr is not None
        ready = threading.Event()

        def subscribe() -> None:
            ctx = zmq.Context()
            sub = ctx.socket(zmq.SUB)
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            sub.setsockopt(zmq.RCVTIMEO, 10000)
            sub.connect(ep.telemetry)
            try:
                sub.recv_multipart()
                ready.set()
            finally:
                sub.close(0)
                ctx.term()

        waiter = threading.Thread(target=subscribe)
        waiter.start()
        waiter.join(15)
        assert ready.is_set(), "lcc-sim published nothing"
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    summary: dict[str, Any] = json.loads(stdout)
    assert summary["ticks"] > 0 and summary["frames_sent"] == 2 * summary["ticks"]


def test_fault_mix_run_reports_every_injected_type(tmp_path: Path) -> None:
    ep = Endpoints()
    detector = Detector(ep, lambda v: np.zeros(len(v), dtype=bool))
    detector.start()
    try:
        out = run_sim(
            *("--rate-hz", "100", "--duration-s", "3", "--fault-mix", "all", "--seed", "4", *ep.args()),
            "--log-level",
            "warning",
        )
    finally:
        detector.close()
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    injected = {f["type"] for f in summary["faults"]}
    assert injected == set(sim.FAULT_TYPES[1:])
    per_type = summary["detection"]["per_fault_type"]
    # The detector never flags, so every observed event is a false negative.
    assert set(per_type) <= injected and len(per_type) > 0
    for stats in per_type.values():
        assert stats["true_positives"] == 0 and stats["false_negatives"] == stats["events"]


def test_lab_profile_over_real_sockets_sends_each_units_setpoint_and_state(tmp_path: Path) -> None:
    """lcc-sim --profile lab (sped up so a few seconds hold many changes): every frame carries the
    setpoint and state sim.generate computes for the same seed, and the summary lists the schedule."""
    ep = Endpoints()
    fast = {
        "setpoint_changes_per_hour": 1800,
        "power_cycles_per_hour": 600,
        "tec_changes_per_hour": 300,
        "hvac_steps_per_hour": 600,
        "off_min_s": 0.5,
        "off_max_s": 1.5,
        "ramp_min_s": 0.5,
        "ramp_max_s": 2,
    }
    detector = Detector(ep, lambda v: np.zeros(len(v), dtype=bool))
    detector.start()
    summary_path = tmp_path / "summary.json"
    try:
        out = run_sim(
            *("--lccs", "1", "--units", "6", "--rate-hz", "50", "--duration-s", "6", "--seed", "4"),
            *("--profile", "lab", *(a for k, v in fast.items() for a in ("--param", f"{k}={v}"))),
            *("--wait-for-subscriber", "20", "--summary-json", str(summary_path), *ep.args()),
        )
    finally:
        detector.close()
    assert out.returncode == 0, out.stderr
    summary = json.loads(summary_path.read_text())
    assert summary["config"]["profile"] == "lab"
    assert [f.seq for f in detector.frames] == list(range(300))
    table = sim.generate(
        6 / 3600, rate_hz=50, lccs=1, units=6, seed=4, fault_mix="none", profile="lab", params=fast
    )
    assert summary["schedule"] == table.attrs["schedule"]
    kinds = {c["type"] for c in summary["schedule"]}
    assert {"setpoint_step", "setpoint_ramp", "power_off", "power_on", "ambient_step"} <= kinds
    values = table[list(codec.CHANNELS)].to_numpy().reshape(-1, 6, 11)
    setpoints = table.setpoint_a.to_numpy().reshape(-1, 6)
    states = table.state.cat.codes.to_numpy().reshape(-1, 6)
    assert list(table.state.cat.categories) == list(codec.UNIT_STATES)
    for frame in detector.frames:
        assert frame.values.tobytes() == values[frame.seq].tobytes()
        assert frame.setpoint_a.tobytes() == setpoints[frame.seq].tobytes()
        assert frame.state.tolist() == states[frame.seq].tolist()
    seen = {codec.UNIT_STATES[s] for f in detector.frames for s in f.state}
    assert {"on", "off", "warming"} <= seen
    # Every change is healthy: no fault, no labelled frame.
    assert summary["faults"] == [] and summary["detection"]["per_fault_type"] == {}
