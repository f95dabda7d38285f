"""The read cache of the store API: product and shop details, listing and search pages, large totals.

Two backends behind one `ReadCache`: Redis (`STORE_REDIS_URL`; shared by every API process) and a dict
in this process (the default). Values are the orjson bytes of the response data, so a hit is one
round trip (one MGET on Redis) and no ORM work; `envelope()` splices them into the response.

Never stale after a write has returned. Every value is stamped with the versions it depends on, read
in the same round trip as the value itself (nothing is cached locally on the Redis backend):

- `m:v:product:{id}` / `m:v:shop:{id}`: per entity, set to a fresh random token by every commit whose
  outbox events change what that entity's detail shows (`invalidate()`, called by the outbox's
  after-commit hook before the response leaves);
- `m:pages`: one token for every listing/search page and total, renewed by every commit that changes
  anything a card or a total shows;
- `m:recs`: renewed by `recommendations.refreshed` (the pipeline replaced every user's stored
  recommendations); recommendation entries also depend on `m:pages`, as they filter on stock and status;
- `m:all`: renewed by rare changes that other entries copy (a shop's name is in its products' details)
  and when this process finds Redis again after an outage (a write it made meanwhile could not
  invalidate anything).

A hit whose stamp differs from the current tokens is a miss, so a reader that looked up the tokens before
a write and stores what it read after it stores an entry nobody will serve: no read/write race.
Version keys outlive any value stamped with their absence (`_meta_ttl`), and a fill that comes more
than MAX_FILL_DELAY after its lookup is dropped, which keeps that argument true.

Views may lag: a `product.viewed` event invalidates nothing, so the views counter (and the `popular`
order, which adds views to sales) may be up to the entry's TTL old (details `cache_detail_seconds`,
pages `read_cache_seconds`). Opening a product page tracks a view; invalidating on it would make every
popular product's detail a miss. Price, stock, sales, rating, name, status, shop and follower counts
are never stale.

If Redis fails, the call is served without the cache (never from a per-process copy: other processes
would not see this one's invalidations), the error is logged once and counted, and Redis is retried
after `retry_after` seconds. Known residual window: a process that saw no outage may serve an entry
that a write in another process could not invalidate during the outage, until that other process
reaches Redis again (it renews `m:all` first) or the entry's TTL ends."""

from __future__ import annotations

import fnmatch
import hashlib
import itertools
import os
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, cast

import orjson
import structlog
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry
from starlette.responses import Response

from api.core.responses import dumps, meta
from api.core.settings import Settings

log = structlog.get_logger("api.cache")

DEFAULT_PREFIX = "store:cache:"
# A namespace pattern (POST /api/cache/invalidate): glob over the data keys, no brackets or escapes, so
# the same pattern means the same thing to Redis and to fnmatch.
PATTERN = r"^[A-Za-z0-9_:.*?\-]{1,128}$"
_PATTERN = re.compile(PATTERN)
MAX_FILL_DELAY = 30.0  # seconds between a lookup and its fill; later fills are dropped
_ABSENT = b"-"  # the token of a version key that does not exist (yet, or any more)
_BACKEND_ERRORS = (RedisError, OSError)

T = TypeVar("T")


def new_token() -> bytes:
    return os.urandom(6).hex().encode()


def digest(parts: Iterable[Any]) -> str:
    """A short stable name for a query's parameters (a page or total key)."""
    return hashlib.blake2b(repr(tuple(parts)).encode(), digest_size=10).hexdigest()


# --- backends -------------------------------------------------------------------------------------------


