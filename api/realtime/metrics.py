"""`metrics_update`: a periodic snapshot of live activity for the dashboard's real-time views.

Computed only while some socket of this process subscribes to the `metrics` topic; each process
computes its own (one small query over the outbox's recent rows) and delivers it locally, so nothing
crosses Redis except each process's socket counts."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Any

import orjson
import structlog
from fastapi import FastAPI
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import func, select

from api.db.engine import Store
from api.outbox.models import Event
from api.realtime.relay import LivePush

log = structlog.get_logger("realtime")

TOPIC = "metrics"
WINDOW = timedelta(minutes=1)
COUNTED = {
    "order.placed": "ordersLastMinute",
    "order.paid": "paymentsLastMinute",
    "message.sent": "messagesLastMinute",
    "product.viewed": "viewsLastMinute",
    "search.performed": "searchesLastMinute",
    "user.registered": "signupsLastMinute",
    "user.logged_in": "loginsLastMinute",
}


def recent_activity(store: Store, now: datetime) -> dict[str, Any]:
    with store.read() as db:
        rows = db.execute(
            select(Event.event_type, func.count())
            .where(Event.occurred_at > now - WINDOW, Event.occurred_at <= now)
            .group_by(Event.event_type)
        ).all()
    counts = dict.fromkeys(COUNTED.values(), 0)
    total = 0
    for event_type, n in rows:
        total += n
        if event_type in COUNTED:
            counts[COUNTED[event_type]] = n
    return {**counts, "eventsLastMinute": total}


async def cluster_sockets(app: FastAPI) -> dict[str, int]:
    """Sockets across every process that reported in the last few seconds (Redis), else this one."""
    from api.realtime.hub import Hub

    hub: Hub = app.state.hub
    local = {"connections": hub.connection_count, "onlineUsers": len(hub.by_user), "processes": 1}
    if hub.redis_state != "ok" or not hub.redis_url:
        return local
    redis = Redis.from_url(hub.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        procs = await redis.hgetall(hub.procs_key)
    except (RedisError, OSError):
        return local
    finally:
        await redis.aclose()
    fresh = [orjson.loads(v) for v in procs.values() if time.time() - orjson.loads(v)["t"] < 10]
    if not fresh:
        return local
    return {
        "connections": sum(p["c"] for p in fresh),
        "onlineUsers": sum(p["u"] for p in fresh),
        "processes": len(fresh),
    }


async def run_metrics(app: FastAPI) -> None:
    from api.realtime.hub import Hub

    hub: Hub = app.state.hub
    interval = app.state.settings.metrics_update_seconds
    while True:
        await asyncio.sleep(interval)
        if not hub.by_topic.get(TOPIC):
            continue
        try:
            now = app.state.clock.now()
            data = await asyncio.to_thread(recent_activity, app.state.store, now)
            data.update(await cluster_sockets(app))
            data["asOf"] = now
            hub.deliver_local([LivePush("metrics_update", data, topic=TOPIC)])
        except Exception:  # a failed snapshot must not stop the next one
            log.exception("metrics_update_failed")
