"""Read a time range of a collection in short slices, so that no single query's result is large.

The embedded SecantusDB (0.7.0b3) builds a query's whole result in memory, as decoded
documents, before it sends the first batch, whatever ``limit``, ``batch_size`` or the sort say.
Measured on 36,000 frame documents (issue 17, AMD EPYC): ``find_one({})`` took 7 s and +1.2 GB
at peak; one minute at the soak's rate (12,000 frames) read in one query +340 MB at peak, of
which +120 MB stayed with the process (the soak's server grew ~150 MB/min that way); the same
minute read in 2 s slices +16 MB. So ``frames`` is read here one index range of about
``target_docs`` documents at a time, the slice length adapted to the density just seen. A slice
is at most ``max_slice_s`` (10 s) long: after an empty stretch the first slice that meets data
holds at most that much of it. On a real ``mongod`` this costs a few more round trips.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any


class TimeSlicedReader:
    """Documents with ``start <= doc[field] < end`` in slices of about ``target_docs`` each.

    ``reads`` counts the queries made (a caller bounds its work per pass with it); the slice
    length carries over from one ``read`` to the next.
    """

    def __init__(
        self,
        target_docs: int = 1_000,
        *,
        initial_slice_s: float = 1.0,
        min_slice_s: float = 0.001,
        max_slice_s: float = 10.0,
    ) -> None:
        if target_docs < 1:
            raise ValueError(f"target_docs must be at least 1, got {target_docs}")
        self.target_docs = target_docs
        self.min_slice_s = min_slice_s
        self.max_slice_s = max_slice_s
        self.slice_s = initial_slice_s
        self.reads = 0

    def read(
        self,
        collection: Any,
        query: Mapping[str, Any],
        field: str,
        start: dt.datetime,
        end: dt.datetime,
        projection: Mapping[str, Any] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Each slice in ``field`` order of the index range; within a slice, the server's order."""
        low = start
        while low < end:
            high = min(end, low + dt.timedelta(seconds=self.slice_s))
            docs = list(collection.find({**query, field: {"$gte": low, "$lt": high}}, projection))
            self.reads += 1
            # Dense: shrink to about target_docs; sparse or empty: grow (at most 8x per read).
            scaled = self.slice_s * self.target_docs / max(len(docs), self.target_docs / 8)
            self.slice_s = min(self.max_slice_s, max(self.min_slice_s, scaled))
            yield from docs
            low = high
