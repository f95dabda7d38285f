from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api import __version__
from api.core.deps import StoreDep
from api.core.redis import RedisLink
from api.core.responses import EnvelopeResponse, error_body, ok
from api.db.engine import Store
from api.orders.fraud import describe as describe_fraud_model

router = APIRouter(tags=["health"])


def _database(store: Store) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        with store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return {"status": "down", "dialect": store.dialect, "error": type(exc).__name__}
    return {
        "status": "ok",
        "dialect": store.dialect,
        "latencyMs": round((time.perf_counter() - started) * 1000, 2),
    }


def _redis(request: Request) -> RedisLink:
    link: RedisLink = request.app.state.redis
    return link


@router.get("/health")
def health(request: Request, store: StoreDep) -> EnvelopeResponse:
    db = _database(store)
    redis = _redis(request).check()
    healthy = db["status"] == "ok" and redis["status"] in ("ok", "not_configured")
    data = {
        "status": "ok" if healthy else "degraded",
        "version": __version__,
        "environment": request.app.state.settings.environment.value,
        "uptimeSeconds": round(time.monotonic() - request.app.state.started_monotonic, 1),
        "database": db,
        "redis": redis,
        # Live delivery: "redis" fan-out across processes, or this process only (and why).
        "realtime": request.app.state.hub.describe(),
        # The model versions serving inside the API (ml.registry).
        "models": {"fraud": describe_fraud_model(getattr(request.app.state, "fraud_models", None))},
    }
    return ok(data, status_code=200 if db["status"] == "ok" else 503)


@router.get("/api/health/database")
def database_health(store: StoreDep) -> EnvelopeResponse:
    db = _database(store)
    if db["status"] != "ok":
        return EnvelopeResponse(error_body("SERVICE_UNAVAILABLE", "Database is down", db), status_code=503)
    return ok(db)


@router.get("/api/health/redis")
def redis_health(request: Request) -> EnvelopeResponse:
    redis = _redis(request).check()
    if redis["status"] == "down":
        return EnvelopeResponse(error_body("SERVICE_UNAVAILABLE", "Redis is down", redis), status_code=503)
    return ok(redis)
