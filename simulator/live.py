"""Live mode: a trickle of realistic traffic against a running store API, so real-time views move.

It picks up the marketplace a backfill planted (from `truth.json`: the plan's seed and the store's ids)
and lets its people act in real time over HTTP: buyers browse, buy, chat and call, sellers ship and
restock, now and then a newcomer signs up and a fraudster strikes. Think times are the backfill's,
scaled by `speed` (0.05: a minute of thinking takes three seconds). Newcomers and fraudulent orders are
appended to `live_truth.jsonl` next to the ground truth.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from simulator.actor import Actor
from simulator.client import HttpStoreClient, StoreClient
from simulator.personas import SPECS, Persona
from simulator.profiles import get_profile
from simulator.truth import read_truth
from simulator.world import SimUser, World, build_world

LIVE_TRUTH_FILE = "live_truth.jsonl"
SELLER_SHARE = 0.15  # of live sessions
NEWCOMER_SHARE = 0.05
FRAUD_SHARE = 0.02
log = logging.getLogger(__name__)


class NoWorld(RuntimeError):
    """Live mode needs a backfilled store and its ground truth."""


def restore_world(truth: dict[str, Any]) -> World:
    """The backfill's plan rebuilt from its seed, with the store's ids (and latest prices) from the truth."""
    world = build_world(
        get_profile(truth["profile"]), truth["seed"], date.fromisoformat(truth["start"]), truth["days"]
    )
    for user, known in zip([*world.sellers, *world.buyers], truth["users"], strict=True):
        user.id = known["userId"]
    for cat, known in zip(world.categories, truth["categories"], strict=True):
        cat.id = known["categoryId"]
    for shop, known in zip(world.shops, truth["shops"], strict=True):
        shop.id = known["shopId"]
    for product, known in zip(world.products, truth["products"], strict=True):
        product.id = known["productId"]
    return world


@dataclass
class LiveStats:
    started: float = field(default_factory=time.monotonic)
    sessions: int = 0
    failed_sessions: int = 0
    running: int = 0
    last_error: str = ""


class Live(Actor):
    """Acts on the wall clock: pauses are real (scaled) sleeps, and the server's own clock stamps events."""

    def __init__(
        self, world: World, api: StoreClient, rng: random.Random, *, speed: float, data_dir: Path
    ) -> None:
        super().__init__(world, api, rng)
        self.speed = speed
        self.data_dir = data_dir
        self.run_id = uuid.uuid4().hex[:8]
        self.busy: set[int] = set()
        self.day = max(0, (datetime.now(UTC).date() - world.start).days)
        # Who may visit, weighted by how often their persona comes: fixed for a run.
        self.regulars = [
            u for u in world.buyers if u.persona is not Persona.fraudster and u.signup_day <= self.day
        ]
        self.weights = [SPECS[u.persona].activity for u in self.regulars]
        # What the backfill left waiting is not known here: every owner looks once.
        for shop in world.shops:
            self.to_ship[shop.id] = self.to_deliver[shop.id] = self.unanswered[shop.id] = 1

    def now(self) -> float:
        return time.monotonic()

    async def pause(self, lo: float = 5.0, hi: float = 60.0) -> None:
        await asyncio.sleep(self.rng.uniform(lo, hi) * self.speed)

    def delivered_before(self) -> datetime:
        return datetime.now(UTC) - timedelta(minutes=10)

    def key_prefix(self) -> str:
        return f"live-{self.world.seed}-{self.run_id}"

    def record(self, entry: dict[str, Any]) -> None:
        with (self.data_dir / LIVE_TRUTH_FILE).open("a") as f:
            f.write(json.dumps({"at": datetime.now(UTC).isoformat(), **entry}) + "\n")

    def newcomer(self, persona: Persona) -> SimUser:
        tag = f"{self.run_id}{self.rng.getrandbits(24):06x}"
        k = len(self.world.categories)
        preferred = sorted(self.rng.sample(range(k), min(k, self.rng.randint(*SPECS[persona].preferred))))
        return SimUser(-1, persona, f"live.{tag}@example.com", f"live_{tag}", preferred, self.day)

    async def one_session(self) -> None:
        """One person's visit, chosen as the backfill would choose: sellers, regulars, newcomers, fraud."""
        r, w = self.rng, self.world
        roll = r.random()
        if roll < FRAUD_SHARE:
            user = self.newcomer(Persona.fraudster)
            await self.register(user)
            self.record({"userId": user.id, "persona": str(user.persona)})
            # Its own orders: other visits run concurrently and append to self.fraudulent too.
            for order_id in await self.fraud_session(user):
                self.record({"fraudulentOrder": order_id, "userId": user.id})
            return
        if roll < FRAUD_SHARE + NEWCOMER_SHARE:
            persona = r.choices(
                [p for p in SPECS if p is not Persona.fraudster],
                [s.share for p, s in SPECS.items() if p is not Persona.fraudster],
            )[0]
            user = self.newcomer(persona)
            await self.register(user)
            self.record({"userId": user.id, "persona": str(user.persona)})
            await self.buyer_session(user)
            return
        if roll < FRAUD_SHARE + NEWCOMER_SHARE + SELLER_SHARE:
            seller = r.choice(w.sellers)
            if seller.id in self.busy:
                return
            self.busy.add(seller.id)
            try:
                await self.seller_session(seller)
            finally:
                self.busy.discard(seller.id)
            return
        buyer = r.choices(self.regulars, self.weights)[0] if self.regulars else None
        if buyer is None or buyer.id in self.busy:
            return
        self.busy.add(buyer.id)
        try:
            await self.buyer_session(buyer)
        finally:
            self.busy.discard(buyer.id)


async def live(
    base_url: str,
    data_dir: Path,
    *,
    sessions_per_minute: float = 30.0,
    concurrency: int = 20,
    speed: float = 0.05,
    duration: float | None = None,
    seed: int | None = None,
    on_tick: Callable[[LiveStats], None] | None = None,
) -> LiveStats:
    """Starts a visit every 60/sessions_per_minute seconds on average (at most `concurrency` at once)
    until cancelled or `duration` seconds have passed; a failed visit is counted, never fatal."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request would drown the console
    truth = read_truth(data_dir)
    if truth is None:
        raise NoWorld(f"no ground truth in {data_dir}: run a backfill first (store simulate)")
    world = restore_world(truth)
    rng = random.Random(seed if seed is not None else time.time_ns())  # noqa: S311 - not security
    stats = LiveStats()
    gate = asyncio.Semaphore(concurrency)
    tasks: set[asyncio.Task[None]] = set()
    async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as http:
        actor = Live(world, HttpStoreClient(http), rng, speed=speed, data_dir=data_dir)

        async def visit() -> None:
            async with gate:
                stats.running += 1
                try:
                    await actor.one_session()
                    stats.sessions += 1
                except Exception as exc:  # the server restarting, a 5xx: count it and go on
                    stats.failed_sessions += 1
                    stats.last_error = f"{type(exc).__name__}: {exc}"[:300]
                    log.warning("live session failed: %s", stats.last_error)
                finally:
                    stats.running -= 1

        deadline = None if duration is None else time.monotonic() + duration
        try:
            while deadline is None or time.monotonic() < deadline:
                if len(tasks) < concurrency * 2:
                    task = asyncio.create_task(visit())
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                if on_tick:
                    on_tick(stats)
                await asyncio.sleep(rng.expovariate(sessions_per_minute / 60.0))
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return stats


def run_live(base_url: str, data_dir: Path, **kwargs: Any) -> LiveStats:
    return asyncio.run(live(base_url, data_dir, **kwargs))
