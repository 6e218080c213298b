"""A local disk spool for write batches the database could not take.

Records are BSON documents appended to segment files (``spool-<n>.bson``) and fsynced before
``append`` returns, so an acknowledged record survives a crash. Segments are only ever
appended to; a fully replayed segment is deleted. A torn record at the end of a segment (a
crash mid-append, never acknowledged) is ignored. Replay is at-least-once, which is safe
because every spooled write is idempotent (deterministic ``_id``s, guarded upserts).

Two threads use it: the store's receive loop appends what the writer cannot take yet (overload),
the writer thread replays and, for a batch older than everything spooled (the one it was writing),
prepends. A lock guards the counters and files; replay seals the active segment first, so it
never deletes a file that is still being appended to.
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bson

SEGMENT_PREFIX = "spool-"
SEGMENT_SUFFIX = ".bson"
DEFAULT_SEGMENT_BYTES = 8 * 1024 * 1024
# New spools number segments from here, leaving room below for prepended segments.
FIRST_SEGMENT = 100_000_000


class SpoolClosed(RuntimeError):
    """An append after ``close()`` (the store is exiting; its thread was abandoned)."""


_LENGTH = struct.Struct("<i")


def _segment_number(path: Path) -> int:
    return int(path.name[len(SEGMENT_PREFIX) : -len(SEGMENT_SUFFIX)])


def read_segment(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the complete records of one segment, stopping at a torn tail."""
    return _records(path.read_bytes())


def _records(data: bytes) -> Iterator[dict[str, Any]]:
    offset = 0
    while offset + _LENGTH.size <= len(data):
        (length,) = _LENGTH.unpack_from(data, offset)
        if length < 5 or offset + length > len(data):
            return
        yield bson.decode(data[offset : offset + length])
        offset += length


class WriteSpool:
    """Append-only, fsynced spool of records with a per-record weight (e.g. unit-samples)."""

    def __init__(
        self, directory: str | os.PathLike[str], *, segment_bytes: int = DEFAULT_SEGMENT_BYTES
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.segment_bytes = segment_bytes
        self._active: Path | None = None
        self._active_file: Any = None
        self.backlog_records = 0
        self.backlog_weight = 0
        self.backlog_bytes = 0
        # Records of the head segment already replayed (so a failed replay resumes, not repeats).
        self._head_path: Path | None = None
        self._head_done = 0
        self._lock = threading.RLock()
        self._closed = False
        for segment in self.segments():
            for record in read_segment(segment):
                self.backlog_records += 1
                self.backlog_weight += int(record.get("weight", 0))
            self.backlog_bytes += segment.stat().st_size

    def segments(self) -> list[Path]:
        found = [
            p
            for p in self.directory.glob(f"{SEGMENT_PREFIX}*{SEGMENT_SUFFIX}")
            if p.name[len(SEGMENT_PREFIX) : -len(SEGMENT_SUFFIX)].isdigit()
        ]
        return sorted(found, key=_segment_number)

    @property
    def empty(self) -> bool:
        return self.backlog_records == 0

    def _segment_path(self, number: int) -> Path:
        return self.directory / f"{SEGMENT_PREFIX}{number:09d}{SEGMENT_SUFFIX}"

    def _sync_directory(self) -> None:
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # a new file's name must survive a crash too
        finally:
            os.close(dir_fd)

    def _open_segment(self) -> None:
        existing = self.segments()
        number = _segment_number(existing[-1]) + 1 if existing else FIRST_SEGMENT
        self._active = self._segment_path(number)
        self._active_file = open(self._active, "ab")  # kept open across appends
        self._sync_directory()

    def _close_active(self) -> None:
        if self._active_file is not None:
            self._active_file.close()
        self._active_file = None
        self._active = None

    def append(self, record: dict[str, Any], weight: int) -> None:
        """Durably append ``record``; ``weight`` (e.g. its unit-sample count) feeds the backlog."""
        data = bson.encode({**record, "weight": int(weight)})
        with self._lock:
            if self._closed:
                raise SpoolClosed(f"spool {self.directory} is closed")
            if self._active_file is None or self._active_file.tell() + len(data) > self.segment_bytes:
                self._close_active()
                self._open_segment()
            self._active_file.write(data)
            self._active_file.flush()
            os.fsync(self._active_file.fileno())
            self.backlog_records += 1
            self.backlog_weight += int(weight)
            self.backlog_bytes += len(data)

    def prepend(self, record: dict[str, Any], weight: int) -> None:
        """Durably put ``record`` before everything spooled (a batch older than all of it): a new
        segment numbered below the head. Falls back to ``append`` below segment number 1."""
        data = bson.encode({**record, "weight": int(weight)})
        with self._lock:
            if self._closed:
                raise SpoolClosed(f"spool {self.directory} is closed")
            existing = self.segments()
            number = _segment_number(existing[0]) - 1 if existing else FIRST_SEGMENT
            if number < 1:
                self.append(record, weight)
                return
            path = self._segment_path(number)
            with open(path, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            self._sync_directory()
            self.backlog_records += 1
            self.backlog_weight += int(weight)
            self.backlog_bytes += len(data)

    def replay(self, apply: Callable[[dict[str, Any]], None], should_stop: Callable[[], bool] = bool) -> int:
        """Apply every spooled record in order; delete each segment once all of it is applied.

        If ``apply`` raises, replay stops there and the exception propagates; the remaining
        records stay spooled and the next replay resumes with the record that failed. Records
        appended meanwhile are applied by the next replay. ``should_stop()`` is asked between
        records. Returns the number of records applied.
        """
        applied = 0
        with self._lock:
            segments = self.segments()
        for segment in segments:
            with self._lock:  # appends hold the lock, so what is read here is whole records
                data = segment.read_bytes()
            first = self._head_done if segment == self._head_path else 0
            # Decoded one record at a time, not a whole 8 MB segment of batches up front.
            for index, record in enumerate(_records(data)):
                if index < first:
                    continue
                if should_stop():
                    return applied
                apply(record)
                with self._lock:
                    self._head_path, self._head_done = segment, index + 1
                    self.backlog_records -= 1
                    self.backlog_weight -= int(record.get("weight", 0))
                applied += 1
            with self._lock:
                if segment.stat().st_size != len(data):
                    return applied  # the active segment grew meanwhile: resume there next time
                if segment == self._active:
                    # Closed only once fully applied (a database that stays down must not leave
                    # one small segment per retry); the next append starts a fresh file.
                    self._close_active()
                segment.unlink()
                self._head_path, self._head_done = None, 0
                self.backlog_bytes -= len(data)
        return applied

    def close(self) -> None:
        with self._lock:
            self._close_active()
            self._closed = True
