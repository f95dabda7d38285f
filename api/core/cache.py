"""A small in-process cache of read results, emptied whenever a committed change could alter them.

Listing and search pages are read far more often than the catalogue changes. Entries live for a
short TTL and the whole cache is cleared after any commit that wrote a catalogue-affecting event
(see api/outbox/service.py), so a process never serves a page older than its own last change; other
processes may serve one up to the TTL old."""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from typing import Any

# Event types whose commit empties the cache: anything a product card or a total shows.
INVALIDATING_PREFIXES = ("product.", "category.", "shop.", "order.", "review.")


class ReadCache:
    def __init__(self, ttl_seconds: float = 2.0, max_entries: int = 10_000) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._data: dict[Hashable, tuple[float, Any]] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    def get(self, key: Hashable) -> Any | None:
        if not self.enabled:
            return None
        hit = self._data.get(key)
        if hit is None or hit[0] < time.monotonic():
            self.misses += 1
            return None
        self.hits += 1
        return hit[1]

    def put(self, key: Hashable, value: Any) -> None:
        if not self.enabled:
            return
        with self._lock:
            if len(self._data) >= self.max_entries:
                self._data.clear()
            self._data[key] = (time.monotonic() + self.ttl, value)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def invalidated_by(self, event_types: set[str]) -> bool:
        return any(t.startswith(INVALIDATING_PREFIXES) for t in event_types)
