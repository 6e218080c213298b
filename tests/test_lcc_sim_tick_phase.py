"""lcc-sim's send phases: each LCC at its own seeded offset into the period (unsynchronised, like a
real plant) or all aligned in one burst; real processes and sockets, order and counts only."""

from __future__ import annotations

import json
from typing import Any

import zmq

from laserguard.wire import codec
from test_lcc_sim import Endpoints, run_sim, sim_process

LCCS = 6
TICKS = 20


def received_in_order(*args: str) -> tuple[list[codec.TelemetryFrame], dict[str, Any]]:
    """Every frame of a short run as the subscriber got them, and lcc-sim's summary."""
    ep = Endpoints()
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"lcc.")
    sub.setsockopt(zmq.RCVTIMEO, 5000)
    run_args = ("--lccs", str(LCCS), "--units", "4", "--rate-hz", "20", "--duration-s", str(TICKS / 20))
    try:
        with sim_process(*run_args, "--seed", "3", "--wait-for-subscriber", "20", *args, *ep.args()) as proc:
            sub.connect(ep.telemetry)
            frames = []
            while len(frames) < LCCS * TICKS:
                try:
                    frames.append(codec.decode_telemetry(sub.recv_multipart()[1]))
                except zmq.Again:
                    break
            stdout, stderr = proc.communicate(timeout=30)
    finally:
        sub.close(0)
        ctx.term()
    assert proc.returncode == 0, stderr
    return frames, json.loads(stdout)


def test_each_lcc_sends_at_its_own_seeded_phase_in_the_same_order_every_period() -> None:
    frames, summary = received_in_order()
    phases = summary["tick_phase_s"]
    assert summary["config"]["tick_phase"] == "random"
    assert len(phases) == LCCS and len(set(phases)) == LCCS  # spread: no two LCCs share an instant
    assert all(0.0 <= p < 1 / 20 for p in phases)
    assert summary["send_slots"] == LCCS
    assert summary["ticks"] == TICKS and summary["frames_sent"] == LCCS * TICKS
    # Within each period the LCCs send in the order of their phases, never as one burst by id.
    by_phase = [lcc for _, lcc in sorted((p, 1 + i) for i, p in enumerate(phases))]
    # This seed's order is not the id order (else the order check below would prove nothing).
    assert by_phase != sorted(by_phase)
    expected = [(lcc, seq) for seq in range(TICKS) for lcc in by_phase]
    assert [(f.lcc_id, f.seq) for f in frames] == expected


def test_phases_are_drawn_from_the_seed() -> None:
    first, second = (
        run_sim("--lccs", "5", "--duration-s", "0.1", "--seed", "3", "--drain-s", "0") for _ in range(2)
    )
    other = run_sim("--lccs", "5", "--duration-s", "0.1", "--seed", "4", "--drain-s", "0")
    for run in (first, second, other):
        assert run.returncode == 0, run.stderr
    phases = [json.loads(run.stdout)["tick_phase_s"] for run in (first, second, other)]
    assert phases[0] == phases[1]
    assert phases[0] != phases[2]


def test_aligned_sends_every_lcc_in_one_burst_per_period() -> None:
    frames, summary = received_in_order("--tick-phase", "aligned")
    assert summary["config"]["tick_phase"] == "aligned"
    assert summary["tick_phase_s"] == [0.0] * LCCS and summary["send_slots"] == 1
    assert [(f.lcc_id, f.seq) for f in frames] == [
        (lcc, seq) for seq in range(TICKS) for lcc in range(1, LCCS + 1)
    ]
    # One instant per period: every LCC's frame of a tick carries the same timestamp.
    for seq in range(TICKS):
        assert len({f.timestamp_ns for f in frames if f.seq == seq}) == 1


def test_bad_tick_phase_is_refused_naming_the_value() -> None:
    run = run_sim("--tick-phase", "staggered")
    assert run.returncode == 2
    assert "--tick-phase expects random or aligned, got 'staggered'" in run.stderr
