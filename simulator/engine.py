"""Backfill: N simulated days of marketplace life, every action a request to the in-process store API.

The app is built with a ManualClock that the engine moves through the simulated days, so every row and
event carries its historical time. Users act in sessions sorted by their start time; the clock only
moves forward. The one direct database write is the admin bootstrap (granting the admin role, which
no API offers to a first user); everything else goes through the app's ASGI interface.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from api.auth import service as auth_service
from api.core.clock import ManualClock
from api.core.settings import Settings
from api.db.engine import Store
from api.main import create_app
from api.outbox.service import Uow
from simulator.actor import Actor
from simulator.client import AsgiStoreClient, StoreClient
from simulator.personas import SPECS, Persona
from simulator.profiles import Profile
from simulator.truth import build_truth, write_truth
from simulator.world import SimUser, World, build_world

DAY = 86_400.0
# Relative chance of a session starting in each hour of the day (UTC).
HOURLY = (1, 1, 1, 1, 1, 2, 3, 5, 6, 6, 6, 6, 7, 6, 6, 6, 6, 7, 8, 9, 9, 8, 5, 2)
INITIAL_STOCK = (20, 300)


@dataclass
class BackfillResult:
    truth: dict[str, Any]
    truth_path: Path
    requests: int
    failures: int
    seconds: float
    orders: int
    fraudulent_orders: int

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def simulation_settings(settings: Settings) -> Settings:
    """Nothing may run on wall-clock timers during a backfill, and what users see (and so what they do)
    must depend only on the seed.

    Simulated accounts share one published password, so their hashes get argon2id's cheapest cost
    (0.1 ms instead of 20 ms): at OWASP's cost sign-ups and logins would take most of a backfill.
    """
    return settings.model_copy(
        update={
            "password_hash_time_cost": 1,
            "password_hash_memory_kib": 256,
            "session_sweep_seconds": 0,
            "delivery_poll_seconds": 0,
            "call_sweep_seconds": 0,
            "search_event_flush_seconds": 0,
            # Listing pages stay off: their popularity order would lag by wall-clock time, so the same
            # seed could see (and buy) different products. Product details may stay cached: what lags
            # there (the view counter) is nothing a simulated user decides on.
            "read_cache_seconds": 0,
        }
    )


@dataclass
class _Session:
    start: float
    kind: str  # buyer, seller, fraud
    user: SimUser
    register: bool = False


class Backfill(Actor):
    """Moves the app's injected clock through the simulated days; every pause is simulated time."""

    def __init__(
        self, world: World, api: StoreClient, clock: ManualClock, store: Store, rng: random.Random
    ) -> None:
        super().__init__(world, api, rng)
        self.clock = clock
        self.store = store
        self.t0 = datetime.combine(world.start, datetime.min.time(), UTC)

    def now(self) -> float:
        return (self.clock.now() - self.t0).total_seconds()

    def at(self, seconds: float) -> None:
        if seconds > self.now():
            self.clock.set(self.t0 + timedelta(seconds=seconds))

    async def pause(self, lo: float = 5.0, hi: float = 60.0) -> None:
        self.clock.advance(timedelta(seconds=self.rng.uniform(lo, hi)))

    def delivered_before(self) -> datetime:
        return self.t0 + timedelta(seconds=self.day * DAY)

    # --- day 0: the admin, categories, shops and products -------------------------------------
    async def bootstrap(self) -> None:
        w = self.world
        self.at(300.0)
        admin = SimUser(-1, Persona.seller, f"admin.s{w.seed}@example.com", f"admin_s{w.seed}", [], 0)
        await self.register(admin)
        # The only direct write: no API can make the first admin (as `store users create-admin` does).
        with self.store.write() as db:
            auth_service.set_role(Uow(session=db, now=self.clock.now()), admin.id, "admin")
            db.commit()
        for cat in w.categories:
            token = await self.token(admin)
            body: dict[str, Any] = {"name": cat.name}
            cat.id = (await self.api.call("POST", "/api/categories", token=token, json=body))["id"]
            self.category_by_id[cat.id] = cat.index
            await self.pause(1, 5)
        for shop in w.shops:
            await self.register(shop.owner, "seller")
            body = {"name": shop.name, "description": "Simulated shop", "deliveryAvailable": True}
            token = await self.token(shop.owner)
            shop.id = (await self.api.call("POST", "/api/shops", token=token, json=body))["id"]
            await self.pause(1, 5)
        for p in w.products:
            owner = w.shops[p.shop].owner
            body = {
                "name": p.name,
                "description": f"A {w.categories[p.category].keyword} for the crypto crowd",
                "price": str(p.price),
                "currency": "USDT",
                "stock": self.rng.randint(*INITIAL_STOCK),
                "categoryId": w.categories[p.category].id,
            }
            token = await self.token(owner)
            path = f"/api/shops/{w.shops[p.shop].id}/products"
            p.id = (await self.api.call("POST", path, token=token, json=body))["id"]
            await self.pause(0.5, 2)

    # --- one day ------------------------------------------------------------------------------
    def _start(self, day: int) -> float:
        hour = self.rng.choices(range(24), HOURLY)[0]
        return day * DAY + hour * 3600 + self.rng.uniform(0, 3600)

    async def run_day(self, day: int) -> None:
        self.day = day
        sessions: list[_Session] = []
        for shop in self.world.shops:
            if self.rng.random() < self.world.profile.seller_activity:
                sessions.append(_Session(day * DAY + self.rng.uniform(7, 11) * 3600, "seller", shop.owner))
        weekly = self.world.demand.weekly(day)
        scale = self.world.profile.activity
        for u in self.world.buyers:
            if u.persona is Persona.fraudster:
                if u.signup_day == day:
                    sessions.append(_Session(self._start(day), "fraud", u, register=True))
            elif u.signup_day == day:
                sessions.append(_Session(self._start(day), "buyer", u, register=True))
            elif u.signup_day < day and self.rng.random() < SPECS[u.persona].activity * weekly * scale:
                sessions.append(_Session(self._start(day), "buyer", u))
        sessions.sort(key=lambda s: (s.start, s.kind, s.user.index))
        for s in sessions:
            self.at(s.start)
            if s.register:
                await self.register(s.user)
            if s.kind == "seller":
                await self.seller_session(s.user)
            elif s.kind == "fraud":
                await self.fraud_session(s.user)
            else:
                await self.buyer_session(s.user)


