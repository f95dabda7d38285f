"""Backfill: N simulated days of marketplace life, every action a request to the in-process store API.

The app is built with a ManualClock that the engine moves through the simulated days, so every row and
event carries its historical time. Users act in sessions sorted by their start time; the clock only
moves forward. The one direct database write is the admin bootstrap (granting the admin role, which
no API offers to a first user); everything else goes through HTTP.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from api.auth import service as auth_service
from api.core.clock import ManualClock
from api.core.settings import Settings
from api.db.engine import Store
from api.main import create_app
from api.outbox.service import Uow
from simulator import personas
from simulator.client import StoreClient
from simulator.demand import purchase_probability
from simulator.personas import SPECS, Persona
from simulator.profiles import Profile
from simulator.truth import build_truth, write_truth
from simulator.world import PASSWORD, SimUser, World, build_world

DAY = 86_400.0
IDLE_MARGIN = 25 * 60.0  # log in again before the store's 30-minute idle limit ends the session
TOKEN_MARGIN = 13 * 60.0  # refresh before the 15-minute access token runs out
# Relative chance of a session starting in each hour of the day (UTC).
HOURLY = (1, 1, 1, 1, 1, 2, 3, 5, 6, 6, 6, 6, 7, 6, 6, 6, 6, 7, 8, 9, 9, 8, 5, 2)
SORTS = ("newest", "popular", "rating")
CHAINS = ("TRON", "ETH", "BSC", "SOL")


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
    """Nothing may run on wall-clock timers during a backfill, and reads must not be served from a
    wall-clock cache: what users see (and so what they do) then depends only on the seed."""
    return settings.model_copy(
        update={
            "session_sweep_seconds": 0,
            "delivery_poll_seconds": 0,
            "call_sweep_seconds": 0,
            "search_event_flush_seconds": 0,
            "read_cache_seconds": 0,
            "cache_detail_seconds": 0,
        }
    )


@dataclass
class _Session:
    start: float
    kind: str  # buyer, seller, fraud
    user: SimUser
    register: bool = False


@dataclass
class Backfill:
    world: World
    api: StoreClient
    clock: ManualClock
    store: Store
    rng: random.Random
    fraudulent: list[int] = field(default_factory=list)
    orders: int = 0
    reviewed: set[tuple[int, int]] = field(default_factory=set)
    followed: set[tuple[int, int]] = field(default_factory=set)
    _keys: int = 0

    def __post_init__(self) -> None:
        self.t0 = datetime.combine(self.world.start, datetime.min.time(), UTC)
        self.category_by_id: dict[int, int] = {}
        self.day = 0

    # --- simulated time -----------------------------------------------------------------------
    def now(self) -> float:
        return (self.clock.now() - self.t0).total_seconds()

    def at(self, seconds: float) -> None:
        if seconds > self.now():
            self.clock.set(self.t0 + timedelta(seconds=seconds))

    def step(self, lo: float = 5.0, hi: float = 60.0) -> None:
        self.clock.advance(timedelta(seconds=self.rng.uniform(lo, hi)))

    # --- sessions -----------------------------------------------------------------------------
    async def register(self, user: SimUser, role: str = "buyer") -> None:
        body = {"email": user.email, "username": user.username, "password": PASSWORD, "role": role}
        user.id = (await self.api.call("POST", "/api/auth/register", json=body))["id"]

    async def login(self, user: SimUser) -> None:
        tokens = await self.api.call(
            "POST",
            "/api/auth/login",
            json={"email": user.email, "password": PASSWORD, "deviceInfo": {"client": "simulator"}},
        )
        self._take(user, tokens)

    def _take(self, user: SimUser, tokens: dict[str, Any]) -> None:
        user.access_token = tokens["accessToken"]
        user.refresh_token = tokens["refreshToken"]
        user.session_id = tokens["sessionId"]
        user.token_at = user.active_at = self.now()

    async def token(self, user: SimUser) -> str:
        """A live access token: a new login after an idle gap, a refresh when the token is old."""
        now = self.now()
        if not user.access_token or now - user.active_at > IDLE_MARGIN:
            await self.login(user)
        elif now - user.token_at > TOKEN_MARGIN:
            tokens = await self.api.call(
                "POST", "/api/auth/refresh", json={"refreshToken": user.refresh_token}
            )
            self._take(user, tokens)
        user.active_at = self.now()
        return user.access_token

    def _key(self) -> str:
        self._keys += 1
        return f"sim-{self.world.seed}-{self._keys}"

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
            cat.id = (await self.api.call("POST", "/api/categories", token=token, json={"name": cat.name}))[
                "id"
            ]
            self.category_by_id[cat.id] = cat.index
            self.step(1, 5)
        for shop in w.shops:
            await self.register(shop.owner, "seller")
            body = {"name": shop.name, "description": "Simulated shop", "deliveryAvailable": True}
            token = await self.token(shop.owner)
            shop.id = (await self.api.call("POST", "/api/shops", token=token, json=body))["id"]
            self.step(1, 5)
        for p in w.products:
            owner = w.shops[p.shop].owner
            body = {
                "name": p.name,
                "description": f"A {w.categories[p.category].keyword} for the crypto crowd",
                "price": str(p.price),
                "currency": "USDT",
                "stock": 100_000,
                "categoryId": w.categories[p.category].id,
            }
            token = await self.token(owner)
            path = f"/api/shops/{w.shops[p.shop].id}/products"
            p.id = (await self.api.call("POST", path, token=token, json=body))["id"]
            self.step(0.5, 2)

    # --- one day ------------------------------------------------------------------------------
    def _start(self, day: int) -> float:
        hour = self.rng.choices(range(24), HOURLY)[0]
        return day * DAY + hour * 3600 + self.rng.uniform(0, 3600)

    async def run_day(self, day: int) -> None:
        self.day = day
        sessions: list[_Session] = []
        for shop in self.world.shops:
            if self.rng.random() < personas.SELLER_ACTIVITY:
                sessions.append(_Session(day * DAY + self.rng.uniform(7, 11) * 3600, "seller", shop.owner))
        weekly = self.world.demand.weekly(day)
        for u in self.world.buyers:
            if u.persona is Persona.fraudster:
                if u.signup_day == day:
                    sessions.append(_Session(self._start(day), "fraud", u, register=True))
            elif u.signup_day == day:
                sessions.append(_Session(self._start(day), "buyer", u, register=True))
            elif u.signup_day < day and self.rng.random() < SPECS[u.persona].activity * weekly:
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

    # --- buyers -------------------------------------------------------------------------------
    async def _browse(self, user: SimUser, token: str) -> list[dict[str, Any]]:
        w, spec, r = self.world, SPECS[user.persona], self.rng
        if user.favourite_shops and r.random() < 0.6:
            shop = w.shops[r.choice(user.favourite_shops)]
            params: dict[str, Any] = {"shopId": shop.id, "sort": r.choice(SORTS)}
            return list(await self.api.call("GET", "/api/products", token=token, params=params))
        cat = w.categories[r.choice(user.preferred) if r.random() < 0.8 else r.randrange(len(w.categories))]
        sort = "price_asc" if r.random() < spec.price_sort else r.choice(SORTS)
        if r.random() < 0.3:
            params = {"q": cat.keyword, "category": cat.id, "sort": sort}
            return list(await self.api.call("GET", "/api/products/search", token=token, params=params))
        params = {"categoryId": cat.id, "sort": sort}
        return list(await self.api.call("GET", "/api/products", token=token, params=params))

    async def buyer_session(self, user: SimUser) -> None:
        spec, r, w = SPECS[user.persona], self.rng, self.world
        token = await self.token(user)
        await self._review_delivered(user)
        viewed: list[dict[str, Any]] = []
        for _ in range(r.randint(*spec.views)):
            token = await self.token(user)
            cards = await self._browse(user, token)
            self.step(3, 20)
            if not cards:
                continue
            card = cards[min(len(cards) - 1, int(r.expovariate(0.3)))]
            pid = card["id"]
            product = await self.api.call("GET", f"/api/products/{pid}", token=token)
            view = {"productId": pid, "sessionId": f"sim-{user.session_id}", "duration": r.randint(5, 240)}
            await self.api.call("POST", "/api/track/view", token=token, json=view)
            viewed.append(product)
            self.step(10, 90)
            # The endpoint toggles: following a followed shop again would unfollow it.
            if r.random() < spec.follow and (user.id, product["shopId"]) not in self.followed:
                self.followed.add((user.id, product["shopId"]))
                await self.api.call("POST", f"/api/shops/{product['shopId']}/follow", token=token)
            price = Decimal(str(product["price"]))
            if r.random() < spec.alert:
                target = (price * Decimal("0.85")).quantize(Decimal("0.01"))
                # 409 when this user already watches the product: that is fine.
                await self.api.send(
                    "POST",
                    "/api/price-alerts",
                    token=token,
                    json={"productId": pid, "targetPrice": str(target)},
                )
            cat = self.category_by_id.get(product["categoryId"] or 0)
            if cat is None:
                continue
            p = purchase_probability(
                spec.purchase,
                spec.elasticity,
                float(price),
                w.categories[cat].reference,
                w.demand.intensity(cat, self.day),
            )
            if r.random() < p:
                await self._buy(user, product, r.randint(*spec.quantity), spec.cancel)
        if viewed and r.random() < spec.chat:
            await self._chat(user, r.choice(viewed))

    async def _buy(self, user: SimUser, product: dict[str, Any], quantity: int, cancel: float) -> int | None:
        r = self.rng
        body = {
            "items": [{"productId": product["id"], "quantity": quantity}],
            "shippingAddress": "1 Sim Street",
        }
        status, order = await self.api.send(
            "POST",
            "/api/orders",
            token=await self.token(user),
            json=body,
            headers={"Idempotency-Key": self._key()},
        )
        if status >= 400:
            return None
        self.orders += 1
        self.step(20, 120)
        if r.random() < cancel:
            await self.api.call(
                "PUT",
                f"/api/orders/{order['id']}/cancel",
                token=await self.token(user),
                json={"reason": "changed my mind"},
            )
        else:
            pay = {"txHash": f"0x{r.getrandbits(128):032x}", "chain": r.choice(CHAINS)}
            await self.api.call(
                "PUT", f"/api/orders/{order['id']}/pay", token=await self.token(user), json=pay
            )
        self.step(10, 60)
        return int(order["id"])

    async def _review_delivered(self, user: SimUser) -> None:
        spec, r = SPECS[user.persona], self.rng
        params = {"status": "delivered", "pageSize": 20}
        for order in await self.api.call("GET", "/api/orders", token=await self.token(user), params=params):
            for item in order["items"]:
                key = (user.id, item["productId"])
                if key in self.reviewed:
                    continue
                self.reviewed.add(key)
                if r.random() < spec.review:
                    rating = max(1, min(5, round(r.gauss(4.1, 0.9))))
                    body = {"rating": rating, "comment": "Simulated review"}
                    await self.api.send(
                        "POST",
                        f"/api/products/{item['productId']}/reviews",
                        token=await self.token(user),
                        json=body,
                    )
                    self.step(20, 90)

    async def _chat(self, user: SimUser, product: dict[str, Any]) -> None:
        r = self.rng
        conv = await self.api.call(
            "POST",
            "/api/conversations",
            token=await self.token(user),
            json={"shopId": product["shopId"], "productId": product["id"]},
        )
        body = {"body": f"Is the {product['name']} still available?"}
        await self.api.call(
            "POST", f"/api/conversations/{conv['id']}/messages", token=await self.token(user), json=body
        )
        self.step(10, 60)
        if r.random() < 0.3:  # a call to the seller about it
            seller = next(s.owner for s in self.world.shops if s.id == product["shopId"])
            call_body = {
                "receiverId": seller.id,
                "callType": r.choice(("audio", "video")),
                "conversationId": conv["id"],
            }
            status, call = await self.api.send(
                "POST", "/api/calls/initiate", token=await self.token(user), json=call_body
            )
            if status >= 400:
                return
            self.step(3, 20)
            if r.random() < personas.SELLER_CALL_ACCEPT:
                await self.api.call("PUT", f"/api/calls/{call['id']}/accept", token=await self.token(seller))
                self.step(30, 400)
                await self.api.call("PUT", f"/api/calls/{call['id']}/end", token=await self.token(user))
            else:
                await self.api.call("PUT", f"/api/calls/{call['id']}/reject", token=await self.token(seller))

    # --- sellers ------------------------------------------------------------------------------
    async def seller_session(self, seller: SimUser) -> None:
        r, w = self.rng, self.world
        day_start = self.t0 + timedelta(seconds=self.day * DAY)
        for order in await self.api.call(
            "GET",
            "/api/orders",
            token=await self.token(seller),
            params={"role": "seller", "status": "shipped", "pageSize": 100},
        ):
            if datetime.fromisoformat(order["shippedAt"]) < day_start:
                await self.api.call(
                    "PUT", f"/api/orders/{order['id']}/deliver", token=await self.token(seller)
                )
                self.step(2, 10)
        for order in await self.api.call(
            "GET",
            "/api/orders",
            token=await self.token(seller),
            params={"role": "seller", "status": "paid", "pageSize": 100},
        ):
            body = {"trackingNumber": f"SIM{r.getrandbits(40):010X}"}
            await self.api.call(
                "PUT", f"/api/orders/{order['id']}/ship", token=await self.token(seller), json=body
            )
            self.step(5, 30)
        for conv in await self.api.call("GET", "/api/conversations", token=await self.token(seller)):
            if conv["unreadCount"] and r.random() < personas.SELLER_CHAT_REPLY:
                body = {"body": "Yes, it ships within a day."}
                await self.api.call(
                    "POST",
                    f"/api/conversations/{conv['id']}/messages",
                    token=await self.token(seller),
                    json=body,
                )
                self.step(10, 60)
        if r.random() < personas.SELLER_PRICE_CHANGE:
            shop = next(s for s in w.shops if s.owner is seller)
            mine = [p for p in w.products if p.shop == shop.index]
            if mine:
                p = r.choice(mine)
                p.price = (p.price * Decimal(str(round(r.uniform(0.85, 1.15), 3)))).quantize(Decimal("0.01"))
                await self.api.call(
                    "PATCH",
                    f"/api/products/{p.id}",
                    token=await self.token(seller),
                    json={"price": str(p.price)},
                )

    # --- fraudsters ---------------------------------------------------------------------------
    async def fraud_session(self, user: SimUser) -> None:
        r, w = self.rng, self.world
        for _ in range(r.randint(*personas.FRAUD_FAILED_LOGINS)):  # guessing at someone's password
            await self.api.send(
                "POST",
                "/api/auth/login",
                json={"email": user.email, "password": f"guess-{r.getrandbits(32)}"},
            )
            self.step(1, 8)
        token = await self.token(user)
        cat = w.categories[r.randrange(len(w.categories))]
        cards = await self.api.call(
            "GET", "/api/products", token=token, params={"categoryId": cat.id, "sort": "price_desc"}
        )
        cards = cards or await self.api.call(
            "GET", "/api/products", token=token, params={"sort": "price_desc"}
        )
        if not cards:  # an empty store: nothing to steal
            return
        spec = SPECS[Persona.fraudster]
        for _ in range(r.randint(*personas.FRAUD_BURST)):
            card = cards[min(len(cards) - 1, int(r.expovariate(0.5)))]
            body = {"items": [{"productId": card["id"], "quantity": r.randint(*spec.quantity)}]}
            status, order = await self.api.send(
                "POST",
                "/api/orders",
                token=await self.token(user),
                json=body,
                headers={"Idempotency-Key": self._key()},
            )
            self.step(5, 40)
            if status >= 400:
                continue
            self.orders += 1
            self.fraudulent.append(int(order["id"]))
            if r.random() < personas.FRAUD_PAY:
                pay = {"txHash": f"0x{r.getrandbits(128):032x}", "chain": r.choice(CHAINS)}
                await self.api.call(
                    "PUT", f"/api/orders/{order['id']}/pay", token=await self.token(user), json=pay
                )
            if r.random() < spec.cancel:
                await self.api.call("PUT", f"/api/orders/{order['id']}/cancel", token=await self.token(user))
            self.step(5, 30)


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
    # One INFO line per in-process request would cost more than the request itself.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    began = time.perf_counter()
    try:
        # In-process ASGI on this event loop: far cheaper than TestClient's thread portal per request.
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://simulator") as http,
        ):
            api = StoreClient(http)
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
