"""Bare echo: the floor under lcc-sim's round trip, with no scoring at all.

    python benchmarks/echo_floor.py --telemetry-endpoint tcp://127.0.0.1:5556 \
        --feedback-endpoint tcp://127.0.0.1:5555

For every telemetry frame it receives (pyzmq SUB, connected to lcc-sim's telemetry PUB) it
immediately publishes one valid feedback frame (pyzmq PUB, connected to lcc-sim's feedback SUB)
that echoes the frame's lcc id, boot id and seq, with every unit healthy (score 1.0), no
anomalous units and no explanations (top_k 0). Per frame: one validating decode
(`codec.decode_telemetry`) and one encode (`codec.encode_feedback`) of arrays cached per unit
count, a few microseconds in all. It waits like `laserguard detect` does (zmq poll with a
200 ms timeout, then drains with NOBLOCK receives), so the idle CPU sleeps the same way, and it
stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import time

import numpy as np
import numpy.typing as npt
import zmq

from laserguard.wire import codec

POLL_TIMEOUT_MS = 200  # as detect's default (non --busy-poll) loop
MODEL_VERSION = "echo-floor"

# scores, anomalous_units, top_features, top_weights of codec.encode_feedback
HealthyArrays = tuple[
    npt.NDArray[np.float32], npt.NDArray[np.uint32], npt.NDArray[np.int16], npt.NDArray[np.float32]
]


class Answers:
    """Feedback arrays for an all-healthy answer, built once per unit count (not per frame)."""

    def __init__(self) -> None:
        self._by_units: dict[int, HealthyArrays] = {}

    def encode(self, frame: codec.TelemetryFrame) -> bytes:
        arrays = self._by_units.get(frame.n_units)
        if arrays is None:
            arrays = (
                np.ones(frame.n_units, np.float32),  # >= 0: healthy
                np.zeros(0, np.uint32),  # no anomalous units
                np.zeros((frame.n_units, 0), np.int16),  # top_k 0: no explanations
                np.zeros((frame.n_units, 0), np.float32),
            )
            self._by_units[frame.n_units] = arrays
        scores, anomalous, top_features, top_weights = arrays
        return codec.encode_feedback(
            frame.lcc_id,
            frame.seq,
            time.time_ns(),
            MODEL_VERSION,
            scores,
            anomalous,
            top_features,
            top_weights,
            frame.n_features,
            boot_id=frame.boot_id,
        )


def serve(telemetry_endpoint: str, feedback_endpoint: str, hwm: int) -> int:
    """Echo until SIGTERM/SIGINT; returns the number of frames answered."""
    stop = False

    def on_stop(signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGTERM, on_stop)

    ctx = zmq.Context()
    sub, pub = ctx.socket(zmq.SUB), ctx.socket(zmq.PUB)
    answers, answered = Answers(), 0
    try:
        for sock, hwm_option in ((sub, zmq.RCVHWM), (pub, zmq.SNDHWM)):
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(hwm_option, hwm)
        sub.setsockopt(zmq.SUBSCRIBE, b"lcc.")
        sub.connect(telemetry_endpoint)
        pub.connect(feedback_endpoint)
        while not stop:
            if not sub.poll(POLL_TIMEOUT_MS):
                continue
            while True:  # drain everything queued before polling again, as detect does
                try:
                    parts = sub.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                if len(parts) != 2:
                    continue
                try:
                    frame = codec.decode_telemetry(parts[1])
                except codec.FrameError:
                    continue
                try:
                    pub.send_multipart(
                        [codec.feedback_topic(frame.lcc_id), answers.encode(frame)], zmq.NOBLOCK
                    )
                except zmq.Again:
                    continue  # lcc-sim counts the frame as unanswered
                answered += 1
    finally:
        sub.close(0)
        pub.close(0)
        ctx.term()
    return answered


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--telemetry-endpoint", required=True, help="lcc-sim's telemetry PUB to connect to")
    parser.add_argument("--feedback-endpoint", required=True, help="lcc-sim's feedback SUB to connect to")
    parser.add_argument("--hwm", type=int, default=100_000, help="ZMQ high-water mark per socket")
    args = parser.parse_args()
    serve(args.telemetry_endpoint, args.feedback_endpoint, args.hwm)


if __name__ == "__main__":
    main()
