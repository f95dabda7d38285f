"""Local sockets and the cross-process bus.

Every process keeps its own sockets by user and by topic. A push is delivered to the local sockets at
once and, when Redis is configured, published on one pub/sub channel that every other process
listens to (each skips what it published itself). Without Redis, or while Redis is away, delivery
stays local: sockets keep working and fan-out resumes when Redis returns, with what was published
in between lost to the other processes (pub/sub keeps nothing; clients reconcile over REST).

Each socket has a bounded send queue drained by its own task, so a slow client never holds up the
others: when its queue is full it is closed."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
from fastapi import FastAPI, WebSocket
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.websockets import WebSocketState

from api.core.clock import Clock
from api.core.deps import Principal
from api.core.settings import Settings
from api.realtime.relay import LivePush

log = structlog.get_logger("realtime")

WS_SLOW_CONSUMER = 1013  # "try again later": the client did not read its frames fast enough


@dataclass(eq=False)
class Connection:
    id: str
    principal: Principal
    ws: WebSocket
    queue: asyncio.Queue[str]
    topics: set[str] = field(default_factory=set)
    expires_at: float = 0.0
    closing: bool = False

    @property
    def user_id(self) -> int:
        return self.principal.user_id

    def offer(self, frame: str) -> bool:
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            return False
        return True


@dataclass
class HubStats:
    delivered: int = 0  # frames queued to local sockets
    published: int = 0  # pushes sent to Redis
    received: int = 0  # pushes received from other processes
    fanout_dropped: int = 0  # pushes other processes could not get (Redis away)
    slow_closed: int = 0
    flood_closed: int = 0


class Hub:
    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.origin = uuid.uuid4().hex
        self.by_user: dict[int, set[Connection]] = defaultdict(set)
        self.by_topic: dict[str, set[Connection]] = defaultdict(set)
        self.stats = HubStats()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.redis_url = settings.redis_url
        self.channel = settings.live_channel
        self.procs_key = f"{settings.live_channel}:procs"  # per-process socket counts, for the metrics
        self.redis_state = "not_configured" if not settings.redis_url else "connecting"
        self.redis_error: str | None = None
        self._out: asyncio.Queue[list[LivePush]] | None = None
        self._activity: deque[dict[str, Any]] = deque(maxlen=500)

    # --- sockets ------------------------------------------------------------------------------------

    def add(self, conn: Connection) -> None:
        self.by_user[conn.user_id].add(conn)

    def remove(self, conn: Connection) -> None:
        conns = self.by_user.get(conn.user_id)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self.by_user[conn.user_id]
        for topic in conn.topics:
            subs = self.by_topic.get(topic)
            if subs is not None:
                subs.discard(conn)
                if not subs:
                    del self.by_topic[topic]
        conn.topics.clear()

    def subscribe(self, conn: Connection, topic: str) -> None:
        conn.topics.add(topic)
        self.by_topic[topic].add(conn)

    def unsubscribe(self, conn: Connection, topic: str) -> None:
        conn.topics.discard(topic)
        subs = self.by_topic.get(topic)
        if subs is not None:
            subs.discard(conn)

    @property
    def connection_count(self) -> int:
        return sum(len(c) for c in self.by_user.values())

    def online(self, user_id: int) -> bool:
        return bool(self.by_user.get(user_id))

    # --- delivery -----------------------------------------------------------------------------------

    def frame(self, push: LivePush) -> str:
        return orjson.dumps(
            {
                "type": push.type,
                "data": push.data,
                "meta": {"timestamp": self.clock.now().isoformat().replace("+00:00", "Z")},
            },
            default=str,
        ).decode()

    def deliver_local(self, pushes: Iterable[LivePush]) -> None:
        for push in pushes:
            targets: list[Connection] = []
            for uid in push.user_ids:
                targets.extend(self.by_user.get(uid, ()))
            if push.topic is not None:
                targets.extend(self.by_topic.get(push.topic, ()))
            if not targets:
                continue
            frame = self.frame(push)
            for conn in set(targets):
                if conn.closing:
                    continue
                if conn.offer(frame):
                    self.stats.delivered += 1
                else:
                    self.stats.slow_closed += 1
                    self._close_soon(conn, WS_SLOW_CONSUMER, "send queue full: client too slow")

    def _close_soon(self, conn: Connection, code: int, reason: str) -> None:
        conn.closing = True

        async def close() -> None:
            with contextlib.suppress(Exception):
                if conn.ws.application_state != WebSocketState.DISCONNECTED:
                    await conn.ws.close(code=code, reason=reason)

        asyncio.get_running_loop().create_task(close())

    async def publish(self, pushes: list[LivePush]) -> None:
        """From the event loop: local sockets now, other processes through Redis."""
        self._publish_now(pushes)

    def publish_batch(self, pushes: Iterable[LivePush]) -> None:
        """From any thread (request handlers after their commit): hands the pushes to the loop."""
        batch = list(pushes)
        loop = self.loop
        if not batch or loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._publish_now(batch)
        else:
            loop.call_soon_threadsafe(self._publish_now, batch)

    def _publish_now(self, batch: list[LivePush]) -> None:
        self.deliver_local(batch)
        self._enqueue_fanout(batch)

    def _enqueue_fanout(self, batch: list[LivePush]) -> None:
        if self._out is None:
            return
        if self.redis_state != "ok":
            self.stats.fanout_dropped += len(batch)
            return
        self._out.put_nowait(batch)

    # --- new_activity ---------------------------------------------------------------------------------

    def on_events(self, events: list[dict[str, Any]]) -> None:
        """Committed outbox events, from the committing thread: kept for the next activity flush."""
        if self.redis_state != "ok" and not self.by_topic:
            return  # nobody here subscribes and no other process can hear: nothing to keep
        for ev in events:
            self._activity.append(
                {
                    "eventId": ev["event_id"],
                    "eventType": ev["event_type"],
                    "entityType": ev["entity_type"],
                    "entityId": ev["entity_id"],
                    "shopId": ev["shop_id"],
                    "productId": ev["product_id"],
                    "orderId": ev["order_id"],
                    "actorUserId": ev["actor_user_id"],
                    "occurredAt": ev["occurred_at"],
                }
            )

    def _flush_activity(self) -> None:
        if not self._activity:
            return
        items = list(self._activity)
        self._activity.clear()
        pushes = [LivePush("new_activity", {"items": items}, topic="activity")]
        by_shop: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for item in items:
            if item["shopId"] is not None:
                by_shop[item["shopId"]].append(item)
        pushes += [
            LivePush("new_activity", {"items": shop_items}, topic=f"shop:{shop_id}:activity")
            for shop_id, shop_items in by_shop.items()
        ]
        self._publish_now(pushes)

    # --- the loops --------------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        mode = "redis" if self.redis_state == "ok" else "in-process"
        out: dict[str, Any] = {
            "mode": mode,
            "fanout": self.redis_state,
            "connections": self.connection_count,
            "users": len(self.by_user),
            "process": self.origin[:12],
        }
        if self.redis_error:
            out["error"] = self.redis_error
        if self.redis_state != "ok":
            out["message"] = (
                "STORE_REDIS_URL is not set: live events reach this process's sockets only"
                if self.redis_state == "not_configured"
                else "Redis is unreachable: live events reach this process's sockets only until it returns"
            )
        return out


async def _fanout_loop(hub: Hub, redis: Redis) -> None:
    assert hub._out is not None
    while True:
        batch = await hub._out.get()
        batches = [batch]
        while not hub._out.empty() and len(batches) < 100:
            batches.append(hub._out.get_nowait())
        message = orjson.dumps(
            {
                "o": hub.origin,
                "p": [{"t": p.type, "d": p.data, "u": p.user_ids, "c": p.topic} for b in batches for p in b],
            },
            default=str,
        )
        try:
            await redis.publish(hub.channel, message)
            hub.stats.published += sum(len(b) for b in batches)
        except (RedisError, OSError) as exc:
            hub.stats.fanout_dropped += sum(len(b) for b in batches)
            hub.redis_state = "down"
            hub.redis_error = type(exc).__name__
            raise


async def _listen(hub: Hub, redis: Redis) -> None:
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(hub.channel)
    hub.redis_state = "ok"
    hub.redis_error = None
    log.info("live_fanout_connected", process=hub.origin[:12])
    try:
        async for message in pubsub.listen():
            if message.get("type") != "message":
                continue
            body = orjson.loads(message["data"])
            if body.get("o") == hub.origin:
                continue
            pushes = [
                LivePush(type=p["t"], data=p["d"], user_ids=tuple(p["u"]), topic=p["c"]) for p in body["p"]
            ]
            hub.stats.received += len(pushes)
            hub.deliver_local(pushes)
    finally:
        with contextlib.suppress(Exception):
            await pubsub.aclose()  # type: ignore[no-untyped-call]


async def _heartbeat(hub: Hub, redis: Redis) -> None:
    while True:
        await redis.hset(
            hub.procs_key,
            hub.origin,
            orjson.dumps({"c": hub.connection_count, "u": len(hub.by_user), "t": time.time()}),
        )
        await asyncio.sleep(2.0)


async def _redis_loop(hub: Hub) -> None:
    """Keeps the subscription alive: on any Redis failure, back off and reconnect."""
    assert hub.redis_url
    delay = 0.2
    while True:
        redis = Redis.from_url(hub.redis_url, socket_connect_timeout=1.0, health_check_interval=5)
        tasks: list[asyncio.Task[None]] = []
        try:
            await redis.ping()
            tasks = [
                asyncio.create_task(_listen(hub, redis)),
                asyncio.create_task(_fanout_loop(hub, redis)),
                asyncio.create_task(_heartbeat(hub, redis)),
            ]
            delay = 0.2
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        except (RedisError, OSError) as exc:
            if hub.redis_state != "down":
                log.warning("live_fanout_down", error=type(exc).__name__, detail=str(exc)[:200])
            hub.redis_state = "down"
            hub.redis_error = type(exc).__name__
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await redis.aclose()
        # Pushes queued while down would reach the others late and out of order: drop them.
        if hub._out is not None:
            while not hub._out.empty():
                hub.stats.fanout_dropped += len(hub._out.get_nowait())
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)


async def _activity_loop(hub: Hub) -> None:
    while True:
        await asyncio.sleep(0.5)
        hub._flush_activity()


def bind(app: FastAPI) -> None:
    """Called by the lifespan before the app serves: from here on, commits reach this hub."""
    hub: Hub = app.state.hub
    hub.loop = asyncio.get_running_loop()
    hub._out = asyncio.Queue()
    app.state.store.live.attach(hub)
    app.state.store.live.event_listeners.append(hub.on_events)


def unbind(app: FastAPI) -> None:
    hub: Hub = app.state.hub
    relay = app.state.store.live
    if relay.sink is hub:  # another app may share the store (tests); leave its hub attached
        relay.attach(None)
    with contextlib.suppress(ValueError):
        relay.event_listeners.remove(hub.on_events)


async def run_hub(app: FastAPI) -> None:
    hub: Hub = app.state.hub
    from api.realtime.metrics import run_metrics  # the metrics loop reads the store

    loops = [_activity_loop(hub), run_metrics(app)]
    if hub.redis_url:
        loops.append(_redis_loop(hub))
    await asyncio.gather(*loops)
