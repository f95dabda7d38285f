"""What simulated people do, whatever drives the clock: sign-ups, logins, browsing, buying, chatting,
calling, reviewing, running a shop and committing fraud, each as requests to the store API.

`Actor` holds the behaviours; the backfill (engine.py) moves an injected clock through past days, live
mode (live.py) acts in real time against a running server. Both say how time passes (`now`, `pause`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from simulator import personas
from simulator.client import StoreClient
from simulator.demand import purchase_probability
from simulator.personas import SPECS, Persona
from simulator.world import PASSWORD, SimUser, World

IDLE_MARGIN = 25 * 60.0  # log in again before the store's 30-minute idle limit ends the session
TOKEN_MARGIN = 13 * 60.0  # refresh before the 15-minute access token runs out
SORTS = ("newest", "popular", "rating")
NEW_LIST = 0.5  # chance of browsing a new list before the next product page
CHAINS = ("TRON", "ETH", "BSC", "SOL")
LOW_STOCK = 10  # sellers restock a product below this
RESTOCK = (40, 200)


@dataclass
class Actor:
    world: World
    api: StoreClient
    rng: random.Random
    fraudulent: list[int] = field(default_factory=list)
    orders: int = 0
    held: int = 0  # orders the fraud model held for review (only when a trained model serves)
    reviewed: set[tuple[int, int]] = field(default_factory=set)
    followed: set[tuple[int, int]] = field(default_factory=set)
    # Paid orders per user not yet seen delivered: only those users look for something to review.
    awaiting_review: dict[int, int] = field(default_factory=dict)
    seen_deliveries: set[int] = field(default_factory=set)  # order ids
    # Per shop id: paid orders to ship, shipped ones to mark delivered, chats waiting for an answer.
    to_ship: dict[int, int] = field(default_factory=dict)
    to_deliver: dict[int, int] = field(default_factory=dict)
    unanswered: dict[int, int] = field(default_factory=dict)
    _keys: int = 0

    def __post_init__(self) -> None:
        self.category_by_id: dict[int, int] = {c.id: c.index for c in self.world.categories if c.id}
        self.day = 0  # index of the current day in the world's demand plan

    # --- how time passes (the backfill and live mode differ here) -----------------------------
    def now(self) -> float:
        """Seconds on this actor's timeline (only differences matter)."""
        raise NotImplementedError

    async def pause(self, lo: float = 5.0, hi: float = 60.0) -> None:
        """A person's think time between two actions, in seconds of their time."""
        raise NotImplementedError

    def delivered_before(self) -> datetime:
        """Shipped orders older than this have arrived: sellers mark them delivered."""
        raise NotImplementedError

    def key_prefix(self) -> str:
        return f"sim-{self.world.seed}"

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
        return f"{self.key_prefix()}-{self._keys}"

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
        if self.awaiting_review.get(user.id):
            await self._review_delivered(user)
        viewed: list[dict[str, Any]] = []
        cards: list[dict[str, Any]] = []
        for _ in range(r.randint(*spec.views)):
            token = await self.token(user)
            # Back on the same list for another product about half the time, else a new list.
            if not cards or r.random() < NEW_LIST:
                cards = await self._browse(user, token)
                await self.pause(3, 20)
            seen = {v["id"] for v in viewed}
            fresh = [c for c in cards if c["id"] not in seen]
            if not fresh:
                cards = []
                continue
            card = fresh[min(len(fresh) - 1, int(r.expovariate(0.3)))]
            pid = card["id"]
            product = await self.api.call("GET", f"/api/products/{pid}", token=token)
            view = {"productId": pid, "sessionId": f"sim-{user.session_id}", "duration": r.randint(5, 240)}
            await self.api.call("POST", "/api/track/view", token=token, json=view)
            viewed.append(product)
            await self.pause(10, 90)
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
                spec.purchase * w.profile.purchase,
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
        await self.pause(20, 120)
        if order.get("reviewStatus") == "held":
            # The fraud model held it: it cannot be paid until staff review it (the buyer waits).
            self.held += 1
        elif r.random() < cancel:
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
            self.awaiting_review[user.id] = self.awaiting_review.get(user.id, 0) + 1
            self.to_ship[product["shopId"]] = self.to_ship.get(product["shopId"], 0) + 1
        await self.pause(10, 60)
        return int(order["id"])

    async def _review_delivered(self, user: SimUser) -> None:
        spec, r = SPECS[user.persona], self.rng
        params = {"status": "delivered", "pageSize": 20}
        for order in await self.api.call("GET", "/api/orders", token=await self.token(user), params=params):
            if order["id"] not in self.seen_deliveries:
                self.seen_deliveries.add(order["id"])
                self.awaiting_review[user.id] = max(0, self.awaiting_review.get(user.id, 0) - 1)
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
                    await self.pause(20, 90)

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
        self.unanswered[product["shopId"]] = self.unanswered.get(product["shopId"], 0) + 1
        await self.pause(10, 60)
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
            await self.pause(3, 20)
            if r.random() < personas.SELLER_CALL_ACCEPT:
                await self.api.call("PUT", f"/api/calls/{call['id']}/accept", token=await self.token(seller))
                await self.pause(30, 400)
                await self.api.call("PUT", f"/api/calls/{call['id']}/end", token=await self.token(user))
            else:
                await self.api.call("PUT", f"/api/calls/{call['id']}/reject", token=await self.token(seller))

    # --- sellers ------------------------------------------------------------------------------
    async def seller_session(self, seller: SimUser) -> None:
        """A shop owner's visit: deliver, ship, answer, restock, reprice. Like a real owner told by the
        store's notifications, they open the order and chat lists only when something is waiting."""
        r, w = self.rng, self.world
        shop = next(s for s in w.shops if s.owner is seller)
        restock = r.random() < personas.SELLER_STOCK_CHECK
        reprice = r.random() < personas.SELLER_PRICE_CHANGE
        work = (
            self.to_ship.get(shop.id, 0) + self.to_deliver.get(shop.id, 0) + self.unanswered.get(shop.id, 0)
        )
        if not (work or restock or reprice):
            return
        day_start = self.delivered_before()
        if self.to_deliver.get(shop.id, 0):
            left = 0
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
                    await self.pause(2, 10)
                else:
                    left += 1
            self.to_deliver[shop.id] = left
        if self.to_ship.get(shop.id, 0):
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
                self.to_deliver[shop.id] = self.to_deliver.get(shop.id, 0) + 1
                await self.pause(5, 30)
            self.to_ship[shop.id] = 0
        if self.unanswered.get(shop.id, 0):
            for conv in await self.api.call("GET", "/api/conversations", token=await self.token(seller)):
                if not conv["unreadCount"]:
                    continue
                # Reading it clears the unread count, so the owner answers each question once.
                await self.api.call(
                    "PUT", f"/api/conversations/{conv['id']}/read", token=await self.token(seller)
                )
                if r.random() < personas.SELLER_CHAT_REPLY:
                    body = {"body": "Yes, it ships within a day."}
                    await self.api.call(
                        "POST",
                        f"/api/conversations/{conv['id']}/messages",
                        token=await self.token(seller),
                        json=body,
                    )
                    await self.pause(10, 60)
            self.unanswered[shop.id] = 0
        if restock:
            cards = await self.api.call(
                "GET",
                "/api/products",
                token=await self.token(seller),
                params={"shopId": shop.id, "pageSize": 100, "sort": "newest"},
            )
            for card in cards:
                if card["stock"] < LOW_STOCK:
                    await self.api.call(
                        "PATCH",
                        f"/api/products/{card['id']}",
                        token=await self.token(seller),
                        json={"stock": card["stock"] + r.randint(*RESTOCK)},
                    )
                    await self.pause(5, 30)
        if reprice:
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
    async def fraud_session(self, user: SimUser) -> list[int]:
        """A fraudster's burst; returns the orders it placed (all of them fraudulent)."""
        r, w = self.rng, self.world
        for _ in range(r.randint(*personas.FRAUD_FAILED_LOGINS)):  # guessing at someone's password
            await self.api.send(
                "POST",
                "/api/auth/login",
                json={"email": user.email, "password": f"guess-{r.getrandbits(32)}"},
            )
            await self.pause(1, 8)
        token = await self.token(user)
        cat = w.categories[r.randrange(len(w.categories))]
        cards = await self.api.call(
            "GET", "/api/products", token=token, params={"categoryId": cat.id, "sort": "price_desc"}
        )
        cards = cards or await self.api.call(
            "GET", "/api/products", token=token, params={"sort": "price_desc"}
        )
        placed: list[int] = []
        if not cards:  # an empty store: nothing to steal
            return placed
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
            await self.pause(5, 40)
            if status >= 400:
                continue
            self.orders += 1
            self.fraudulent.append(int(order["id"]))
            placed.append(int(order["id"]))
            if order.get("reviewStatus") == "held":
                self.held += 1  # stopped by the fraud model: nothing to pay
            elif r.random() < personas.FRAUD_PAY:
                pay = {"txHash": f"0x{r.getrandbits(128):032x}", "chain": r.choice(CHAINS)}
                await self.api.call(
                    "PUT", f"/api/orders/{order['id']}/pay", token=await self.token(user), json=pay
                )
                self.to_ship[order["shopId"]] = self.to_ship.get(order["shopId"], 0) + 1
            if r.random() < spec.cancel:
                await self.api.call("PUT", f"/api/orders/{order['id']}/cancel", token=await self.token(user))
            await self.pause(5, 30)
        return placed
