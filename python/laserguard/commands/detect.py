"""`laserguard detect`: the hot path. Telemetry in, exact forest scores, feedback out.

It never touches the database: a slow or absent database cannot delay the hardware.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from typing import Any

import numpy as np

log = logging.getLogger("laserguard.detect")

DEFAULT_TELEMETRY = "tcp://127.0.0.1:5556"
DEFAULT_FEEDBACK = "tcp://127.0.0.1:5555"
DEFAULT_OBSERVER = "tcp://127.0.0.1:5557"
MODEL_POLL_S = 1.0
GAUGE_REFRESH_S = 0.1


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("detect", help="score live telemetry and publish anomaly feedback")
    p.add_argument("--model", help="model file (.lgf); default: the shipped default model")
    p.add_argument("--telemetry-endpoint", default=DEFAULT_TELEMETRY, help="LCC telemetry PUB to connect to")
    p.add_argument(
        "--feedback-endpoint",
        action="append",
        help=f"LCC feedback SUB to connect to (repeatable; default {DEFAULT_FEEDBACK})",
    )
    p.add_argument(
        "--observer-endpoint",
        default=DEFAULT_OBSERVER,
        help="endpoint this detector binds to publish the same feedback for observers (store, dashboard); "
        "'none' to disable",
    )
    p.add_argument("--lcc", type=int, action="append", help="only these LCC ids (repeatable; default all)")
    p.add_argument("--metrics-port", type=int, default=9101, help="Prometheus port (0 disables)")
    p.add_argument("--metrics-bind", default="127.0.0.1")
    p.add_argument(
        "--busy-poll",
        action="store_true",
        help="spin instead of sleeping between frames: one core at 100%% for a lower, steadier round trip "
        "(an idle core's deep sleep empties its caches; see docs/benchmarks.md)",
    )
    p.add_argument("--hwm", type=int, default=1000, help="ZMQ high-water mark (messages) per socket")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import zmq
    from prometheus_client import start_http_server

    from laserguard.live.detector import score_frame
    from laserguard.live.metrics import DetectMetrics
    from laserguard.live.model_holder import ModelHolder
    from laserguard.model.default_model import default_model_path
    from laserguard.wire import codec
    from laserguard.wire.sequence_tracker import SequenceTracker

    logging.basicConfig(level=args.log_level, format="%(asctime)s detect %(levelname)s %(message)s")
    try:
        holder = ModelHolder(args.model or default_model_path(), codec.CHANNELS)
    except (OSError, ValueError) as exc:
        print(f"laserguard detect: error: {exc}", file=sys.stderr)
        return 2

    metrics = DetectMetrics()
    metrics.model.info(
        {"version": holder.model.version, "path": holder.path, "trees": str(holder.model.n_trees)}
    )
    if args.metrics_port:
        start_http_server(args.metrics_port, addr=args.metrics_bind, registry=metrics.registry)

    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    pub = ctx.socket(zmq.PUB)
    observer = ctx.socket(zmq.PUB) if args.observer_endpoint != "none" else None
    for sock in (sub, pub, observer):
        if sock is not None:
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.SNDHWM if sock is not sub else zmq.RCVHWM, args.hwm)
    for lcc in args.lcc or [None]:
        sub.setsockopt(zmq.SUBSCRIBE, codec.telemetry_topic(lcc) if lcc is not None else b"lcc.")
    sub.connect(args.telemetry_endpoint)
    for endpoint in args.feedback_endpoint or [DEFAULT_FEEDBACK]:
        pub.connect(endpoint)
    if observer is not None:
        observer.bind(args.observer_endpoint)

    stop = False
    reload_requested = False

    def on_stop(signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    def on_hup(signum: int, _frame: object) -> None:
        nonlocal reload_requested
        reload_requested = True

    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGHUP, on_hup)

    sequences = SequenceTracker()
    next_gauge_update: dict[int, float] = {}
    next_model_check = time.monotonic() + MODEL_POLL_S
    log.info(
        "serving model %s (%d trees) on %s -> %s",
        holder.model.version,
        holder.model.n_trees,
        args.telemetry_endpoint,
        args.feedback_endpoint or [DEFAULT_FEEDBACK],
    )
    scored = 0
    try:
        while not stop:
            # Reloading happens between frames; frames arriving meanwhile wait in the socket.
            now = time.monotonic()
            if reload_requested or now >= next_model_check:
                if reload_requested or holder.file_changed():
                    error = holder.reload()
                    metrics.reloads.labels("refused" if error else "ok").inc()
                    if error is None:
                        metrics.model.info(
                            {
                                "version": holder.model.version,
                                "path": holder.path,
                                "trees": str(holder.model.n_trees),
                            }
                        )
                reload_requested = False
                next_model_check = now + MODEL_POLL_S
            if not sub.poll(0 if args.busy_poll else 200):
                continue
            while True:  # drain everything queued before polling again
                try:
                    parts = sub.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                if len(parts) != 2:
                    metrics.invalid.labels("bad_multipart").inc()
                    continue
                start = time.perf_counter()
                try:
                    result = score_frame(holder.model, parts[1])
                except codec.FrameError as exc:
                    metrics.invalid.labels(exc.reason).inc()
                    log.warning("rejected frame on %r: %s", parts[0][:40], exc)
                    continue
                if parts[0] != codec.telemetry_topic(result.lcc_id):
                    metrics.invalid.labels("topic_mismatch").inc()
                    continue
                topic = codec.feedback_topic(result.lcc_id)
                for sock in (pub, observer):
                    if sock is not None:
                        try:
                            sock.send_multipart([topic, result.feedback], zmq.NOBLOCK)
                        except zmq.Again:
                            metrics.invalid.labels("feedback_dropped").inc()
                elapsed = time.perf_counter() - start
                lcc = str(result.lcc_id)
                metrics.inference.observe(elapsed)
                metrics.frames.labels(lcc).inc()
                metrics.feedback.labels(lcc).inc()
                resets_before = sequences.resets.get(result.lcc_id, 0)
                missed = sequences.observe(result.lcc_id, result.seq, result.boot_id)
                # inc(0) too: the series exists from the first frame, so rate() and alerts see the first gap.
                metrics.gaps.labels(lcc).inc(missed)
                metrics.restarts.labels(lcc).inc(0)
                if sequences.resets.get(result.lcc_id, 0) > resets_before:
                    metrics.resets.labels(lcc).inc()
                if sequences.last_restart is not None:
                    metrics.restarts.labels(lcc).inc()
                    log.warning(
                        "lcc %d restarted: boot %016x -> %016x, first frame of the new boot is seq %d",
                        result.lcc_id,
                        sequences.last_restart[0],
                        sequences.last_restart[1],
                        result.seq,
                    )
                metrics.missed_before_first.labels(lcc).set(
                    sequences.missed_before_first.get(result.lcc_id, 0)
                )
                if result.nonfinite_values:
                    metrics.nonfinite.labels(lcc).inc(result.nonfinite_values)
                if result.anomalous_units.size:
                    metrics.anomalous_units.labels(lcc).inc(int(result.anomalous_units.size))
                # Per-unit gauges are a "latest value" for scrapes every few seconds; refreshing
                # them 10x a second per LCC keeps 32 label lookups off most frames.
                now_s = time.monotonic()
                if now_s >= next_gauge_update.get(result.lcc_id, 0.0):
                    next_gauge_update[result.lcc_id] = now_s + GAUGE_REFRESH_S
                    for unit, value in enumerate(np.asarray(result.decision)):
                        metrics.unit_score.labels(lcc, str(unit)).set(float(value))
                scored += 1
    finally:
        for sock in (sub, pub, observer):
            if sock is not None:
                sock.close(0)
        ctx.term()
        log.info(
            "stopped after %d frames (%d gaps, %d LCC restarts)",
            scored,
            sequences.total_gaps,
            sequences.total_restarts,
        )
    return 0
