"""The `laserguard store` service: ZMQ telemetry + feedback in, journaled MongoDB writes out.

Where the scores come from: the LCC binds its feedback SUB socket on :5555 and the detector's
PUB connects to it, so no third party can subscribe there (two SUB sockets cannot talk). The
store therefore subscribes to ``--feedback-endpoint`` (default ``tcp://127.0.0.1:5557``), which
`laserguard detect` binds on the *same* PUB socket it uses for the LCC (one ``bind`` call, every
feedback message reaches both peers at no extra cost). Recomputing the scores in the store was
rejected: it would duplicate the inference and could disagree with what the hardware was told
(e.g. across a hot model reload). Without a detector the store still writes all telemetry, just
without scores.

Threads: the main thread receives, decodes and joins frames; a writer thread applies batches
(journaled writes block for milliseconds) and spools them while the database is down, so a slow
database never makes the store drop frames from its ZMQ queue.
"""

from __future__ import annotations

import datetime as dt
import json
import queue
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from laserguard.storage.alarms import AlarmTracker, load_active_alarms
from laserguard.storage.batch_writer import BatchWriter, WriteBatch
from laserguard.storage.frames_collection import ensure_frames_collection
from laserguard.storage.metrics import StoreMetrics
from laserguard.storage.retention import RetentionConfig, enforce, ensure_retention
from laserguard.storage.rollup import MinuteRollup
from laserguard.storage.schema import CollectionNames, ensure_indexes
from laserguard.storage.spool import SpoolClosed, WriteSpool
from laserguard.storage.telemetry_store import TelemetryStore
from laserguard.storage.write_concern import write_concern_from_uri
from laserguard.wire.refusal_log import RefusalLog
from laserguard.wire.sequence_tracker import SequenceTracker

DEFAULT_TELEMETRY_ENDPOINT = "tcp://127.0.0.1:5556"
DEFAULT_FEEDBACK_ENDPOINT = "tcp://127.0.0.1:5557"
_STOP = object()
SPOOL_POLL_S = 0.05  # the writer's wait for a new batch while the spool holds some
# Under overload the latest state is refreshed this rarely: replaying its upserts would slow the drain.
SPILLED_LATEST_EVERY_S = 5.0


@dataclass
class StoreConfig:
    mongo_uri: str
    db_name: str
    spool_dir: Path
    telemetry_endpoint: str = DEFAULT_TELEMETRY_ENDPOINT
    feedback_endpoint: str | None = DEFAULT_FEEDBACK_ENDPOINT
    lcc_ids: Sequence[int] = ()
    flush_interval_s: float = 0.1
    join_window_s: float = 0.5
    raise_after: int = 3
    clear_after: int = 5
    retry_interval_s: float = 1.0
    server_timeout_ms: int = 2000
    security: Any = None  # laserguard.wire.link_security.LinkSecurity: CURVE on both subscriptions
    # Overload: frames older than join_window_s + spill_after_s while the writer is busy go to the
    # disk spool (memory stays bounded); on SIGTERM the writer gets stop_timeout_s, then what it
    # still holds is spooled.
    spill_after_s: float = 1.0
    stop_timeout_s: float = 3.0
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    maintenance_interval_s: float = 10.0  # minute summaries and the store's own deletes
    frames_collection: str = "auto"  # auto: time-series where the server really makes one


def mongo_client(uri: str, server_timeout_ms: int) -> Any:
    import pymongo

    # Short server selection: a down database must fail a write quickly so the batch is spooled.
    # connectTimeoutMS is also the heartbeat timeout: kept long, or a server busy with a big
    # journaled batch is declared down and the pool (with the batch in flight) is cancelled.
    return pymongo.MongoClient(
        uri,
        serverSelectionTimeoutMS=server_timeout_ms,
        connectTimeoutMS=20_000,
        socketTimeoutMS=60_000,
    )