class CacheBackend(Protocol):
    name: str
    prefix: str
    shared: bool  # other processes see the same entries and counters

    def read(self, keys: Sequence[str], stats: Mapping[str, int] | None = None) -> list[bytes | None]:
        """Values of `keys` in one round trip (None where missing); adds `stats` to the shared counters."""

    def write(self, key: str, value: bytes, ttl: float) -> None: ...

    def stamp(self, keys: Sequence[tuple[str, float | None]], token: bytes) -> None:
        """Sets every key to `token` (with its TTL in seconds, or none), in one round trip."""

    def remove(self, pattern: str) -> int:
        """Deletes the data keys matching a glob (relative to the data namespace); returns how many."""

    def size(self) -> tuple[int, dict[str, Any]]:
        """Number of data keys and memory figures."""

    def add_stats(self, stats: Mapping[str, int]) -> None: ...

    def shared_stats(self) -> dict[str, int] | None:
        """Counters shared by every process (None: this backend has only this process)."""

    def close(self) -> None: ...


class LocalBackend:
    """A dict in this process. Data entries are evicted oldest first past `max_entries`; version entries
    are only dropped once expired (dropping one early could make an old stamp valid again)."""

    name = "in-process"
    shared = False

    def __init__(self, *, prefix: str = DEFAULT_PREFIX, max_entries: int = 10_000) -> None:
        self.prefix = prefix
        self.max_entries = max_entries
        self._meta_prefix = prefix + "m:"
        self._data: dict[str, tuple[float, bytes]] = {}
        self._meta: dict[str, tuple[float, bytes]] = {}
        self._meta_sweep_at = max_entries
        self._lock = threading.Lock()

    def _table(self, key: str) -> dict[str, tuple[float, bytes]]:
        return self._meta if key.startswith(self._meta_prefix) else self._data

    def read(self, keys: Sequence[str], stats: Mapping[str, int] | None = None) -> list[bytes | None]:
        now = time.monotonic()
        out: list[bytes | None] = []
        for key in keys:
            hit = self._table(key).get(key)
            out.append(hit[1] if hit is not None and hit[0] > now else None)
        return out

    def write(self, key: str, value: bytes, ttl: float) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._data) >= self.max_entries:
                self._evict(now)
            self._data.pop(key, None)  # re-inserted at the end: eviction goes by age
            self._data[key] = (now + ttl, value)

    def _evict(self, now: float) -> None:
        for key in [k for k, (exp, _) in self._data.items() if exp <= now]:
            del self._data[key]
        excess = len(self._data) - (self.max_entries * 3) // 4
        for key in list(itertools.islice(self._data, max(0, excess))):
            del self._data[key]

    def stamp(self, keys: Sequence[tuple[str, float | None]], token: bytes) -> None:
        now = time.monotonic()
        with self._lock:
            for key, ttl in keys:
                self._table(key)[key] = (now + ttl if ttl is not None else float("inf"), token)
            if len(self._meta) > self._meta_sweep_at:
                for key in [k for k, (exp, _) in self._meta.items() if exp <= now]:
                    del self._meta[key]
                self._meta_sweep_at = max(self.max_entries, 2 * len(self._meta))

    def remove(self, pattern: str) -> int:
        full = self.prefix + "d:" + pattern
        with self._lock:
            doomed = [k for k in self._data if fnmatch.fnmatchcase(k, full)]
            for key in doomed:
                del self._data[key]
        return len(doomed)

    def size(self) -> tuple[int, dict[str, Any]]:
        now = time.monotonic()
        with self._lock:
            live = [(k, v) for k, (exp, v) in self._data.items() if exp > now]
            meta_bytes = sum(len(k) + len(v) for k, (_, v) in self._meta.items())
        # Keys and values plus the dict slot, the tuple and the float that hold each entry.
        overhead = sys.getsizeof(("", b"")) + sys.getsizeof(0.0) + 3 * 8
        data_bytes = sum(sys.getsizeof(k) + sys.getsizeof(v) + overhead for k, v in live)
        return len(live), {"bytes": data_bytes + meta_bytes, "dataBytes": data_bytes, "approximate": True}

    def add_stats(self, stats: Mapping[str, int]) -> None:
        pass

    def shared_stats(self) -> dict[str, int] | None:
        return None

    def close(self) -> None:
        with self._lock:
            self._data.clear()
            self._meta.clear()


