"""A local disk spool for write batches the database could not take.

Records are BSON documents appended to segment files (``spool-<n>.bson``) and fsynced before
``append`` returns, so an acknowledged record survives a crash. Segments are only ever
appended to; a fully replayed segment is deleted. A torn record at the end of a segment (a
crash mid-append, never acknowledged) is ignored. Replay is at-least-once, which is safe
because every spooled write is idempotent (deterministic ``_id``s, guarded upserts).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bson

SEGMENT_PREFIX = "spool-"
SEGMENT_SUFFIX = ".bson"
DEFAULT_SEGMENT_BYTES = 8 * 1024 * 1024
_LENGTH = struct.Struct("<i")


def _segment_number(path: Path) -> int:
    return int(path.name[len(SEGMENT_PREFIX) : -len(SEGMENT_SUFFIX)])


def read_segment(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the complete records of one segment, stopping at a torn tail."""
    data = path.read_bytes()
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
        self._head_done = 0
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

    def _open_segment(self) -> None:
        existing = self.segments()
        number = _segment_number(existing[-1]) + 1 if existing else 1
        self._active = self.directory / f"{SEGMENT_PREFIX}{number:09d}{SEGMENT_SUFFIX}"
        self._active_file = open(self._active, "ab")  # kept open across appends
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the new file's name must survive a crash too
        finally:
            os.close(dir_fd)

    def _close_active(self) -> None:
        if self._active_file is not None:
            self._active_file.close()
        self._active_file = None
        self._active = None

    def append(self, record: dict[str, Any], weight: int) -> None:
        """Durably append ``record``; ``weight`` (e.g. its unit-sample count) feeds the backlog."""
        data = bson.encode({**record, "weight": int(weight)})
        if self._active_file is None or self._active_file.tell() + len(data) > self.segment_bytes:
            self._close_active()
            self._open_segment()
        self._active_file.write(data)
        self._active_file.flush()
        os.fsync(self._active_file.fileno())
        self.backlog_records += 1
        self.backlog_weight += int(weight)
        self.backlog_bytes += len(data)

    def replay(self, apply: Callable[[dict[str, Any]], None]) -> int:
        """Apply every spooled record in order; delete each segment once all of it is applied.

        If ``apply`` raises, replay stops there and the exception propagates; the remaining
        records stay spooled and the next replay resumes with the record that failed.
        Returns the number of records applied.
        """
        applied = 0
        for segment in self.segments():
            size = segment.stat().st_size
            records = list(read_segment(segment))
            for index in range(self._head_done, len(records)):
                apply(records[index])
                self._head_done = index + 1
                self.backlog_records -= 1
                self.backlog_weight -= int(records[index].get("weight", 0))
                applied += 1
            if segment == self._active:
                # Closed only once fully applied (a database that stays down must not leave one
                # small segment per retry); the next append starts a fresh file.
                self._close_active()
            segment.unlink()
            self._head_done = 0
            self.backlog_bytes -= size
        return applied

    def close(self) -> None:
        self._close_active()
