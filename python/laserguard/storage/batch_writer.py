"""Execute write batches against MongoDB (journaled), spooling them to disk while it is down.

A batch is a list of plain write operations (so it can be spooled as BSON and replayed later).
Every operation is idempotent: inserts carry deterministic ``_id``s and guarded upserts only
move state forward, so duplicate-key errors (11000) mean "already stored" and are not failures.
Order is preserved: nothing new is written while older batches wait in the spool.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from laserguard.storage.frames_collection import existing_frame_ids
from laserguard.storage.schema import DEFAULT_NAMES, CollectionNames
from laserguard.storage.spool import WriteSpool

if TYPE_CHECKING:
    from laserguard.storage.metrics import StoreMetrics

DUPLICATE_KEY = 11000

WriteOp = dict[str, Any]


def insert_op(collection: str, document: dict[str, Any]) -> WriteOp:
    return {"c": collection, "op": "insert", "doc": document}


def update_op(collection: str, filter_: dict[str, Any], update: dict[str, Any], *, upsert: bool) -> WriteOp:
    return {"c": collection, "op": "update", "filter": filter_, "update": update, "upsert": upsert}


@dataclass
class WriteBatch:
    """Operations applied in order; ``unit_samples`` counts the unit-samples of its frame documents."""

    ops: list[WriteOp] = field(default_factory=list)
    unit_samples: int = 0

    def to_record(self) -> dict[str, Any]:
        return {"ops": self.ops, "unit_samples": self.unit_samples}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> WriteBatch:
        return cls(ops=list(record["ops"]), unit_samples=int(record.get("unit_samples", 0)))


@dataclass
class WriteOutcome:
    inserted: int = 0  # unit-samples newly stored (a frame document counts its n_units)
    duplicates: int = 0  # unit-samples that were already stored (replay or retry)
    rejected: int = 0  # operations the server refused for a reason other than a duplicate key


def _groups(ops: list[WriteOp]) -> Iterator[tuple[str, list[WriteOp]]]:
    """Consecutive runs of operations on the same collection (order across runs is kept)."""
    start = 0
    for index in range(1, len(ops) + 1):
        if index == len(ops) or ops[index]["c"] != ops[start]["c"]:
            yield ops[start]["c"], ops[start:index]
            start = index


def _pymongo_request(op: WriteOp) -> Any:
    from pymongo import InsertOne, UpdateOne

    if op["op"] == "insert":
        return InsertOne(op["doc"])
    if op["op"] == "update":
        return UpdateOne(op["filter"], op["update"], upsert=bool(op["upsert"]))
    raise ValueError(f"unknown write operation {op['op']!r} in batch")


class DatabaseUnavailable(RuntimeError):
    """The write could not reach the database (network, selection timeout, write concern)."""


class BatchWriter:
    """Writes batches with the given write concern (default ``w=1, j=True``); falls back to the spool and replays it on reconnect."""

    def __init__(
        self,
        db: Any,
        spool: WriteSpool,
        *,
        names: CollectionNames = DEFAULT_NAMES,
        metrics: StoreMetrics | None = None,
        retry_interval_s: float = 1.0,
        write_concern: Any = None,
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        from pymongo.write_concern import WriteConcern

        # From the URI (storage.write_concern) when the caller has one; journaled by default.
        self.write_concern = write_concern if write_concern is not None else WriteConcern(w=1, j=True)
        self.db = db.with_options(write_concern=self.write_concern)
        self.spool = spool
        self.names = names
        self.metrics = metrics
        self.retry_interval_s = retry_interval_s
        # False until the collections are set up: a write before that could land in a collection
        # the set-up then replaces (it once dropped a frame that way), so batches spool meanwhile.
        self.ready = ready
        self.database_up = True
        self._next_retry = 0.0
        self.totals = WriteOutcome()
        # Set when ``frames`` is a real time-series collection (no unique _id: frames_collection).
        self.frames_without_unique_id = False
        self._update_backlog()

    def _update_backlog(self) -> None:
        if self.metrics is not None:
            self.metrics.spool_backlog_unit_samples.set(self.spool.backlog_weight)
            self.metrics.spool_backlog_batches.set(self.spool.backlog_records)
            self.metrics.spool_backlog_bytes.set(self.spool.backlog_bytes)
            self.metrics.database_up.set(1 if self.database_up else 0)

    def _execute(self, batch: WriteBatch) -> WriteOutcome:
        from pymongo.errors import BulkWriteError, PyMongoError

        outcome = WriteOutcome()
        for collection, ops in _groups(batch.ops):
            if collection == self.names.frames and self.frames_without_unique_id:
                ops = self._drop_stored_frames(ops, outcome)
                if not ops:
                    continue
            # Unit-samples per operation: inserts of frame documents count their units.
            weights = [
                int(op["doc"].get("n_units", 1)) if op["op"] == "insert" else 0
                for op in ops
                if collection in (self.names.frames, self.names.telemetry)
            ]
            try:
                self.db[collection].bulk_write([_pymongo_request(op) for op in ops], ordered=False)
                outcome.inserted += sum(weights)
            except BulkWriteError as exc:
                details = exc.details
                if details.get("writeConcernErrors"):
                    raise DatabaseUnavailable(
                        f"write concern failed: {details['writeConcernErrors']}"
                    ) from exc
                errors = details.get("writeErrors", [])
                others = [e for e in errors if e.get("code") != DUPLICATE_KEY]
                if weights:
                    failed = {int(e.get("index", -1)) for e in errors}
                    outcome.inserted += sum(w for i, w in enumerate(weights) if i not in failed)
                    outcome.duplicates += sum(
                        weights[int(e["index"])] for e in errors if e.get("code") == DUPLICATE_KEY
                    )
                for error in others:
                    # A refused document would block the spool forever if retried: count and report it.
                    outcome.rejected += 1
                    print(
                        f"laserguard store: {collection}: write refused (code {error.get('code')}): "
                        f"{error.get('errmsg')}",
                        file=sys.stderr,
                    )
                    if self.metrics is not None:
                        self.metrics.write_errors.labels(reason=f"code_{error.get('code')}").inc()
            except PyMongoError as exc:
                raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return outcome

    def _drop_stored_frames(self, ops: list[WriteOp], outcome: WriteOutcome) -> list[WriteOp]:
        """A time-series ``frames`` has no unique _id: inserts of frames already there are dropped
        (and counted as duplicates) before the write instead of being refused by the server."""
        from pymongo.errors import PyMongoError

        inserts = [op["doc"] for op in ops if op["op"] == "insert"]
        try:
            stored = existing_frame_ids(self.db[self.names.frames], inserts)
        except PyMongoError as exc:
            raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}") from exc
        kept = []
        for op in ops:
            if op["op"] == "insert" and op["doc"]["_id"] in stored:
                outcome.duplicates += int(op["doc"].get("n_units", 1))
            else:
                kept.append(op)
        return kept

    def _account(self, outcome: WriteOutcome, batch: WriteBatch, seconds: float | None) -> None:
        self.totals.inserted += outcome.inserted
        self.totals.duplicates += outcome.duplicates
        self.totals.rejected += outcome.rejected
        if self.metrics is not None:
            self.metrics.unit_samples_written.inc(outcome.inserted)
            self.metrics.duplicate_unit_samples.inc(outcome.duplicates)
            self.metrics.batches_written.inc()
            if seconds is not None:
                self.metrics.write_latency.observe(seconds)

    def _mark_down(self, exc: Exception) -> None:
        if self.database_up:
            print(
                f"laserguard store: database unavailable, spooling to {self.spool.directory}: {exc}",
                file=sys.stderr,
            )
        self.database_up = False
        self._next_retry = time.monotonic() + self.retry_interval_s
        if self.metrics is not None:
            self.metrics.write_errors.labels(reason="unavailable").inc()

    def replay(self, should_stop: Any = None) -> bool:
        """Replay the spool; True when it is empty afterwards (the database took everything).
        ``should_stop()`` (optional) is asked between spooled batches."""
        if self.spool.empty:
            return True
        if not self.ready():
            return False

        def apply(record: dict[str, Any]) -> None:
            batch = WriteBatch.from_record(record)
            start = time.perf_counter()
            outcome = self._execute(batch)
            self._account(outcome, batch, time.perf_counter() - start)
            if self.metrics is not None:
                self.metrics.replayed_batches.inc()
            self._update_backlog()

        try:
            self.spool.replay(apply, should_stop or bool)
        except DatabaseUnavailable as exc:
            self._mark_down(exc)
            self._update_backlog()
            return False
        if not self.database_up:
            print("laserguard store: database back, spool replayed", file=sys.stderr)
        self.database_up = True
        self._update_backlog()
        return self.spool.empty

    def write(self, batch: WriteBatch, *, older_than_spool: bool = False) -> None:
        """Write ``batch`` now if the database is reachable and nothing older waits; else spool it.

        ``older_than_spool``: everything spooled is newer than ``batch`` (the store's receive loop
        spilled it while this batch waited or was written), so ``batch`` goes first: it is
        written without replaying the spool, and if that fails it is put in front of the spool.
        """
        if not batch.ops:
            return
        may_try = self.may_try
        if older_than_spool:
            if may_try and self._try_write(batch):
                return
            self.spool.prepend(batch.to_record(), weight=batch.unit_samples)
            if self.metrics is not None:
                self.metrics.spooled_batches.inc()
            self._update_backlog()
            return
        if may_try and self.replay() and self._try_write(batch):
            return
        self.spool.append(batch.to_record(), weight=batch.unit_samples)
        if self.metrics is not None:
            self.metrics.spooled_batches.inc()
        self._update_backlog()

    @property
    def may_try(self) -> bool:
        """The database is set up, and up or its retry interval has passed."""
        return self.ready() and (self.database_up or time.monotonic() >= self._next_retry)

    def spill(self, batch: WriteBatch) -> None:
        """Put ``batch`` behind everything spooled without trying the database (overload: the
        writer is busy, memory must stay bounded). Called from the receive loop."""
        if not batch.ops:
            return
        self.spool.append(batch.to_record(), weight=batch.unit_samples)
        if self.metrics is not None:
            self.metrics.spooled_batches.inc()
            self.metrics.spilled_batches.inc()
        self._update_backlog()

    def _try_write(self, batch: WriteBatch) -> bool:
        """True if the database took ``batch``; False (marked down) if it could not be reached."""
        start = time.perf_counter()
        try:
            outcome = self._execute(batch)
        except DatabaseUnavailable as exc:
            self._mark_down(exc)
            return False
        self.database_up = True
        self._account(outcome, batch, time.perf_counter() - start)
        self._update_backlog()
        return True

    def close(self) -> None:
        self.spool.close()
