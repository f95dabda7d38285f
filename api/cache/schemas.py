"""Bodies of the cache admin endpoints."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from api.core.cache import PATTERN
from api.core.schemas import RequestModel, ResponseModel


class InvalidateIn(RequestModel):
    # A glob over the cache's keys, e.g. "product:*", "shop:12", "page:listing:*", "total:*" or "*".
    pattern: Annotated[str, Field(min_length=1, max_length=128, pattern=PATTERN)]


class InvalidateOut(ResponseModel):
    pattern: str
    removed: int
    backend: str


class KindStats(ResponseModel):
    hits: int
    misses: int
    hit_ratio: float | None


class CounterStats(ResponseModel):
    hits: int
    misses: int
    hit_ratio: float | None
    errors: int  # backend calls that failed
    fallbacks: int  # reads served without the cache because the backend was unavailable
    invalidations: int  # commits that invalidated entries
    removed: int  # entries removed by POST /api/cache/invalidate
    by_kind: dict[str, KindStats]  # product, shop, page, total


class CacheStatsOut(CounterStats):
    backend: str  # "redis" or "in-process"
    scope: str  # whose counters: "all processes" (Redis) or "this process"
    available: bool  # the backend answered just now
    keys: int | None
    memory: dict[str, Any] | None  # bytes of the entries; on Redis also the server's used_memory
    ttl_seconds: dict[str, float]
    process: CounterStats  # this process alone
