"""Composition root of the store API: settings, store, clock, middleware, handlers, routers."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api import __version__
from api.ai.router import router as ai_router
from api.alerts.router import router as alerts_router
from api.analytics.cache import AnalyticsCache
from api.analytics.router import router as analytics_router
from api.auth import service as auth_service
from api.auth.router import admin_router, sessions_router
from api.auth.router import router as auth_router
from api.cache.router import router as cache_router
from api.calls.router import router as calls_router
from api.calls.signaling import WS_HANDLERS as CALL_WS_HANDLERS
from api.calls.tasks import run_missed_call_timer
from api.catalog.router import router as catalog_router
from api.conversations.attachments import router as attachments_router
from api.conversations.live import WS_HANDLERS as CHAT_WS_HANDLERS
from api.conversations.router import router as conversations_router
from api.core.clock import Clock, SystemClock
from api.core.handlers import register_handlers
from api.core.logging import configure_logging
from api.core.middleware import RequestContextMiddleware
from api.core.redis import RedisLink
from api.core.settings import Settings, get_settings
from api.db.engine import Store, wal_checkpoint
from api.db.migrate import upgrade
from api.export.router import router as export_router
from api.health.router import router as health_router
from api.metrics.recorder import RequestMetrics
from api.metrics.router import router as metrics_router
from api.metrics.service import WarehouseCollector
from api.notifications.delivery import run_delivery_worker
from api.notifications.router import router as notifications_router
from api.orders import fraud as order_fraud
from api.orders.router import router as orders_router
from api.realtime.hub import Hub, bind, run_hub, unbind
from api.realtime.router import router as realtime_router
from api.recommendations.router import router as recommendations_router
from api.reviews.router import router as reviews_router
from api.search.router import router as search_router
from api.search.service import SearchEventBuffer
from api.shops.router import router as shops_router
from api.tracking.router import router as tracking_router

log = structlog.get_logger("api")


async def _run_forever(name: str, task: Callable[[FastAPI], Awaitable[None]], app: FastAPI) -> None:
    """A background loop that outlives its own crashes: it logs and starts again."""
    while True:
        try:
            await task(app)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background_task_failed", task=name)
            await asyncio.sleep(1.0)


async def _checkpoint_sqlite(app: FastAPI) -> None:
    store: Store = app.state.store
    while True:
        await asyncio.sleep(1.0)
        try:
            await asyncio.to_thread(wal_checkpoint, store.engine)
        except Exception:  # e.g. the file is busy being replaced in a test: try again next time
            log.warning("wal_checkpoint_failed", exc_info=True)


async def _flush_search_events(app: FastAPI) -> None:
    buffer: SearchEventBuffer = app.state.search_events
    interval = app.state.settings.search_event_flush_seconds
    try:
        while True:
            await asyncio.sleep(interval)
            await asyncio.to_thread(buffer.flush, app.state.store)
    finally:  # shutting down: what is buffered is still written
        await asyncio.shield(asyncio.to_thread(buffer.flush, app.state.store))


async def _sweep_sessions(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    while True:
        await asyncio.sleep(settings.session_sweep_seconds)
        try:
            n = await asyncio.to_thread(
                auth_service.expire_idle_sessions, app.state.store, settings, app.state.clock.now()
            )
            if n:
                log.info("sessions_expired", count=n)
        except Exception:  # the sweeper must outlive a database hiccup
            log.exception("session_sweep_failed")


def create_app(
    settings: Settings | None = None, *, clock: Clock | None = None, store: Store | None = None
) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.auto_migrate:
            await asyncio.to_thread(upgrade, settings.database_url)
        # Move start-up objects out of the collector's reach: a full collection over the ~200k objects
        # of an imported app takes ~130 ms, which showed up as p99 latency spikes.
        gc.collect()
        gc.freeze()
        # Fewer, not longer, collections: with a thousand sockets a full collection takes ~100 ms and
        # ran every few seconds at 500 messages/s (measured with gc.callbacks), which was the p99.
        # Nearly all garbage here is freed by reference counting, so the cyclic collector can run rarely.
        gc.set_threshold(50_000, 20, 100)
        background: list[tuple[str, Callable[[FastAPI], Awaitable[None]]]] = [
            ("live-hub", run_hub),
            ("missed-call-timer", run_missed_call_timer),
            ("notification-delivery", run_delivery_worker),
        ]
        if settings.session_sweep_seconds:
            background.append(("session-sweeper", _sweep_sessions))
        if app.state.search_events is not None:
            background.append(("search-events", _flush_search_events))
        if app.state.store.dialect == "sqlite":
            background.append(("sqlite-checkpoint", _checkpoint_sqlite))
        bind(app)
        tasks = [asyncio.create_task(_run_forever(name, fn, app), name=name) for name, fn in background]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            unbind(app)
            app.state.redis.close()

    app = FastAPI(
        title="Crypto Store API",
        version=__version__,
        lifespan=lifespan,
        description="Live store API of the crypto marketplace. Every change is an outbox event.",
    )
    app.state.settings = settings
    app.state.clock = clock or SystemClock()
    app.state.store = store or Store.from_settings(settings)
    app.state.redis = RedisLink(settings.redis_url)
    app.state.started_monotonic = time.monotonic()
    app.state.hub = Hub(settings, app.state.clock)
    app.state.search_events = SearchEventBuffer() if settings.search_event_flush_seconds else None
    # The serving fraud model (ml.registry), swapped for a newer good version without a restart.
    app.state.fraud_models = order_fraud.new_holder(settings)
    # Client message types accepted over /ws, by domain.
    app.state.ws_handlers = {**CHAT_WS_HANDLERS, **CALL_WS_HANDLERS}

    register_handlers(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["X-Request-ID", "Content-Disposition", "X-Data-Freshness"],
        )
    # Request metrics (GET /metrics, /api/metrics) from the middleware's timing; analytics answers
    # cached per published warehouse.
    app.state.request_metrics = RequestMetrics()
    app.state.warehouse_collector = WarehouseCollector(settings)
    app.state.analytics_cache = AnalyticsCache()
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_body_bytes,
        observe=app.state.request_metrics.observe,
    )

    for router in (
        # The hot read paths first: routes are matched in order.
        search_router,
        catalog_router,
        health_router,
        auth_router,
        sessions_router,
        admin_router,
        shops_router,
        tracking_router,
        recommendations_router,
        orders_router,
        reviews_router,
        alerts_router,
        conversations_router,
        attachments_router,
        notifications_router,
        calls_router,
        cache_router,
        realtime_router,
        analytics_router,
        export_router,
        ai_router,
        metrics_router,
    ):
        app.include_router(router)
    return app


app = create_app()