def run_backfill(
    settings: Settings,
    profile: Profile,
    *,
    seed: int,
    days: int | None = None,
    start: date | None = None,
    on_day: Callable[[int, int], None] | None = None,
) -> BackfillResult:
    """Simulate `days` days (the profile's by default), ending yesterday unless `start` is given."""
    return asyncio.run(backfill(settings, profile, seed=seed, days=days, start=start, on_day=on_day))


async def backfill(
    settings: Settings,
    profile: Profile,
    *,
    seed: int,
    days: int | None = None,
    start: date | None = None,
    on_day: Callable[[int, int], None] | None = None,
) -> BackfillResult:
    days = days or profile.days
    start = start or (datetime.now(UTC).date() - timedelta(days=days))
    world = build_world(profile, seed, start, days)
    sim_settings = simulation_settings(settings)
    clock = ManualClock(datetime.combine(start, datetime.min.time(), UTC), tick=timedelta(milliseconds=1))
    store = Store.from_settings(sim_settings)
    app = create_app(sim_settings, clock=clock, store=store)
    began = time.perf_counter()
    try:
        async with app.router.lifespan_context(app):
            api = AsgiStoreClient(app)
            sim = Backfill(world, api, clock, store, random.Random(seed + 1))  # noqa: S311 - not security
            await sim.bootstrap()
            for day in range(days):
                await sim.run_day(day)
                if on_day:
                    on_day(day, days)
    finally:
        store.engine.dispose()
    seconds = time.perf_counter() - began
    truth = build_truth(world, sim.fraudulent)
    path = write_truth(truth, sim_settings.data_dir)
    return BackfillResult(truth, path, api.requests, api.failures, seconds, sim.orders, len(sim.fraudulent))