class RedisBackend:
    """Redis through the sync client (handlers run in the thread pool). Short timeouts and no retries:
    a slow or absent Redis costs a request at most `timeout`, then the cache steps aside for a while."""

    name = "redis"
    shared = True
    SCAN_BATCH = 500

    def __init__(self, url: str, *, prefix: str = DEFAULT_PREFIX, timeout: float = 0.25) -> None:
        if not _PATTERN.match(prefix) or any(c in prefix for c in "*?"):
            raise ValueError(f"cache prefix {prefix!r} must be plain letters, digits and : _ . -")
        self.url = url
        self.prefix = prefix
        self.stats_key = prefix + "m:stats"
        self.client = Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )

    def read(self, keys: Sequence[str], stats: Mapping[str, int] | None = None) -> list[bytes | None]:
        if not stats:
            return cast("list[bytes | None]", self.client.mget(keys))
        pipe = self.client.pipeline(transaction=False)
        for name, delta in stats.items():
            pipe.hincrby(self.stats_key, name, delta)
        pipe.mget(keys)
        result: list[bytes | None] = pipe.execute()[-1]
        return result

    def write(self, key: str, value: bytes, ttl: float) -> None:
        self.client.set(key, value, px=max(1, int(ttl * 1000)))

    def stamp(self, keys: Sequence[tuple[str, float | None]], token: bytes) -> None:
        pipe = self.client.pipeline(transaction=False)
        for key, ttl in keys:
            if ttl is None:
                pipe.set(key, token)
            else:
                pipe.set(key, token, px=max(1, int(ttl * 1000)))
        pipe.execute()

    def add_stats(self, stats: Mapping[str, int]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for name, delta in stats.items():
            pipe.hincrby(self.stats_key, name, delta)
        pipe.execute()

    def _scan(self, match: str) -> Iterable[list[bytes]]:
        batch: list[bytes] = []
        for key in self.client.scan_iter(match=match, count=self.SCAN_BATCH):
            batch.append(key)
            if len(batch) >= self.SCAN_BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    def remove(self, pattern: str) -> int:
        removed = 0
        for batch in self._scan(self.prefix + "d:" + pattern):
            removed += int(self.client.unlink(*batch))
        return removed

    def size(self, max_sized: int = 50_000) -> tuple[int, dict[str, Any]]:
        keys = sized = namespace = 0
        for batch in self._scan(self.prefix + "d:*"):
            keys += len(batch)
            if sized < max_sized:
                pipe = self.client.pipeline(transaction=False)
                for key in batch:
                    pipe.memory_usage(key, samples=0)
                namespace += sum(int(n or 0) for n in pipe.execute())
                sized += len(batch)
        info = self.client.info("memory")
        memory = {
            # MEMORY USAGE of the cached entries (extrapolated past max_sized keys)
            "bytes": round(namespace * keys / sized) if sized else 0,
            "usedMemory": info.get("used_memory"),  # the whole Redis server
            "usedMemoryHuman": info.get("used_memory_human"),
            "maxMemory": info.get("maxmemory"),
            "approximate": sized < keys,
        }
        return keys, memory

    def shared_stats(self) -> dict[str, int] | None:
        raw = cast("dict[bytes, bytes]", self.client.hgetall(self.stats_key))
        return {k.decode(): int(v) for k, v in raw.items()}

    def close(self) -> None:
        self.client.close()


# --- the cache -------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Slot:
    """One lookup: the cached body if it was a valid hit, else what a fill needs (the stamp read with
    the lookup). `stamp` None means the entry cannot be cached now (off, or the backend is down)."""

    kind: str
    key: str
    ttl: float
    stamp: bytes | None = None
    body: bytes | None = None
    extra: str = ""
    started: float = field(default_factory=time.monotonic)

    @property
    def hit(self) -> bool:
        return self.body is not None


@dataclass
class Invalidation:
    products: set[int] = field(default_factory=set)
    shops: set[int] = field(default_factory=set)
    pages: bool = False  # every listing/search page and total
    everything: bool = False
    recommendations: bool = False  # every user's stored recommendations (a model refresh)

    def __bool__(self) -> bool:
        return bool(self.products or self.shops or self.pages or self.everything or self.recommendations)


# What each committed event changes in cached reads. "items" and "stock" name the payload lists whose
# productIds changed (stock, sales). Event types of these domains not listed here invalidate everything.
_PRODUCT, _SHOP, _PAGES, _ALL, _ITEMS = "product", "shop", "pages", "all", "items"
_RECS = "recommendations"
EFFECTS: dict[str, frozenset[str]] = {
    "product.created": frozenset({_PRODUCT, _PAGES}),
    "product.updated": frozenset({_PRODUCT, _PAGES}),
    "product.price_changed": frozenset({_PRODUCT, _PAGES}),
    "product.viewed": frozenset(),  # views may lag (module docstring)
    "shop.created": frozenset({_SHOP}),
    "shop.updated": frozenset({_SHOP, _ALL}),  # products' details show the shop's name
    "shop.followed": frozenset({_SHOP}),
    "shop.unfollowed": frozenset({_SHOP}),
    "category.created": frozenset(),  # nothing cached names a category that did not exist
    "order.placed": frozenset({_ITEMS, _PAGES}),  # stock reserved
    "order.paid": frozenset({_ITEMS, _PAGES}),  # sales counted
    "order.cancelled": frozenset({_ITEMS, _PAGES}),  # stock (and sales) given back
    "order.shipped": frozenset(),
    "order.delivered": frozenset(),
    "review.posted": frozenset({_PRODUCT, _PAGES}),  # rating
    # The pipeline replaced product_recommendations; what they show of products follows m:pages.
    "recommendations.refreshed": frozenset({_RECS}),
}
CATALOG_DOMAINS = ("product.", "category.", "shop.", "order.", "review.")
_UNKNOWN = frozenset({_PRODUCT, _SHOP, _ITEMS, _ALL})


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def invalidation_of(events: Iterable[Mapping[str, Any]]) -> Invalidation:
    """What a commit's outbox events make stale."""
    out = Invalidation()
    for ev in events:
        etype = str(ev.get("event_type", ""))
        effects = EFFECTS.get(etype)
        if effects is None:
            if not etype.startswith(CATALOG_DOMAINS):
                continue
            effects = _UNKNOWN
        if not effects:
            continue
        entity_type, entity_id = ev.get("entity_type"), _int(ev.get("entity_id"))
        if _PRODUCT in effects or _ITEMS in effects:
            if entity_type == "product" and entity_id is not None:
                out.products.add(entity_id)
            if (pid := _int(ev.get("product_id"))) is not None:
                out.products.add(pid)
        if _ITEMS in effects:
            payload = ev.get("payload") or {}
            for name in ("items", "stockReleased"):
                for item in payload.get(name) or ():
                    if isinstance(item, Mapping) and (pid := _int(item.get("productId"))) is not None:
                        out.products.add(pid)
        if _SHOP in effects:
            if entity_type == "shop" and entity_id is not None:
                out.shops.add(entity_id)
            if (sid := _int(ev.get("shop_id"))) is not None:
                out.shops.add(sid)
        out.pages |= _PAGES in effects or _ALL in effects
        out.everything |= _ALL in effects
        out.recommendations |= _RECS in effects
    return out


class _Down:
    pass


DOWN = _Down()
KINDS = ("product", "shop", "page", "total", "recommendation")


class ReadCache:
    def __init__(
        self,
        backend: CacheBackend | None = None,
        *,
        page_seconds: float = 2.0,
        detail_seconds: float = 30.0,
        retry_after: float = 1.0,
        stats_flush_seconds: float = 1.0,
    ) -> None:
        self.backend: CacheBackend = backend or LocalBackend()
        self.page_ttl = page_seconds
        self.detail_ttl = detail_seconds
        self.retry_after = retry_after
        self.stats_flush_seconds = stats_flush_seconds
        p = self.backend.prefix
        self._data = p + "d:"
        self._all, self._pages = p + "m:all", p + "m:pages"
        self._ver = p + "m:v:"
        self._recs = p + "m:recs"
        # Version keys outlive every value stamped with their absence (see the module docstring).
        self._meta_ttl = max(page_seconds, detail_seconds) + MAX_FILL_DELAY + 60.0
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()  # this process, since start
        self._pending: Counter[str] = Counter()  # not yet added to the shared counters
        self._last_flush = time.monotonic()
        self._down_until = 0.0
        self._suspect = False  # an error was seen: renew m:all before trusting Redis again
        self._logged_down = False
        self._compat = threading.local()

    @classmethod
    def from_settings(cls, settings: Settings, *, prefix: str = DEFAULT_PREFIX) -> ReadCache:
        backend: CacheBackend = (
            RedisBackend(settings.redis_url, prefix=prefix)
            if settings.redis_url
            else LocalBackend(prefix=prefix)
        )
        return cls(
            backend, page_seconds=settings.read_cache_seconds, detail_seconds=settings.cache_detail_seconds
        )

    @property
    def backend_name(self) -> str:
        return self.backend.name

    @property
    def enabled(self) -> bool:
        return self.page_ttl > 0 or self.detail_ttl > 0

    @property
    def hits(self) -> int:
        return sum(self._counts[f"hits:{k}"] for k in KINDS)

    @property
    def misses(self) -> int:
        return sum(self._counts[f"misses:{k}"] for k in KINDS)

    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n
            if self.backend.shared:
                self._pending[name] += n

    def _take_pending(self, force: bool = False) -> dict[str, int]:
        if not self._pending:
            return {}
        now = time.monotonic()
        if not force and now - self._last_flush < self.stats_flush_seconds:
            return {}
        with self._lock:
            taken = dict(self._pending)
            self._pending.clear()
            self._last_flush = now
        return taken

    def _give_back(self, taken: Mapping[str, int]) -> None:
        with self._lock:
            self._pending.update(taken)

    # --- guarded backend calls ---

    def _call(self, fn: Callable[[], T]) -> T | _Down:
        if self._down_until and time.monotonic() < self._down_until:
            return DOWN
        try:
            if self._suspect:
                # Writes made while Redis was unreachable could not invalidate: nothing cached before
                # the outage is trusted again.
                self.backend.stamp([(self._all, None)], new_token())
                self._suspect = False
                if self._logged_down:
                    log.info("cache_backend_recovered", backend=self.backend.name)
                    self._logged_down = False
            result = fn()
        except _BACKEND_ERRORS as exc:
            self._count("errors")
            self._suspect = True
            self._down_until = time.monotonic() + self.retry_after
            if not self._logged_down:
                self._logged_down = True
                log.warning(
                    "cache_backend_unavailable",
                    backend=self.backend.name,
                    error=type(exc).__name__,
                    message=str(exc)[:200],
                    retry_after=self.retry_after,
                )
            return DOWN
        self._down_until = 0.0
        return result

    # --- lookups ---

    def _lookup(self, kind: str, key: str, deps: tuple[str, ...], ttl: float) -> Slot:
        slot = Slot(kind, self._data + key, ttl)
        if ttl <= 0:
            return slot
        stats = self._take_pending()
        values = self._call(lambda: self.backend.read([*deps, slot.key], stats))
        if isinstance(values, _Down):
            if stats:
                self._give_back(stats)
            self._count("fallbacks")
            return slot
        stamp = b",".join(v or _ABSENT for v in values[:-1])
        slot.stamp = stamp
        raw = values[-1]
        if raw is not None:
            header, _, body = raw.partition(b"\n")
            their_stamp, _, extra = header.partition(b"|")
            if their_stamp == stamp:
                slot.body, slot.extra = body, extra.decode()
                self._count(f"hits:{kind}")
                return slot
        self._count(f"misses:{kind}")
        return slot

    def product(self, product_id: int) -> Slot:
        return self._lookup(
            "product",
            f"product:{product_id}",
            (self._all, f"{self._ver}product:{product_id}"),
            self.detail_ttl,
        )

    def shop(self, shop_id: int) -> Slot:
        return self._lookup(
            "shop", f"shop:{shop_id}", (self._all, f"{self._ver}shop:{shop_id}"), self.detail_ttl
        )

    def page(self, kind: str, params: Iterable[Any]) -> Slot:
        """A listing or search page (kind "listing" or "search") by its query parameters."""
        return self._lookup("page", f"page:{kind}:{digest(params)}", (self._all, self._pages), self.page_ttl)

    def page_bytes(
        self, kind: str, params: Iterable[Any], load: Callable[[], tuple[list[Any], int]]
    ) -> tuple[bytes, int]:
        """A page's items as JSON bytes and its total: from the cache, else `load()`ed and stored."""
        slot = self.page(kind, params)
        if slot.body is not None:
            return slot.body, int(slot.extra)
        items, total = load()
        body = dumps(items)
        self.fill(slot, body, str(total))
        return body, total

    def total(self, params: Iterable[Any]) -> Slot:
        """The size of a result set. Invalidated like pages, so it is exact; it lives as long as a detail
        (its TTL only bounds memory: nothing in a total lags)."""
        return self._lookup("total", f"total:{digest(params)}", (self._all, self._pages), self.detail_ttl)

    def recommendations(self, key: str, *, ttl: float | None = None) -> Slot:
        """A user's recommendations (or the shared trending list), by `key`. They show products as cards
        do and filter on stock, status and shops, so they follow m:pages; a model refresh renews m:recs."""
        return self._lookup(
            "recommendation",
            f"recs:{key}",
            (self._all, self._pages, self._recs),
            self.detail_ttl if ttl is None else min(ttl, self.detail_ttl),
        )

    def fill(self, slot: Slot, body: bytes, extra: str = "") -> None:
        if slot.stamp is None or time.monotonic() - slot.started > MAX_FILL_DELAY:
            return
        value = b"".join((slot.stamp, b"|", extra.encode(), b"\n", body))
        self._call(lambda: self.backend.write(slot.key, value, slot.ttl))

    # --- invalidation ---

    def invalidate(self, events: Iterable[Mapping[str, Any]]) -> Invalidation:
        """Makes stale what a commit's events changed. Runs after the commit, before the response."""
        plan = invalidation_of(events)
        # A process that caches nothing still invalidates what other processes share with it.
        if not plan or not (self.enabled or self.backend.shared):
            return plan
        keys: list[tuple[str, float | None]] = [
            (f"{self._ver}product:{i}", self._meta_ttl) for i in plan.products
        ]
        keys += [(f"{self._ver}shop:{i}", self._meta_ttl) for i in plan.shops]
        if plan.pages:
            keys.append((self._pages, None))
        if plan.everything:
            keys.append((self._all, None))
        if plan.recommendations:
            keys.append((self._recs, None))
        if isinstance(self._call(lambda: self.backend.stamp(keys, new_token())), _Down):
            self._suspect = True  # when Redis is back, nothing cached before is trusted
        else:
            self._count("invalidations")
        return plan

    def clear(self) -> None:
        """Makes every entry stale."""
        self._call(lambda: self.backend.stamp([(self._all, None)], new_token()))

    def remove(self, pattern: str) -> int | None:
        """Deletes the entries whose key (e.g. "product:12", "page:listing:…") matches a glob; None if the
        backend is unreachable."""
        if not _PATTERN.match(pattern):
            raise ValueError(f"bad cache key pattern {pattern!r}")
        removed = self._call(lambda: self.backend.remove(pattern))
        if isinstance(removed, _Down):
            return None
        self._count("removed", removed)
        return removed

    # --- statistics ---

    def stats(self) -> dict[str, Any]:
        local = dict(self._counts)
        shared: dict[str, int] | None = None
        size: tuple[int, dict[str, Any]] | None = None
        if not self.backend.shared:
            size = self.backend.size()
        else:
            taken = self._take_pending(force=True)  # this process's latest counts are in the totals
            if taken and isinstance(self._call(lambda: self.backend.add_stats(taken)), _Down):
                self._give_back(taken)
            got = self._call(lambda: (self.backend.shared_stats(), self.backend.size()))
            if not isinstance(got, _Down):
                shared, size = got
        totals = shared if shared is not None else local
        out = _figures(totals)
        out |= {
            "backend": self.backend.name,
            "scope": "all processes" if shared is not None else "this process",
            "available": size is not None,
            "keys": size[0] if size else None,
            "memory": size[1] if size else None,
            "ttlSeconds": {"detail": self.detail_ttl, "page": self.page_ttl, "total": self.detail_ttl},
            "process": _figures(local),
        }
        return out

    # --- the listing/search compatibility interface of the old ReadCache ---

    def get(self, key: tuple[Any, ...]) -> Any | None:
        """(items, total) of a page keyed ("search" | "listing", *params), or None. A miss remembers its
        stamp for the `put` of the same key in this thread."""
        slot = self.page(str(key[0]), key[1:])
        if slot.body is not None:
            return orjson.loads(slot.body), int(slot.extra)
        self._compat.pending = (key, slot)
        return None

    def put(self, key: tuple[Any, ...], value: tuple[list[Any], int]) -> None:
        pending: tuple[tuple[Any, ...], Slot] | None = getattr(self._compat, "pending", None)
        self._compat.pending = None
        if pending is None or pending[0] != key:
            return  # no lookup to stamp it with: storing it could serve it stale
        items, total = value
        self.fill(pending[1], dumps(items), str(total))

    def close(self) -> None:
        self.backend.close()


def _figures(counts: Mapping[str, int]) -> dict[str, Any]:
    by_kind: dict[str, dict[str, Any]] = {}
    hits = misses = 0
    for kind in KINDS:
        h, m = counts.get(f"hits:{kind}", 0), counts.get(f"misses:{kind}", 0)
        by_kind[kind] = {"hits": h, "misses": m, "hitRatio": round(h / (h + m), 4) if h + m else None}
        hits, misses = hits + h, misses + m
    return {
        "hits": hits,
        "misses": misses,
        "hitRatio": round(hits / (hits + misses), 4) if hits + misses else None,
        "errors": counts.get("errors", 0),
        "fallbacks": counts.get("fallbacks", 0),
        "invalidations": counts.get("invalidations", 0),
        "removed": counts.get("removed", 0),
        "byKind": by_kind,
    }


# --- responses from cached bytes ---------------------------------------------------------------------------

_HEAD = b'{"success":true,"data":'


class RawJson(Response):
    media_type = "application/json"


def envelope(body: bytes, *, extra_meta: dict[str, Any] | None = None, status_code: int = 200) -> Response:
    """The bytes `ok(data)` would send, from the serialised data: no decode and encode again on a hit."""
    return RawJson(
        b"".join((_HEAD, body, b',"meta":', dumps(meta(extra_meta)), b"}")), status_code=status_code
    )


def page_envelope(body: bytes, *, page: int, page_size: int, total: int) -> Response:
    """The bytes `paginated(items, ...)` would send, from the serialised items."""
    pages = (total + page_size - 1) // page_size if page_size else 0
    pagination = {"page": page, "pageSize": page_size, "total": total, "pages": pages}
    return envelope(body, extra_meta={"pagination": pagination})
