"""Admin view of the read cache: its statistics, and removal of entries by key pattern."""

from __future__ import annotations

from fastapi import APIRouter

from api.cache import service
from api.cache.schemas import CacheStatsOut, InvalidateIn, InvalidateOut
from api.core.deps import AdminUser, StoreDep
from api.core.responses import Envelope, EnvelopeResponse, ok

router = APIRouter(prefix="/api/cache", tags=["cache"])


@router.get("/stats", response_model=Envelope[CacheStatsOut])
def cache_stats(_admin: AdminUser, store: StoreDep) -> EnvelopeResponse:
    """Hits, misses and hit ratio (all processes on Redis, with this process's own under `process`),
    keys and memory, the backend and its errors and fallbacks."""
    return ok(service.stats(store.cache))


@router.post("/invalidate", response_model=Envelope[InvalidateOut])
def invalidate(body: InvalidateIn, _admin: AdminUser, store: StoreDep) -> EnvelopeResponse:
    """Removes the entries whose key matches a glob: "product:*", "shop:12", "page:search:*", "*"...
    (letters, digits, `:_.-` and the wildcards `*` `?`). Returns how many were removed."""
    return ok(service.invalidate(store.cache, body.pattern))
