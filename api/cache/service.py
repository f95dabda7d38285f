"""Admin operations on the read cache (api/core/cache.py)."""

from __future__ import annotations

from typing import Any

from api.core.cache import ReadCache
from api.core.errors import ApiError


class CacheUnavailable(ApiError):
    status_code = 503
    code = "CACHE_UNAVAILABLE"


def stats(cache: ReadCache) -> dict[str, Any]:
    return cache.stats()


def invalidate(cache: ReadCache, pattern: str) -> dict[str, Any]:
    removed = cache.remove(pattern)
    if removed is None:
        raise CacheUnavailable(f"The {cache.backend_name} cache backend is unreachable; nothing was removed")
    return {"pattern": pattern, "removed": removed, "backend": cache.backend_name}
