"""The optional Redis connection. Without it the app runs in-process and says so in /health."""

from __future__ import annotations

import time
from typing import Any

from redis import Redis
from redis.exceptions import RedisError


class RedisLink:
    def __init__(self, url: str | None) -> None:
        self.url = url
        self.client: Redis | None = (
            Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5, health_check_interval=30)
            if url
            else None
        )

    @property
    def configured(self) -> bool:
        return self.client is not None

    def check(self) -> dict[str, Any]:
        if self.client is None:
            return {
                "status": "not_configured",
                "mode": "in-process fallback",
                "message": "STORE_REDIS_URL is not set: cache, rate limits and fan-out run in this process",
            }
        started = time.perf_counter()
        try:
            self.client.ping()
            info = self.client.info("server")
        except RedisError as exc:
            return {
                "status": "down",
                "mode": "in-process fallback",
                "error": type(exc).__name__,
                "message": str(exc)[:200],
            }
        return {
            "status": "ok",
            "mode": "redis",
            "latencyMs": round((time.perf_counter() - started) * 1000, 2),
            "version": info.get("redis_version"),
        }

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
