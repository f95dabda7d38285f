"""Analytics answers kept in this process, keyed on the identity of the published warehouse.

The marts change only when the pipeline publishes (DuckDB: a new read snapshot; PostgreSQL: a new load
or rebuilt relations, see `warehouse.marts.published_identity`), so an answer stays right until the
identity changes: a new run invalidates every entry by changing the key, nothing has to be deleted.
On PostgreSQL an entry also expires after `POSTGRES_TTL_SECONDS`, in case a change escaped the identity
(its statistics counters are updated asynchronously). Entries of older identities age out of the LRU.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")

MAX_ENTRIES = 512
POSTGRES_TTL_SECONDS = 60.0


class AnalyticsCache:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: OrderedDict[tuple[str, Hashable], tuple[float, object]] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get_or_compute(
        self, identity: str, key: Hashable, compute: Callable[[], T], *, ttl: float | None = None
    ) -> T:
        """The entry of (identity, key), computed (outside the lock) when missing or expired."""
        full = (identity, key)
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(full)
            if entry is not None and (ttl is None or now - entry[0] < ttl):
                self._entries.move_to_end(full)
                self.hits += 1
                return entry[1]  # type: ignore[return-value]
            self.misses += 1
        # Two requests may compute the same entry at once: both answers are right, one is kept.
        value = compute()
        with self._lock:
            self._entries[full] = (now, value)
            self._entries.move_to_end(full)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._entries)
