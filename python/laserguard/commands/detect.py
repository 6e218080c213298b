"""`laserguard detect`: the hot path. Telemetry in, v2 unit scores, feedback out.

It never touches the database: a slow or absent database cannot delay the hardware. Each
unit's baseline lives in --baseline-state-dir (saved atomically, read back on start).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import signal
import sys
import time
from collections import deque
from typing import Any

from laserguard.commands import curve_options

log = logging.getLogger("laserguard.detect")

DEFAULT_TELEMETRY = "tcp://127.0.0.1:5556"
DEFAULT_FEEDBACK = "tcp://127.0.0.1:5555"
DEFAULT_OBSERVER = "tcp://127.0.0.1:5557"
MODEL_POLL_S = 1.0
GAUGE_REFRESH_S = 0.1
BASELINE_GAUGE_REFRESH_S = 1.0
ANSWER_BATCH = 64  # frames answered before their accounting (bounds the deferred work)


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
    p.add_argument(
        "--no-warm-up",
        action="store_true",
        help="do not dry-run each LCC's last frame just before its next one is due (by default detect does, "
        "about 50 us per frame and nothing kept, because an idle 100 ms evicts the model and the baselines "
        "from the caches and the frame would cost about 4x as much; see docs/benchmarks.md)",
    )
    p.add_argument("--hwm", type=int, default=1000, help="ZMQ high-water mark (messages) per socket")
    p.add_argument(
        "--baseline-state-dir",
        default=None,
        metavar="DIR",
        help="where each LCC's unit baselines are saved and read back on start "
        "(default: the user state dir, laserguard/baselines; 'none': keep them in memory only)",
    )
    p.add_argument(
        "--baseline-save-s",
        type=float,
        default=30.0,
        help="save baselines this often (default 30 s; also when a unit finishes learning and on exit)",
    )
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    # The LCC's CURVE client with a command key; the observer stream's CURVE server (same pair).
    curve_options.add_client_options(p, "detector")
    curve_options.add_server_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import zmq
    from prometheus_client import Counter, start_http_server

    from laserguard.live.arrival_forecast import ArrivalForecast
    from laserguard.live.baseline_store import LiveBaselines, default_state_dir
    from laserguard.live.detector import ScoredFrame, score_frame
    from laserguard.live.metrics import DetectMetrics
    from laserguard.live.model_holder import ModelHolder
    from laserguard.model.default_model import default_model_path
    from laserguard.wire import codec
    from laserguard.wire.link_security import OBSERVER_DOMAIN
    from laserguard.wire.refusal_log import RefusalLog
    from laserguard.wire.sequence_tracker import SequenceTracker

    logging.basicConfig(level=args.log_level, format="%(asctime)s detect %(levelname)s %(message)s")
    if not args.baseline_save_s > 0:
        print(
            f"laserguard detect: error: --baseline-save-s must be > 0, got {args.baseline_save_s}",
            file=sys.stderr,
        )
        return 2
    state_dir = args.baseline_state_dir or default_state_dir()
    try:
        holder = ModelHolder(args.model or default_model_path(), codec.CHANNELS)
        baselines = LiveBaselines(
            holder.model, None if state_dir == "none" else state_dir, args.baseline_save_s
        )
    except (OSError, ValueError) as exc:
        print(f"laserguard detect: error: {exc}", file=sys.stderr)
        return 2

    try:
        security = curve_options.link_security(
            args,
            "detect",
            binds=[] if args.observer_endpoint == "none" else [args.observer_endpoint],
            on_refused=lambda _socket, reason: observer_refused.labels(reason).inc(),
        )
    except curve_options.SecurityUsageError as exc:
        print(f"laserguard detect: error: {exc}", file=sys.stderr)
        return 2

    metrics = DetectMetrics()
    # Observers (store, dashboard) whose key the observer stream refused, by reason.
    observer_refused = Counter(
        "laserguard_detect_observer_refused",
        "Connections to the observer stream refused by CurveZMQ/ZAP",
        ["reason"],
        registry=metrics.registry,
    )
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
    feedback_endpoints = args.feedback_endpoint or [DEFAULT_FEEDBACK]
    try:
        security.secure_client(sub, args.telemetry_endpoint, "LCC telemetry")
        security.secure_client(pub, " and ".join(feedback_endpoints), "LCC feedback")
        if observer is not None:
            security.secure_server(observer, OBSERVER_DOMAIN)  # the ZAP handler runs before the bind
    except (ValueError, zmq.ZMQError) as exc:
        print(f"laserguard detect: error: {exc}", file=sys.stderr)
        security.close()
        for sock in (sub, pub, observer):
            if sock is not None:
                sock.close(0)
        ctx.term()
        return 2
    sub.connect(args.telemetry_endpoint)
    for endpoint in feedback_endpoints:
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
    refusals = RefusalLog()
    forecast = ArrivalForecast()
    last_payload: dict[int, bytes] = {}  # per LCC, for the warm-up before its next frame
    next_gauge_update: dict[int, float] = {}
    next_baseline_update: dict[int, float] = {}
    learning_before: dict[int, int] = {}
    # LCCs whose baselines are to be saved, in order. Saved one per gap between frames: N LCCs that
    # finish learning together once cost N saves of every LCC each (N^2 fsyncs, seconds at N=100).
    pending_saves: dict[int, None] = {}
    last_scored_s = 0.0  # monotonic: when the model last scored a frame (its nodes still cached)
    next_model_check = time.monotonic() + MODEL_POLL_S
    log.info(
        "serving model %s (%d trees) on %s -> %s",
        holder.model.version,
        holder.model.n_trees,
        args.telemetry_endpoint,
        args.feedback_endpoint or [DEFAULT_FEEDBACK],
    )
    Answered = tuple[ScoredFrame, float, float, bytes]  # result, arrival, seconds to answer, payload

    def answer(parts: list[bytes]) -> Answered | None:
        """Score one message and publish its feedback; None (counted by reason) if it is refused."""
        arrived_s = time.monotonic()
        if len(parts) != 2:
            metrics.invalid.labels("bad_multipart").inc()
            return None
        start = time.perf_counter()
        try:
            result = score_frame(baselines, parts[1])
        except codec.FrameError as exc:
            metrics.invalid.labels(exc.reason).inc()
            _log_refusal(refusals, parts[0], exc)
            return None
        except ValueError as exc:  # a valid frame the model cannot score (other channel count)
            metrics.invalid.labels("model_mismatch").inc()
            log.warning("cannot score frame on %r: %s", parts[0][:40], exc)
            return None
        if parts[0] != codec.telemetry_topic(result.lcc_id):
            metrics.invalid.labels("topic_mismatch").inc()
            return None
        topic = codec.feedback_topic(result.lcc_id)
        for sock in (pub, observer):
            if sock is not None:
                try:
                    sock.send_multipart([topic, result.feedback], zmq.NOBLOCK)
                except zmq.Again:
                    metrics.invalid.labels("feedback_dropped").inc()
        return result, arrived_s, time.perf_counter() - start, parts[1]

    scored = 0
    exit_status = 0
    # Everything built so far lives as long as the process: out of the collector's sight, a full
    # collection no longer walks it in the middle of a frame (measured in docs/benchmarks.md).
    gc.freeze()
    try:
        while not stop:
            # Reloading happens between frames; frames arriving meanwhile wait in the socket.
            now = time.monotonic()
            if reload_requested or now >= next_model_check:
                if reload_requested or holder.file_changed():
                    error = holder.reload()
                    metrics.reloads.labels("refused" if error else "ok").inc()
                    if error is None:
                        baselines.swap_model(holder.model)
                        metrics.model.info(
                            {
                                "version": holder.model.version,
                                "path": holder.path,
                                "trees": str(holder.model.n_trees),
                            }
                        )
                reload_requested = False
                next_model_check = now + MODEL_POLL_S
                baselines.apply_resets()
                # Not one gap between frames for a whole second: saved now, never put off for good.
                for lcc_id in pending_saves:
                    baselines.save(lcc_id)
                pending_saves = dict.fromkeys(baselines.take_due_saves(now))
                _count_baseline_events(metrics, baselines)
                # A wrong key or CURVE on one side only never heals by reconnecting: say so and stop.
                problem = security.problem()
                if problem is not None:
                    log.error("%s", problem)
                    exit_status = 2
                    break
            if pending_saves and not sub.poll(0):
                lcc_id = next(iter(pending_saves))
                del pending_saves[lcc_id]
                baselines.save(lcc_id)
                continue
            timeout_ms = 0 if args.busy_poll else 200
            warm_up = None
            if not (args.busy_poll or args.no_warm_up):
                still_warm_s = last_scored_s + forecast.min_gap_s - time.monotonic()
                if still_warm_s > 0:
                    # Any LCC's frame moments ago kept the model cached: no warm-up, and no O(LCCs)
                    # forecast per frame (80 us at 100 LCCs, whose frames come every ms or so).
                    timeout_ms = min(timeout_ms, max(1, int(still_warm_s * 1000)))
                else:
                    warm_up = forecast.next_warm_up()
            if warm_up is not None:
                lcc_id, when = warm_up
                wait_s = when - time.monotonic()
                if wait_s < 0.001:  # due within zmq's 1 ms poll resolution: now, unless a frame waits
                    forecast.warmed(lcc_id)
                    if not sub.poll(0) and lcc_id in last_payload:
                        with contextlib.suppress(ValueError):  # the model was swapped for another shape
                            score_frame(baselines, last_payload[lcc_id], dry_run=True)
                            metrics.warm_ups.inc()
                    continue
                timeout_ms = min(timeout_ms, int(wait_s * 1000))
            if not sub.poll(timeout_ms):
                continue
            # Answer whatever is queued before accounting for any frame: with two LCCs sending
            # together, the second answer does not wait for the first one's metrics and gauges.
            answered: deque[Answered] = deque()
            while True:
                while len(answered) < ANSWER_BATCH:
                    try:
                        parts = sub.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    entry = answer(parts)
                    if entry is not None:
                        answered.append(entry)
                if not answered:
                    last_scored_s = time.monotonic()
                    break
                result, arrived_s, elapsed, payload = answered.popleft()
                forecast.observe(result.lcc_id, arrived_s)
                last_payload[result.lcc_id] = payload
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
                if result.anomalous:
                    metrics.anomalous_units.labels(lcc).inc(result.anomalous)
                    metrics.flagged_by_stage.labels(lcc, "fleet").inc(result.by_fleet)
                    metrics.flagged_by_stage.labels(lcc, "baseline").inc(result.by_baseline)
                # Per-unit gauges are a "latest value" for scrapes every few seconds; refreshing
                # them 10x a second per LCC keeps 32 label lookups off most frames.
                now_s = time.monotonic()
                if now_s >= next_gauge_update.get(result.lcc_id, 0.0):
                    next_gauge_update[result.lcc_id] = now_s + GAUGE_REFRESH_S
                    for unit, value in enumerate(baselines.frames.last_scores(result.lcc_id)):
                        metrics.unit_score.labels(lcc, str(unit)).set(float(value))
                    for unit, value in enumerate(baselines.frames.last_baseline(result.lcc_id)):
                        if value == value:  # NaN while learning: no deviation yet
                            metrics.unit_deviation.labels(lcc, str(unit)).set(1.0 - float(value))
                # A unit that just finished learning: save now, its baseline is what a restart needs.
                learning_now = result.learning
                changed = learning_now != learning_before.get(result.lcc_id)
                if learning_now < learning_before.get(result.lcc_id, learning_now):
                    pending_saves[result.lcc_id] = None
                learning_before[result.lcc_id] = learning_now
                if changed or now_s >= next_baseline_update.get(result.lcc_id, 0.0):
                    next_baseline_update[result.lcc_id] = now_s + BASELINE_GAUGE_REFRESH_S
                    _baseline_gauges(metrics, lcc, baselines.stage(result.lcc_id), result.timestamp_ns / 1e9)
                scored += 1
    finally:
        baselines.save_all()
        for sock in (sub, pub, observer):
            if sock is not None:
                sock.close(0)
        security.close()
        ctx.term()
        log.info(
            "stopped after %d frames (%d gaps, %d LCC restarts)",
            scored,
            sequences.total_gaps,
            sequences.total_restarts,
        )
    return exit_status


def _log_refusal(refusals: Any, topic: bytes, exc: Any) -> None:
    """Name the first refusal of each kind per topic; every one is counted in the metric anyway."""
    if not refusals.first(topic, exc.reason):
        log.debug("rejected frame on %r: %s", topic[:40], exc)
    elif exc.reason == "unknown_version":
        # An LCC that was not upgraded with this detector: nothing it sends will be scored.
        log.error(
            "refusing every frame on %r until its sender is upgraded: %s "
            '(counted in laserguard_detect_frames_invalid_total{reason="unknown_version"}; logged once)',
            topic[:40],
            exc,
        )
    else:
        log.warning(
            "rejected frame on %r: %s (further %s rejects on this topic are counted, not logged)",
            topic[:40],
            exc,
            exc.reason,
        )


def _count_baseline_events(metrics: Any, baselines: Any) -> None:
    events = baselines.take_events()
    metrics.baseline_resets.inc(events.resets)
    metrics.baseline_state_errors.labels("unusable_state").inc(events.unusable_state)
    metrics.baseline_state_errors.labels("save_failed").inc(events.save_errors)


def _baseline_gauges(metrics: Any, lcc: str, stage: Any, now_s: float) -> None:
    from laserguard.live.baseline_store import baseline_summary

    summary = baseline_summary(stage, now_s)
    metrics.units_learning.labels(lcc).set(sum(1 for u in summary if u.phase != "ready"))
    for u in summary:
        metrics.baseline_age.labels(lcc, str(u.unit)).set(float("nan") if u.age_s is None else u.age_s)
