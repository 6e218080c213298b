"""Which refused frames a service names in its log: the first of each kind from each sender.

A sender that speaks another protocol version keeps sending, 10 or 1,000 frames a second: every
frame is counted in the service's invalid-frame metric, but its log names the problem once per
(topic, reason) instead of burying everything else under one line per frame.
"""

from __future__ import annotations

MAX_REMEMBERED = 4096  # (topic, reason) pairs; a stream of garbage topics cannot grow it without bound


class RefusalLog:
    """``first(topic, reason)`` is True the first time that pair is refused (then it is logged)."""

    def __init__(self, max_remembered: int = MAX_REMEMBERED) -> None:
        self._seen: set[tuple[bytes, str]] = set()
        self._max = max_remembered

    def first(self, topic: bytes, reason: str) -> bool:
        key = (bytes(topic[:64]), reason)
        if key in self._seen:
            return False
        if len(self._seen) >= self._max:
            self._seen.clear()  # forget rather than grow: at worst a known sender is named again
        self._seen.add(key)
        return True