class BatchWriterThread:
    """Applies batches from a queue on its own thread and replays the spool whenever it holds
    anything. The receive loop submits a batch only while this thread is idle and the spool empty,
    so a submitted batch is older than anything spooled after it (``write(older_than_spool=True)``)."""

    def __init__(self, writer: BatchWriter) -> None:
        self.writer = writer
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=256)
        self.error: BaseException | None = None
        self.in_flight: WriteBatch | None = None  # taken from the queue, neither written nor spooled yet
        self._outstanding = 0  # submitted batches not finished (only the receive loop submits)
        self._replaying = False
        self._abandon = threading.Event()
        self._thread = threading.Thread(target=self._run, name="laserguard-store-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def idle(self) -> bool:
        """Nothing submitted is unfinished and no spool replay is running."""
        return self._outstanding == 0 and not self._replaying

    def submit(self, batch: WriteBatch) -> None:
        self._outstanding += 1
        self.queue.put(batch)

    def _replay(self) -> None:
        self._replaying = True
        try:
            self.writer.replay(self._abandon.is_set)
        finally:
            self._replaying = False

    def _run(self) -> None:
        try:
            while not self._abandon.is_set():
                spooled = not self.writer.spool.empty and self.writer.may_try
                try:
                    item = self.queue.get(timeout=SPOOL_POLL_S if spooled else self.writer.retry_interval_s)
                except queue.Empty:
                    if not self.writer.spool.empty and self.writer.may_try:
                        self._replay()
                    continue
                if item is _STOP:
                    if not self.writer.spool.empty:
                        self._replay()
                    return
                self.in_flight = item
                try:
                    self.writer.write(item, older_than_spool=True)
                finally:
                    self.in_flight = None
                    self._outstanding -= 1
        except SpoolClosed:
            return  # abandoned at exit: what it held was spooled by the receive loop
        except BaseException as exc:  # reported by the main thread, which then exits non-zero
            self.error = exc

    def stop(self, timeout_s: float | None = None) -> bool:
        """Let it finish what was submitted and replay the spool, for at most ``timeout_s``;
        True if it finished. If not, it is told to stop between batches (``abandon``)."""
        self.queue.put(_STOP)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            self._abandon.set()
            return False
        return True

    def unfinished(self) -> list[WriteBatch]:
        """Batches it holds that are neither written nor spooled, oldest first (after ``stop``)."""
        held = [] if self.in_flight is None else [self.in_flight]
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return held
            if item is not _STOP:
                held.append(item)

    def is_alive(self) -> bool:
        return self._thread.is_alive()


class StoreService:
    def __init__(self, config: StoreConfig, metrics: StoreMetrics, channel_names: Sequence[str]) -> None:
        self.config = config
        self.metrics = metrics
        self.names = CollectionNames()
        self.client = mongo_client(config.mongo_uri, config.server_timeout_ms)
        self.db = self.client[config.db_name]
        self.alarms = AlarmTracker(config.raise_after, config.clear_after)
        self.write_concern = write_concern_from_uri(config.mongo_uri)
        # Indexes and the alarm state need the database; while it is down (the store may start
        # first) a thread retries and hands the restored alarms to the main loop (which owns them).
        self._restored_alarms: queue.Queue[list[tuple[int, int, str]]] = queue.Queue()
        self.database_prepared = threading.Event()
        self.retention_mode = "off"
        self.config_error = False
        self._maintenance = threading.Thread(
            target=self._maintain, name="laserguard-store-maintenance", daemon=True
        )
        self._preparer = threading.Thread(
            target=self._prepare_database, name="laserguard-store-prepare", daemon=True
        )
        self.store = TelemetryStore(
            channel_names,
            names=self.names,
            alarms=self.alarms,
            join_window_s=config.join_window_s,
            metrics=metrics,
        )
        self.writer = BatchWriter(
            self.db,
            WriteSpool(config.spool_dir),
            names=self.names,
            metrics=metrics,
            retry_interval_s=config.retry_interval_s,
            write_concern=self.write_concern,
            ready=self.database_prepared.is_set,
        )
        self.writer_thread = BatchWriterThread(self.writer)
        self.stop_event = threading.Event()
        self.started = time.monotonic()
        self._codec: Any = None
        self.sequences = SequenceTracker()
        self.refusals = RefusalLog()

    def _prepare_database(self) -> None:
        """Create the indexes and load the active alarms, retrying until the database answers."""
        from pymongo.errors import PyMongoError

        reported = False
        while not self.stop_event.is_set():
            try:
                timeseries = ensure_frames_collection(self.db, self.config.frames_collection, self.names)
                self.writer.frames_without_unique_id = timeseries
                ensure_indexes(self.db, self.names)
                self.retention_mode = ensure_retention(
                    self.db, self.config.retention, self.names, frames_timeseries=timeseries
                )
                active = load_active_alarms(self.db, self.names)
            except ValueError as exc:  # a frames collection or retention this server cannot have
                print(f"laserguard store: error: {exc}", file=sys.stderr, flush=True)
                self.config_error = True
                self.stop_event.set()
                return
            except PyMongoError as exc:
                if not reported:  # not fatal: writes spool until the database is there
                    # Down until a write succeeds: batches spilled meanwhile (the writer is still
                    # waiting for a server) must not report the database up.
                    self.writer.database_up = False
                    self.metrics.database_up.set(0)
                    print(
                        f"laserguard store: database not reachable at start ({type(exc).__name__}); "
                        "spooling, indexes and alarm state follow when it appears",
                        file=sys.stderr,
                        flush=True,
                    )
                    reported = True
                self.stop_event.wait(self.config.retry_interval_s)
                continue
            self._restored_alarms.put(active)
            self.database_prepared.set()
            print(
                f"laserguard store: frames in a {'time-series' if self.writer.frames_without_unique_id else 'plain'} "
                f"collection; retention {self.retention_mode}: raw frames "
                f"{self.config.retention.raw_s / 86400:g} d, minute summaries "
                f"{self.config.retention.summary_s / 86400:g} d, alarms kept",
                file=sys.stderr,
                flush=True,
            )
            if reported:
                print(
                    f"laserguard store: database reachable: indexes created, {len(active)} active alarm(s) restored",
                    file=sys.stderr,
                    flush=True,
                )
            return

    def _maintain(self) -> None:
        """Every maintenance_interval_s: summarise closed minutes (only while nothing is spooled,
        so a minute is summarised once all of it is stored) and, without TTL indexes, delete
        what is past its retention in bounded chunks."""
        from pymongo.errors import PyMongoError

        rollup = MinuteRollup(
            self.writer.db, self.names, metrics=self.metrics, lcc_ids=tuple(self.config.lcc_ids)
        )
        while not self.stop_event.wait(self.config.maintenance_interval_s):
            if not self.database_prepared.is_set() or not self.writer.spool.empty:
                continue
            now = dt.datetime.now(dt.UTC)
            try:
                rollup.run_once(now, self.stop_event.is_set)
                if self.retention_mode == "deletes":
                    for collection, n in enforce(
                        self.writer.db, self.config.retention, now, self.names
                    ).items():
                        self.metrics.retention_deleted.labels(collection=collection).inc(n)
            except PyMongoError as exc:  # the writer reports the database; try again next pass
                print(f"laserguard store: maintenance pass failed: {exc}", file=sys.stderr, flush=True)

    def _apply_restored_alarms(self) -> None:
        try:
            active = self._restored_alarms.get_nowait()
        except queue.Empty:
            return
        # An alarm this store raised meanwhile (database down) wins over the stored one for that unit.
        current = self.alarms.active_alarms()
        self.alarms.restore([(lcc, unit, event) for lcc, unit, event in active if (lcc, unit) not in current])

    def _subscribe(self, socket: Any, endpoint: str, topic_for: Any) -> None:
        import zmq

        socket.setsockopt(zmq.RCVHWM, 0)  # the store must not drop: let ZMQ queue while we write
        socket.setsockopt(zmq.LINGER, 0)
        if self.config.lcc_ids:
            for lcc_id in self.config.lcc_ids:
                socket.setsockopt(zmq.SUBSCRIBE, topic_for(lcc_id))
        else:
            socket.setsockopt(zmq.SUBSCRIBE, b"lcc.")
        socket.connect(endpoint)

    def _handle(self, kind: str, parts: list[bytes]) -> None:
        codec = self._codec
        if len(parts) != 2:
            self.metrics.invalid_frames.labels(kind=kind, reason="multipart").inc()
            return
        try:
            if kind == "telemetry":
                frame = codec.decode_telemetry(parts[1])
                self._track_sequence(int(frame.lcc_id), int(frame.boot_id), int(frame.seq))
                self.store.add_telemetry(
                    int(frame.lcc_id),
                    int(frame.seq),
                    int(frame.timestamp_ns),
                    frame.values,
                    int(frame.schema_id),
                    boot_id=int(frame.boot_id),
                    setpoint_a=frame.setpoint_a,
                    state=frame.state,
                )
            else:
                fb = codec.decode_feedback(parts[1])
                self.store.add_feedback(
                    int(fb.lcc_id),
                    int(fb.seq),
                    int(fb.timestamp_ns),
                    str(fb.model_version),
                    fb.scores,
                    fb.anomalous_units,
                    fb.top_features,
                    fb.top_weights,
                    boot_id=int(fb.boot_id),
                )
        except codec.FrameError as exc:
            self.metrics.invalid_frames.labels(kind=kind, reason=str(exc.reason)).inc()
            if self.refusals.first(parts[0], str(exc.reason)):  # once per topic and reason: counted anyway
                print(
                    f"laserguard store: {kind} frame on {bytes(parts[0][:40])!r} refused: {exc} "
                    f'(counted in laserguard_store_invalid_frames_total{{kind="{kind}",reason="{exc.reason}"}}; '
                    "further ones from this topic are not logged)",
                    file=sys.stderr,
                    flush=True,
                )
            return
        except ValueError as exc:
            # Decodable but inconsistent (channel count, unit count, unit index): named on stderr.
            self.metrics.invalid_frames.labels(kind=kind, reason="inconsistent").inc()
            print(f"laserguard store: {kind} frame rejected: {exc}", file=sys.stderr)
            return
        except (TypeError, IndexError, KeyError) as exc:
            # A frame we cannot handle must not stop the service: count it, name it, go on.
            self.metrics.invalid_frames.labels(kind=kind, reason="unhandled").inc()
            print(f"laserguard store: {kind} frame not handled: {type(exc).__name__}: {exc}", file=sys.stderr)
            return
        self.metrics.frames_received.labels(kind=kind).inc()

    def _track_sequence(self, lcc_id: int, boot_id: int, seq: int) -> None:
        """Count gaps within a boot and make an LCC restart (a new boot id) visible."""
        lcc = str(lcc_id)
        missed = self.sequences.observe(lcc_id, seq, boot_id)
        self.metrics.frame_gaps.labels(lcc=lcc).inc(missed)
        self.metrics.lcc_restarts.labels(lcc=lcc).inc(0)
        if self.sequences.last_restart is not None:
            old, new = self.sequences.last_restart
            self.metrics.lcc_restarts.labels(lcc=lcc).inc()
            print(
                f"laserguard store: lcc {lcc_id} restarted: boot {old:016x} -> {new:016x}, "
                f"first frame of the new boot is seq {seq}",
                file=sys.stderr,
            )

    def _flush(self, flush_all: bool = False) -> None:
        """Hand the due writes to the writer, or to the spool behind what it holds already."""
        direct = self.writer_thread.idle and self.writer.spool.empty
        batch = self.store.take_batch(
            flush_all=flush_all, latest_at_most_every_s=0.0 if direct else SPILLED_LATEST_EVERY_S
        )
        if batch is None:
            return
        if direct:
            self.writer_thread.submit(batch)
        else:
            self.writer.spill(batch)

    def _flush_due(self, now: float) -> bool:
        """True if a batch was formed. The writer idle with nothing spooled: the usual batch. The
        writer behind (busy, or draining the spool): frames wait in memory only until they are
        spill_after_s past the join window, then go to the spool, so memory stays bounded."""
        if self.writer_thread.idle and self.writer.spool.empty:
            self._flush()
            return True
        if self.store.oldest_pending_age(now) >= self.config.join_window_s + self.config.spill_after_s:
            self._flush()
            return True
        return False

    def _shutdown_writer(self) -> None:
        """SIGTERM/SIGINT: everything received goes to the database or the spool within about
        stop_timeout_s. A writer still busy then (a slow database) is abandoned between batches and
        the batches it held are spooled in front of the rest: a write that completes anyway is
        replayed as a duplicate, which the deterministic ids make harmless."""
        started = time.monotonic()
        self._flush(flush_all=True)
        if self.writer_thread.is_alive() and not self.writer_thread.stop(self.config.stop_timeout_s):
            held = self.writer_thread.unfinished()
            for batch in reversed(held):
                self.writer.spool.prepend(batch.to_record(), weight=batch.unit_samples)
            print(
                f"laserguard store: writer still busy after {self.config.stop_timeout_s:g} s: "
                f"{sum(b.unit_samples for b in held)} unit-samples it held spooled, "
                f"{self.writer.spool.backlog_weight} unit-samples in the spool for the next start",
                file=sys.stderr,
                flush=True,
            )
        self.metrics.spool_backlog_unit_samples.set(self.writer.spool.backlog_weight)
        print(
            f"laserguard store: stopped in {time.monotonic() - started:.1f} s, "
            f"spool backlog {self.writer.spool.backlog_weight} unit-samples",
            file=sys.stderr,
            flush=True,
        )

    def run(self) -> int:
        import zmq

        from laserguard.wire import codec

        self._codec = codec
        context: zmq.Context[Any] = zmq.Context.instance()
        security = self.config.security
        telemetry = context.socket(zmq.SUB)
        if security is not None:
            security.secure_client(telemetry, self.config.telemetry_endpoint, "LCC telemetry", "lcc")
        self._subscribe(telemetry, self.config.telemetry_endpoint, codec.telemetry_topic)
        sockets: dict[Any, str] = {telemetry: "telemetry"}
        if self.config.feedback_endpoint:
            feedback = context.socket(zmq.SUB)
            if security is not None:
                security.secure_client(feedback, self.config.feedback_endpoint, "observer stream", "observer")
            self._subscribe(feedback, self.config.feedback_endpoint, codec.feedback_topic)
            sockets[feedback] = "feedback"
        poller = zmq.Poller()
        for socket in sockets:
            poller.register(socket, zmq.POLLIN)
        self._preparer.start()
        self._maintenance.start()
        # The state a restarted store resumes from: wait briefly so the first frames see it.
        self.database_prepared.wait(timeout=self.config.server_timeout_ms / 1000 + 1)
        self._apply_restored_alarms()
        self.writer_thread.start()
        next_flush = time.monotonic() + self.config.flush_interval_s
        status = 0
        try:
            while not self.stop_event.is_set():
                # At least 5 ms: while the writer is busy a due flush waits, and must not spin.
                timeout_ms = max(5, int((next_flush - time.monotonic()) * 1000))
                for socket, _ in poller.poll(timeout=min(timeout_ms, 100)):
                    # Drain what is queued on this socket, bounded so the flush timer still runs.
                    for _ in range(1000):
                        try:
                            parts = socket.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        self._handle(sockets[socket], parts)
                self._apply_restored_alarms()
                # Form the next batch only once the writer has finished the previous one: under
                # load batches grow instead of queueing, so per-batch costs (latest state) amortise.
                now = time.monotonic()
                if now >= next_flush and self._flush_due(now):
                    next_flush = time.monotonic() + self.config.flush_interval_s
                problem = security.problem() if security is not None else None
                if problem is not None:  # a wrong key never heals by reconnecting
                    print(f"laserguard store: error: {problem}", file=sys.stderr)
                    status = 2
                    break
                if not self.writer_thread.is_alive():
                    print(f"laserguard store: writer failed: {self.writer_thread.error!r}", file=sys.stderr)
                    status = 1
                    break
            if self.config_error:
                status = 2
        finally:
            # Clean shutdown: everything received is written (or spooled) before we exit.
            self.stop_event.set()
            self._shutdown_writer()
            self.writer.close()
            for socket in sockets:
                socket.close(linger=0)
            if security is not None:
                security.close()
            self.client.close()
        return status

    def stats(self) -> dict[str, Any]:
        elapsed = time.monotonic() - self.started
        totals = self.writer.totals
        return {
            "unit_samples_written": totals.inserted,
            "duplicate_unit_samples": totals.duplicates,
            "rejected_writes": totals.rejected,
            "spool_backlog_unit_samples": self.writer.spool.backlog_weight,
            "elapsed_s": round(elapsed, 3),
            "unit_samples_per_s": round(totals.inserted / elapsed, 1) if elapsed > 0 else 0.0,
        }

    def write_stats(self, path: Path) -> None:
        path.write_text(json.dumps(self.stats(), indent=2) + "\n")
