"""`laserguard roundtrip`: the loop's round-trip latency as a Prometheus histogram.

See laserguard.live.round_trip for what is measured and why the probe runs beside the LCC.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import Any

from laserguard.commands import curve_options

DEFAULT_PORT = 9103
# Round trips here are ~0.1-0.3 ms (design §9); the upper buckets catch a stalled detector.
LATENCY_BUCKETS = (
    50e-6, 100e-6, 200e-6, 400e-6, 800e-6, 1.6e-3, 3.2e-3, 6.4e-3, 12.8e-3, 25.6e-3, 51.2e-3, 0.1024, 0.4096,
)  # fmt: skip


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "roundtrip",
        help="measure the loop's round trip (LCC send -> detector feedback) for Prometheus (default :9103)",
        description="Subscribes to the LCC telemetry and the detector's observer feedback and times each "
        "frame from the LCC's send timestamp to its feedback. Run it on the LCC's host: it compares "
        "the LCC's clock with its own.",
    )
    p.add_argument("--telemetry-endpoint", default="tcp://127.0.0.1:5556", help="LCC telemetry PUB")
    p.add_argument(
        "--observer-endpoint", default="tcp://127.0.0.1:5557", help="detector's observer feedback PUB"
    )
    p.add_argument("--lcc", type=int, action="append", help="only these LCC ids (repeatable; default all)")
    p.add_argument("--timeout-s", type=float, default=2.0, help="feedback later than this counts as missing")
    p.add_argument(
        "--metrics-port", type=int, default=DEFAULT_PORT, help=f"Prometheus port ({DEFAULT_PORT}; 0: off)"
    )
    p.add_argument("--metrics-bind", default="127.0.0.1")
    curve_options.add_client_options(p, "observer", observer=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import zmq
    from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

    from laserguard.live.round_trip import RoundTripMatcher
    from laserguard.wire import codec

    if args.timeout_s <= 0:
        print(f"laserguard roundtrip: error: --timeout-s must be > 0, got {args.timeout_s}", file=sys.stderr)
        return 2
    try:
        security = curve_options.link_security(args, "roundtrip", connects_to=("lcc", "observer"))
    except curve_options.SecurityUsageError as exc:
        print(f"laserguard roundtrip: error: {exc}", file=sys.stderr)
        return 2
    registry = CollectorRegistry()
    latency = Histogram(
        "laserguard_roundtrip_seconds",
        "LCC telemetry send timestamp -> the detector's feedback received by this probe",
        ["lcc"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    missing = Counter(
        "laserguard_roundtrip_feedback_missing",
        "Frames with no feedback within --timeout-s",
        ["lcc"],
        registry=registry,
    )
    invalid = Counter(
        "laserguard_roundtrip_frames_invalid",
        "Messages the probe could not decode",
        ["kind", "reason"],
        registry=registry,
    )
    try:
        if args.metrics_port:
            start_http_server(args.metrics_port, addr=args.metrics_bind, registry=registry)
    except OSError as exc:
        print(f"laserguard roundtrip: error: port {args.metrics_port}: {exc}", file=sys.stderr)
        return 2

    matcher = RoundTripMatcher(int(args.timeout_s * 1e9))
    ctx = zmq.Context()
    telemetry = ctx.socket(zmq.SUB)
    feedback = ctx.socket(zmq.SUB)
    for sock, topic_for, endpoint, what, server in (
        (telemetry, codec.telemetry_topic, args.telemetry_endpoint, "LCC telemetry", "lcc"),
        (feedback, codec.feedback_topic, args.observer_endpoint, "observer stream", "observer"),
    ):
        sock.setsockopt(zmq.LINGER, 0)
        for lcc in args.lcc or [None]:
            sock.setsockopt(zmq.SUBSCRIBE, topic_for(lcc) if lcc is not None else b"lcc.")
        try:
            security.secure_client(sock, endpoint, what, server)
        except ValueError as exc:
            print(f"laserguard roundtrip: error: {exc}", file=sys.stderr)
            security.close()
            ctx.destroy(0)
            return 2
        sock.connect(endpoint)
    poller = zmq.Poller()
    poller.register(telemetry, zmq.POLLIN)
    poller.register(feedback, zmq.POLLIN)

    stop = False

    def on_stop(signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGTERM, on_stop)
    status = 0
    try:
        while not stop:
            problem = security.problem()  # a wrong key never heals by reconnecting
            if problem is not None:
                print(f"laserguard roundtrip: error: {problem}", file=sys.stderr)
                status = 2
                break
            for sock, _ in poller.poll(200):
                parts = sock.recv_multipart()
                received_ns = time.time_ns()  # same clock as the LCC's send timestamp (system clock)
                kind = "telemetry" if sock is telemetry else "feedback"
                if len(parts) != 2:
                    invalid.labels(kind, "bad_multipart").inc()
                    continue
                try:
                    if sock is telemetry:
                        frame = codec.decode_telemetry(parts[1])
                        lcc_id = frame.lcc_id
                        seconds = matcher.telemetry(
                            lcc_id, frame.boot_id, frame.seq, frame.timestamp_ns, received_ns
                        )
                    else:
                        answer = codec.decode_feedback(parts[1])
                        lcc_id = answer.lcc_id
                        seconds = matcher.feedback(lcc_id, answer.boot_id, answer.seq, received_ns)
                    if seconds is not None:
                        latency.labels(str(lcc_id)).observe(seconds)
                except codec.FrameError as exc:
                    invalid.labels(kind, exc.reason).inc()
            for lcc_id, count in matcher.expire(time.time_ns()).items():
                missing.labels(str(lcc_id)).inc(count)
    finally:
        telemetry.close(0)
        feedback.close(0)
        security.close()
        ctx.term()
    return status
