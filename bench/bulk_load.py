"""BULK GENERATOR of benchmark data, used only by bench/ (never by the API, the simulator or the tests).

Fills a freshly migrated store with users, categories, shops, products, product views and the outbox
`events` rows the API itself would have written for them (same event types, entity fields and payload
shapes as the services' `Uow.emit` calls), straight into the tables:

- SQLite: SQLAlchemy Core executemany in large batches (the store's own column types, so money and
  times are stored exactly as the API stores them); FTS5 triggers on `products` are dropped during the
  load and the index is rebuilt once at the end ('rebuild' command), then the triggers are put back.
- PostgreSQL: COPY through psycopg 3 (`cursor.copy`), then the id sequences are moved past the data.

Everything is drawn from one seeded RNG, so a given size and seed always yields the same store. Times
are UTC, relative to the moment of the load (the last 400 days for sign-ups, the last 90 days for views).
ANALYZE runs at the end on both databases.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Table, create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url

from api.core.security import hash_password
from api.db.registry import metadata

# --- vocabulary -------------------------------------------------------------------------------------
# (slug, name, nouns, typical price in USDT). Names and descriptions are built from these words, so
# full-text search on any of them finds products; the load generator searches the same words.
CATEGORIES: list[tuple[str, str, list[str], float]] = [
    (
        "electronics",
        "Electronics",
        ["headphones", "speaker", "charger", "earbuds", "soundbar", "projector", "powerbank", "camera"],
        90,
    ),
    (
        "phones",
        "Phones & Accessories",
        ["smartphone", "phone case", "screen protector", "cable", "stylus", "dock", "tripod"],
        60,
    ),
    (
        "computers",
        "Computers",
        ["laptop", "keyboard", "mouse", "monitor", "webcam", "ssd", "router", "tablet"],
        250,
    ),
    ("gaming", "Gaming", ["controller", "console", "headset", "joystick", "gamepad", "racing wheel"], 120),
    (
        "hardware-wallets",
        "Hardware Wallets",
        ["hardware wallet", "seed plate", "cold wallet", "signing device", "backup card"],
        110,
    ),
    (
        "mining",
        "Mining Equipment",
        ["miner", "asic", "power supply", "cooling fan", "riser", "rig frame"],
        900,
    ),
    (
        "home-kitchen",
        "Home & Kitchen",
        ["kettle", "blender", "coffee grinder", "teapot", "knife set", "frying pan", "toaster"],
        45,
    ),
    ("furniture", "Furniture", ["desk", "chair", "bookshelf", "lamp", "sofa", "stool", "cabinet"], 180),
    (
        "fashion",
        "Fashion",
        ["jacket", "hoodie", "t-shirt", "scarf", "backpack", "wallet", "cap", "jeans"],
        40,
    ),
    ("shoes", "Shoes", ["sneakers", "boots", "sandals", "loafers", "running shoes", "slippers"], 70),
    ("jewelry-watches", "Jewelry & Watches", ["watch", "ring", "necklace", "bracelet", "earrings"], 150),
    ("beauty", "Beauty", ["serum", "face cream", "shampoo", "perfume", "lipstick", "soap"], 25),
    (
        "sports-outdoors",
        "Sports & Outdoors",
        ["tent", "yoga mat", "bicycle", "dumbbells", "sleeping bag", "water bottle", "helmet"],
        60,
    ),
    ("books", "Books", ["novel", "cookbook", "guide", "atlas", "notebook", "comic"], 15),
    ("toys", "Toys", ["puzzle", "board game", "drone", "building set", "plush bear", "robot kit"], 30),
    ("garden", "Garden", ["planter", "hose", "seed kit", "pruner", "bird feeder", "garden lights"], 30),
    ("tools", "Tools", ["drill", "screwdriver set", "wrench", "multimeter", "soldering iron", "toolbox"], 55),
    (
        "auto-parts",
        "Auto Parts",
        ["dashcam", "car charger", "seat cover", "wiper blades", "tire inflator"],
        50,
    ),
    (
        "pet-supplies",
        "Pet Supplies",
        ["dog bed", "cat tree", "leash", "pet feeder", "aquarium", "collar"],
        35,
    ),
    (
        "art-collectibles",
        "Art & Collectibles",
        ["poster", "canvas print", "figurine", "coin", "vinyl record", "trading card"],
        80,
    ),
]
ADJECTIVES = [
    "wireless",
    "portable",
    "premium",
    "compact",
    "vintage",
    "ergonomic",
    "waterproof",
    "smart",
    "classic",
    "handmade",
    "organic",
    "foldable",
    "rechargeable",
    "lightweight",
    "durable",
    "minimalist",
    "deluxe",
    "leather",
    "bamboo",
    "stainless",
    "magnetic",
    "solar",
    "silent",
    "noise cancelling",
    "ceramic",
    "retro",
    "modular",
    "heavy duty",
    "eco",
    "luxury",
]
COLORS = ["black", "white", "silver", "red", "blue", "green", "graphite", "gold", "orange", "navy"]
BRANDS = [
    "Nordic",
    "Satoshi",
    "Lumen",
    "Aurora",
    "Vertex",
    "Kestrel",
    "Orbit",
    "Hodl",
    "Polaris",
    "Zephyr",
    "Atlas",
    "Cobalt",
    "Ember",
    "Fjord",
    "Granite",
    "Helix",
    "Ion",
    "Juniper",
    "Krypton",
    "Lynx",
    "Monarch",
    "Nebula",
    "Onyx",
    "Pinnacle",
    "Quartz",
    "Ridge",
    "Sierra",
    "Tundra",
    "Umbra",
    "Vega",
    "Willow",
    "Xenon",
    "Yukon",
    "Zenith",
    "Block",
    "Ledgerline",
    "Mint",
    "Cipher",
    "Halving",
    "Genesis",
]
SUFFIXES = ["", "", "", "Pro", "Mini", "Max", "Lite", "Plus", "2", "X", "S", "Air", "Ultra", "Edition"]
FEATURES = [
    "fast shipping",
    "two year warranty",
    "gift box included",
    "eco friendly packaging",
    "limited stock",
    "pay with bitcoin",
    "pay with usdt",
    "long battery life",
    "easy to clean",
    "fits most models",
    "tested before shipping",
    "original packaging",
    "made to order",
    "spare parts available",
]
DESCRIPTION_TEMPLATES = [
    "{Adj} {noun} by {brand} in {color}. {Feature}, {feature2}.",
    "The {brand} {noun} is {adj} and {adj2}. Ships from {city}; {feature}.",
    "{Adj} {color} {noun} for everyday use. {Feature}. Our {noun} comes with {feature2}.",
    "A {adj} {noun} from {brand}: {feature}, {feature2}. Available in {color}.",
]
# Cities the shops are spread over (lat, lon); search by location uses the same centres.
CITIES: list[tuple[str, float, float]] = [
    ("Berlin", 52.520, 13.405),
    ("Lisbon", 38.722, -9.139),
    ("Buenos Aires", -34.604, -58.382),
    ("Singapore", 1.352, 103.820),
    ("Dubai", 25.205, 55.271),
    ("Istanbul", 41.008, 28.978),
    ("Mexico City", 19.433, -99.133),
    ("Lagos", 6.524, 3.379),
]
# A few words that match nothing, so search also runs its empty-result path.
MISSING_WORDS = ["zzyzx", "quixotic", "nonexistentium"]
# Currencies of products: mostly USDT; prices of crypto-priced goods are converted at these rates.
CURRENCIES: list[tuple[str, float, Decimal]] = [
    ("USDT", 0.88, Decimal("0.01")),
    ("USDC", 0.07, Decimal("0.01")),
    ("BTC", 0.03, Decimal("0.00000001")),
    ("ETH", 0.02, Decimal("0.000001")),
]
USD_PER = {"USDT": 1.0, "USDC": 1.0, "BTC": 60_000.0, "ETH": 3_000.0}
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/124.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
]
REFERRERS = [
    None,
    None,
    None,
    "https://www.google.com/",
    "https://t.me/",
    "https://x.com/",
    "/api/products",
    "/api/products/search",
]
PASSWORD = "bench password 1234"  # every generated user has this password


def search_terms() -> list[str]:
    """Words and phrases that occur in the generated names and descriptions (plus a few that do not)."""
    nouns = [n for _slug, _name, ns, _p in CATEGORIES for n in ns]
    brands = [b.lower() for b in BRANDS]
    return sorted(set(nouns) | set(ADJECTIVES) | set(brands)) + MISSING_WORDS


# --- sizes and report -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BulkSpec:
    users: int = 10_000
    shops: int = 500
    products: int = 100_000
    views: int = 1_000_000
    seed: int = 42
    view_days: int = 90
    batch: int = 20_000

    def __post_init__(self) -> None:
        if self.users < 10 or self.shops < 1 or self.products < 1 or self.views < 0:
            raise ValueError("need at least 10 users, 1 shop and 1 product")


@dataclass
class LoadReport:
    seconds: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total_seconds(self) -> float:
        return round(sum(self.seconds.values()), 2)


# --- generation -------------------------------------------------------------------------------------------
# Rows are plain dicts keyed by column name with the store's Python types (aware datetimes, Decimal money,
# dict payloads). Each entity stream is in creation order, which is also id order.

Row = dict[str, Any]
_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))  # the version and variant bits
_UUID_V4 = (0x4000 << 64) | (0x8000 << 48)


@dataclass
class _Ids:
    """What later tables need to know about earlier ones."""

    user_times: list[float] = field(default_factory=list)
    owner_of_shop: list[int] = field(default_factory=list)  # index shop_id - 1
    shop_times: list[float] = field(default_factory=list)
    shop_cum_weights: list[float] = field(default_factory=list)
    product_times: list[float] = field(default_factory=list)
    product_shop: list[int] = field(default_factory=list)
    product_cum_weights: list[float] = field(default_factory=list)
    view_counts: list[int] = field(default_factory=list)
    category_ids: list[int] = field(default_factory=list)


class Generator:
    """Draws the whole data set from one seeded RNG. Call the row methods in table order."""

    def __init__(self, spec: BulkSpec, now: datetime | None = None) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.now = (now or datetime.now(UTC)).replace(microsecond=0)
        self.now_ts = self.now.timestamp()
        self.ids = _Ids()
        self.password_hash = hash_password(PASSWORD)  # ONE argon2 hash, shared by every user
        self.admins = {1, 2}
        self.events: list[Iterator[tuple[float, int, Row]]] = []
        self._seq = itertools.count()

    # helpers
    def _dt(self, ts: float) -> datetime:
        return datetime.fromtimestamp(ts, UTC)

    def _sorted_times(self, n: int, start_days: float, end_days: float) -> list[float]:
        lo, hi = self.now_ts - start_days * 86400, self.now_ts - end_days * 86400
        return sorted(self.rng.uniform(lo, hi) for _ in range(n))

    def _uuid(self) -> str:
        """A random (version 4) UUID string from the seeded RNG; what str(uuid.uuid4()) looks like."""
        h = f"{(self.rng.getrandbits(128) & _UUID_CLEAR) | _UUID_V4:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def _event(
        self,
        ts: float,
        event_type: str,
        entity_type: str,
        entity_id: int | None,
        payload: dict[str, Any],
        *,
        actor: int | None,
        shop_id: int | None = None,
        product_id: int | None = None,
    ) -> tuple[float, int, Row]:
        at = self._dt(ts)
        return (
            ts,
            next(self._seq),
            {
                "event_id": self._uuid(),
                "event_type": event_type,
                "schema_version": 1,
                "occurred_at": at,
                "recorded_at": at,
                "actor_user_id": actor,
                "entity_type": entity_type,
                "entity_id": entity_id,
                "shop_id": shop_id,
                "product_id": product_id,
                "order_id": None,
                "request_id": self._uuid(),
                "payload": payload,
            },
        )

    # users --------------------------------------------------------------------------------------------
    def users(self) -> list[Row]:
        spec, rng = self.spec, self.rng
        times = self._sorted_times(spec.users, 400, 1)
        self.ids.user_times = times
        # Shop owners: users who signed up before their shop; decided here so roles are final.
        shop_times = self._sorted_times(spec.shops, 380, 30)
        shop_times[0] = max(times[min(len(times) - 1, 20)] + 3600, shop_times[0])
        shop_times.sort()
        self.ids.shop_times = shop_times
        owners: list[int] = []
        for ts in shop_times:
            k = max(1, bisect.bisect_left(times, ts))
            owners.append(rng.randint(3, max(3, k)))  # ids 1 and 2 are the admins
        self.ids.owner_of_shop = owners
        owner_set = set(owners)
        rows: list[Row] = []
        events: list[tuple[float, int, Row]] = []
        self._signed_up_as: dict[int, str] = {}
        for uid, ts in enumerate(times, start=1):
            at = self._dt(ts)
            signup = "seller" if (uid in owner_set and rng.random() < 0.6) or rng.random() < 0.03 else "buyer"
            self._signed_up_as[uid] = signup
            role = "admin" if uid in self.admins else ("seller" if uid in owner_set else signup)
            name = f"user{uid:06d}"
            last_login = self._dt(rng.uniform(ts, self.now_ts)) if rng.random() < 0.8 else None
            rows.append(
                {
                    "id": uid,
                    "email": f"{name}@bench.example",
                    "username": name,
                    "password_hash": self.password_hash,
                    "role": role,
                    "is_active": rng.random() > 0.01,
                    "failed_login_count": 0,
                    "last_login_at": last_login,
                    "created_at": at,
                    "updated_at": at,
                }
            )
            events.append(
                self._event(ts, "user.registered", "user", uid, {"role": signup, "username": name}, actor=uid)
            )
            if uid in self.admins:
                events.append(
                    self._event(
                        ts + 60, "user.role_changed", "user", uid, {"old": signup, "new": "admin"}, actor=None
                    )
                )
        self.events.append(iter(events))
        return rows

    # categories ------------------------------------------------------------------------------------------
    def categories(self) -> list[Row]:
        ts = self.ids.user_times[0] + 3600
        rows: list[Row] = []
        events: list[tuple[float, int, Row]] = []
        for cid, (slug, name, _nouns, _price) in enumerate(CATEGORIES, start=1):
            rows.append(
                {"id": cid, "name": name, "slug": slug, "parent_id": None, "created_at": self._dt(ts + cid)}
            )
            events.append(
                self._event(
                    ts + cid,
                    "category.created",
                    "category",
                    cid,
                    {"name": name, "slug": slug, "parentId": None},
                    actor=1,
                )
            )
        self.ids.category_ids = [r["id"] for r in rows]
        self.events.append(iter(events))
        return rows

    # shops ---------------------------------------------------------------------------------------------
    def shops(self) -> list[Row]:
        rng = self.rng
        rows: list[Row] = []
        events: list[tuple[float, int, Row]] = []
        weights: list[float] = []
        for sid, ts in enumerate(self.ids.shop_times, start=1):
            owner = self.ids.owner_of_shop[sid - 1]
            city, clat, clon = CITIES[rng.randrange(len(CITIES))]
            lat, lon = (round(clat + rng.gauss(0, 0.08), 6), round(clon + rng.gauss(0, 0.10), 6))
            located = rng.random() < 0.9
            brand = rng.choice(BRANDS)
            kind = rng.choice(["Store", "Shop", "Market", "Goods", "Outlet", "Corner", "Hub"])
            name = f"{brand} {kind} {sid}"
            at = self._dt(ts)
            row = {
                "id": sid,
                "owner_id": owner,
                "name": name,
                "description": f"{brand} goods from {city}. We accept crypto.",
                "latitude": lat if located else None,
                "longitude": lon if located else None,
                "address": f"{rng.randint(1, 250)} Market Street, {city}" if located else None,
                "delivery_available": rng.random() < 0.45,
                "follower_count": 0,
                "is_active": True,
                "created_at": at,
                "updated_at": at,
            }
            rows.append(row)
            first_shop = owner not in self.ids.owner_of_shop[: sid - 1]
            promoted = first_shop and self._signed_up_as.get(owner) == "buyer"
            payload = {
                "name": name,
                "ownerId": owner,
                "latitude": row["latitude"],
                "longitude": row["longitude"],
                "deliveryAvailable": row["delivery_available"],
                "ownerPromoted": promoted,
            }
            events.append(self._event(ts, "shop.created", "shop", sid, payload, actor=owner, shop_id=sid))
            weights.append(rng.paretovariate(1.2))  # a few big shops, many small ones
        self.ids.shop_cum_weights = list(itertools.accumulate(weights))
        self.events.append(iter(events))
        return rows

    # products ----------------------------------------------------------------------------------------
    def _product_text(self, cat: int) -> tuple[str, str]:
        rng = self.rng
        _slug, _name, nouns, _price = CATEGORIES[cat - 1]
        noun, adj, adj2 = rng.choice(nouns), rng.choice(ADJECTIVES), rng.choice(ADJECTIVES)
        brand, color = rng.choice(BRANDS), rng.choice(COLORS)
        suffix = rng.choice(SUFFIXES)
        name = f"{brand} {adj.title()} {noun.title()}" + (f" {suffix}" if suffix else "")
        if rng.random() < 0.3:
            name += f" {rng.randint(100, 990)}"
        feat, feat2 = rng.sample(FEATURES, 2)
        desc = rng.choice(DESCRIPTION_TEMPLATES).format(
            Adj=adj.capitalize(),
            adj=adj,
            adj2=adj2,
            noun=noun,
            brand=brand,
            color=color,
            Feature=feat.capitalize(),
            feature=feat,
            feature2=feat2,
            city=rng.choice(CITIES)[0],
        )
        return name, desc

    def products(self) -> Iterator[Row]:
        spec, rng, ids = self.spec, self.rng, self.ids
        times = self._sorted_times(spec.products, 365, 0.01)
        if times[0] < ids.shop_times[0]:
            times = sorted(max(t, ids.shop_times[0] + 60) for t in times)
        ids.product_times = times
        # Popularity: a Zipf-like weight per product in random order, used to draw the views.
        ranks = list(range(1, spec.products + 1))
        rng.shuffle(ranks)
        ids.product_cum_weights = list(itertools.accumulate(r**-0.75 for r in ranks))
        view_products = self._draw_view_products()
        counts = [0] * spec.products
        for pid in view_products:
            counts[pid - 1] += 1
        ids.view_counts = counts
        self._view_products = view_products
        cat_weights = list(itertools.accumulate(rng.uniform(0.5, 2.0) for _ in CATEGORIES))
        cur_names, cur_weights = [c[0] for c in CURRENCIES], [c[1] for c in CURRENCIES]
        compact: list[tuple[float, int, int, int, str, str, str, int, int]] = []
        self.events.append(self._product_events(compact))  # filled as rows are drawn, read after
        for pid, ts in enumerate(times, start=1):
            k = max(1, bisect.bisect_right(ids.shop_times, ts))
            shop = bisect.bisect_left(ids.shop_cum_weights, rng.random() * ids.shop_cum_weights[k - 1]) + 1
            cat = bisect.bisect_left(cat_weights, rng.random() * cat_weights[-1]) + 1
            name, desc = self._product_text(cat)
            currency = rng.choices(cur_names, cur_weights)[0]
            usd = CATEGORIES[cat - 1][3] * rng.lognormvariate(0, 0.6)
            quantum = next(q for c, _w, q in CURRENCIES if c == currency)
            price = max(Decimal(str(usd / USD_PER[currency])).quantize(quantum), quantum)
            rated = rng.random() < 0.6
            rating_count = rng.randint(1, 400) if rated else 0
            at = self._dt(ts)
            updated = self._dt(rng.uniform(ts, self.now_ts)) if rng.random() < 0.3 else at
            stock = 0 if rng.random() < 0.07 else rng.randint(1, 500)
            ids.product_shop.append(shop)
            row = {
                "id": pid,
                "shop_id": shop,
                "category_id": cat,
                "name": name,
                "description": desc,
                "price": price,
                "currency": currency,
                "stock": stock,
                "views": counts[pid - 1],
                "sales_count": rng.randint(0, 50) if rng.random() < 0.5 else 0,
                "rating": round(rng.uniform(3.0, 5.0), 2) if rated else 0.0,
                "rating_count": rating_count,
                "is_active": rng.random() > 0.03,
                "created_at": at,
                "updated_at": updated,
            }
            owner = ids.owner_of_shop[shop - 1]
            compact.append((ts, pid, shop, cat, name, str(price), currency, stock, owner))
            yield row

    def _product_events(
        self, compact: list[tuple[float, int, int, int, str, str, str, int, int]]
    ) -> Iterator[tuple[float, int, Row]]:
        for ts, pid, shop, cat, name, price, currency, stock, owner in compact:
            yield self._event(
                ts,
                "product.created",
                "product",
                pid,
                {"name": name, "price": price, "currency": currency, "stock": stock, "categoryId": cat},
                actor=owner,
                shop_id=shop,
                product_id=pid,
            )

    def _draw_view_products(self) -> list[int]:
        """One product per view, in view-time order; a view only goes to a product that already exists."""
        spec, rng, ids = self.spec, self.rng, self.ids
        self._view_times = self._sorted_times(spec.views, spec.view_days, 0)
        cum, ptimes = ids.product_cum_weights, ids.product_times
        out: list[int] = []
        k = 0
        for ts in self._view_times:
            while k < len(ptimes) and ptimes[k] <= ts:
                k += 1
            kk = max(k, 1)
            out.append(bisect.bisect_left(cum, rng.random() * cum[kk - 1]) + 1)
        return out

    # product views -----------------------------------------------------------------------------------
    def product_views(self) -> Iterator[Row]:
        rng, ids = self.rng, self.ids
        sessions_of: dict[int, str] = {}
        anon_sessions = [
            rng.getrandbits(128).to_bytes(16, "big").hex() for _ in range(max(1, self.spec.users))
        ]
        compact: list[tuple[float, int, int, int | None, str, str | None, int | None, int, int]] = []
        self.events.append(self._view_events(compact))
        running = [0] * self.spec.products  # the product's counter after each view, as the API reports it
        user_times = ids.user_times
        for vid, (ts, pid) in enumerate(zip(self._view_times, self._view_products, strict=True), start=1):
            ts = max(ts, ids.product_times[pid - 1] + 1)
            user: int | None = None
            if rng.random() < 0.55:
                k = bisect.bisect_left(user_times, ts)
                if k:
                    user = rng.randint(1, k)
            if user is not None:
                session = sessions_of.get(user)
                if session is None or rng.random() < 0.1:
                    session = sessions_of[user] = rng.getrandbits(128).to_bytes(16, "big").hex()
            else:
                session = rng.choice(anon_sessions)
            ip = f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            ua = rng.choice(USER_AGENTS)
            referrer = rng.choice(REFERRERS)
            duration = rng.randint(1, 600) if rng.random() < 0.8 else None
            shop = ids.product_shop[pid - 1]
            at = self._dt(ts)
            running[pid - 1] += 1
            compact.append((ts, vid, pid, user, session, referrer, duration, shop, running[pid - 1]))
            yield {
                "id": vid,
                "product_id": pid,
                "user_id": user,
                "session_id": session,
                "ip_address": ip,
                "user_agent": ua,
                "referrer": referrer,
                "duration": duration,
                "created_at": at,
            }

    def _view_events(
        self, compact: list[tuple[float, int, int, int | None, str, str | None, int | None, int, int]]
    ) -> Iterator[tuple[float, int, Row]]:
        # Same shape as api/tracking/service.py track_view.
        for ts, vid, pid, user, session, referrer, duration, shop, views in compact:
            yield self._event(
                ts,
                "product.viewed",
                "product_view",
                vid,
                {
                    "viewId": vid,
                    "userId": user,
                    "sessionId": session,
                    "duration": duration,
                    "referrer": referrer,
                    "views": views,
                },
                actor=user,
                shop_id=shop,
                product_id=pid,
            )

    # events ----------------------------------------------------------------------------------------
    def events_in_time_order(self) -> Iterator[Row]:
        for _ts, _seq, row in heapq.merge(*self.events):
            yield row

    def event_count(self) -> int:
        return (
            self.spec.users
            + len(self.admins)
            + len(CATEGORIES)
            + self.spec.shops
            + self.spec.products
            + self.spec.views
        )


# --- writers ----------------------------------------------------------------------------------------------


def _batches(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    it = iter(rows)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def _scalar_defaults(table: Table, given: Iterable[str]) -> dict[str, Any]:
    """Python-side constant defaults of columns the generator does not fill (columns other engineers add)."""
    out: dict[str, Any] = {}
    names = set(given)
    for col in table.columns:
        if col.name in names:
            continue
        if col.default is not None and getattr(col.default, "is_scalar", False):
            out[col.name] = col.default.arg  # type: ignore[attr-defined]
        elif col.server_default is None and not col.nullable and not col.primary_key:
            raise RuntimeError(f"bench/bulk_load.py does not know how to fill {table.name}.{col.name}")
    return out


class _Writer:
    dialect = ""

    def write(self, table: str, rows: Iterable[Row], total: int, progress: Progress) -> int:
        raise NotImplementedError

    def finish(self, console: Console) -> None:
        raise NotImplementedError


class _SqliteWriter(_Writer):
    dialect = "sqlite"

    def __init__(self, url: str, batch: int) -> None:
        self.engine: Engine = create_engine(url)
        self.batch = batch

        @event.listens_for(self.engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")  # what the API uses; the mode sticks to the file
            cur.execute("PRAGMA synchronous=OFF")
            cur.execute("PRAGMA foreign_keys=OFF")
            cur.execute("PRAGMA cache_size=-262144")
            cur.execute("PRAGMA temp_store=MEMORY")
            cur.close()

        self._fts_triggers: list[tuple[str, str]] = []
        self._fts_fills: list[tuple[str, str]] = []
        with self.engine.begin() as conn:
            self._suspend_fts(conn)

    def _suspend_fts(self, conn: Connection) -> None:
        """Migration 0002's external-content FTS5 index over `products` is filled once after the load,
        with the same statement the migration uses, instead of row by row by its triggers, which are
        dropped meanwhile and put back afterwards. Only the rows the insert trigger would index (its WHEN
        clause: the active products) go in, so the index stays exactly what the triggers maintain."""
        fts = conn.execute(
            text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'table' "
                "AND sql LIKE 'CREATE VIRTUAL TABLE%' AND lower(sql) LIKE '%fts5%'"
            )
        ).all()
        triggers = conn.execute(
            text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'products'")
        ).all()
        for name, sql in cast("list[tuple[str, str]]", fts):
            flat = sql.replace(" ", "").replace('"', "'").lower()
            if "content='products'" not in flat:
                continue  # not over products, or keeps its own copy: its triggers stay on
            mine = [(n, s) for n, s in cast("list[tuple[str, str]]", triggers) if name in s]
            insert = [s for _n, s in mine if re.search(r"AFTER\s+INSERT\s+ON\s+\"?products", s, re.I)]
            where = None
            if insert:
                m = re.search(
                    r"ON\s+\"?products\"?\s+(?:FOR\s+EACH\s+ROW\s+)?WHEN\s+(.*?)\s+BEGIN\b",
                    insert[0],
                    re.I | re.S,
                )
                where = re.sub(r"\bnew\.", "", m.group(1), flags=re.I) if m else ""
            cols = [r[1] for r in conn.exec_driver_sql(f'PRAGMA table_info("{name}")').all()]
            select_cols = ", ".join(f'"{c}"' for c in cols)
            if where is None:  # no insert trigger to imitate: let FTS5 read the whole content table
                fill = f'INSERT INTO "{name}"("{name}") VALUES (\'rebuild\')'
            else:
                fill = (
                    f'INSERT INTO "{name}"(rowid, {select_cols}) SELECT id, {select_cols} FROM products'
                    + (f" WHERE {where}" if where else "")
                )
            self._fts_fills.append((name, fill))
            for trig, trig_sql in mine:
                self._fts_triggers.append((trig, trig_sql))
                conn.execute(text(f'DROP TRIGGER "{trig}"'))

    def write(self, table: str, rows: Iterable[Row], total: int, progress: Progress) -> int:
        tbl = metadata.tables[table]
        task = progress.add_task(table, total=total)
        n = 0
        defaults: dict[str, Any] | None = None
        with self.engine.begin() as conn:
            # Secondary indexes are built once after the rows are in (sorted, not one random insert at a
            # time); the indexes behind UNIQUE constraints (sql IS NULL) cannot be dropped and stay.
            indexes = conn.execute(
                text(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                    "AND tbl_name = :t AND sql IS NOT NULL"
                ),
                {"t": table},
            ).all()
            for name, _sql in indexes:
                conn.execute(text(f'DROP INDEX "{name}"'))
            for chunk in _batches(rows, self.batch):
                if defaults is None:
                    defaults = _scalar_defaults(tbl, chunk[0].keys())
                if defaults:
                    chunk = [r | defaults for r in chunk]
                conn.execute(tbl.insert(), chunk)
                n += len(chunk)
                progress.update(task, advance=len(chunk))
            for _name, sql in cast("list[tuple[str, str]]", indexes):
                conn.execute(text(sql))
        return n

    def rebuild_fts(self) -> None:
        with self.engine.begin() as conn:
            for _name, fill in self._fts_fills:
                conn.execute(text(fill))
            for _name, sql in self._fts_triggers:
                conn.execute(text(sql))

    def finish(self, console: Console) -> None:
        with self.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        with self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        self.engine.dispose()


class _PostgresWriter(_Writer):
    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        import psycopg

        u = make_url(url)
        self.conn = psycopg.connect(
            host=u.host or "127.0.0.1",
            port=u.port or 5432,
            user=u.username,
            password=u.password,
            dbname=u.database,
            autocommit=False,
        )
        with self.conn.cursor() as cur:
            cur.execute("SET synchronous_commit = off")
            cur.execute("SET maintenance_work_mem = '256MB'")
        self.loaded: list[str] = []

    def write(self, table: str, rows: Iterable[Row], total: int, progress: Progress) -> int:
        tbl = metadata.tables[table]
        task = progress.add_task(table, total=total)
        it = iter(rows)
        first = next(it, None)
        if first is None:
            return 0
        defaults = _scalar_defaults(tbl, first.keys())
        cols = [*first.keys(), *defaults.keys()]
        json_cols = {c for c in cols if c == "payload" or str(tbl.c[c].type).upper().startswith("JSON")}
        dumps = orjson.dumps
        n = 0
        col_sql = ", ".join(f'"{c}"' for c in cols)
        with self.conn.cursor() as cur:
            # Secondary indexes (not those behind PRIMARY KEY / UNIQUE constraints) are dropped for the
            # COPY and rebuilt after it, in the same transaction: one sorted build instead of row by row.
            cur.execute(
                "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
                "JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = %s::regclass "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)",
                (f'"{table}"',),
            )
            indexes: list[tuple[str, str]] = cur.fetchall()
            for name, _sql in indexes:
                cur.execute(f'DROP INDEX "{name}"')
        with self.conn.cursor() as cur, cur.copy(f'COPY "{table}" ({col_sql}) FROM STDIN') as copy:
            for row in itertools.chain([first], it):
                if defaults:
                    row = row | defaults
                if json_cols:
                    for c in json_cols:
                        row[c] = dumps(row[c]).decode()
                copy.write_row([row[c] for c in cols])
                n += 1
                if n % 10_000 == 0:
                    progress.update(task, advance=10_000)
        progress.update(task, completed=n)
        with self.conn.cursor() as cur:
            for _name, sql in indexes:
                cur.execute(sql)
        self.conn.commit()
        self.loaded.append(table)
        return n

    def finish(self, console: Console) -> None:
        with self.conn.cursor() as cur:
            for table in self.loaded:
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f'(SELECT coalesce(max(id), 0) + 1 FROM "{table}"), false)'
                )
        self.conn.commit()
        self.conn.autocommit = True
        with self.conn.cursor() as cur:
            cur.execute("VACUUM (ANALYZE)")  # what autovacuum would do after a load; enables index-only scans
        self.conn.close()


# --- entry point ----------------------------------------------------------------------------------------


def load(
    url: str, spec: BulkSpec, console: Console | None = None, *, now: datetime | None = None
) -> LoadReport:
    """Fill a freshly migrated, empty store at `url` with the benchmark data set."""
    console = console or Console()
    backend = make_url(url).get_backend_name()
    writer: _SqliteWriter | _PostgresWriter = (
        _SqliteWriter(url, spec.batch) if backend == "sqlite" else _PostgresWriter(url)
    )
    report = LoadReport()
    t0 = time.perf_counter()
    gen = Generator(spec, now)
    console.print(
        f"  one argon2 hash for all users, seeded RNG {spec.seed}: {time.perf_counter() - t0:.2f} s"
    )

    plan: list[tuple[str, Callable[[], Iterable[Row]], int]] = [
        ("users", gen.users, spec.users),
        ("categories", gen.categories, len(CATEGORIES)),
        ("shops", gen.shops, spec.shops),
        ("products", gen.products, spec.products),
        ("product_views", gen.product_views, spec.views),
        ("events", gen.events_in_time_order, gen.event_count()),
    ]
    columns = [TextColumn("  {task.description:<14}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        for table, rows, total in plan:
            started = time.perf_counter()
            n = writer.write(table, rows(), total, progress)
            report.seconds[table] = round(time.perf_counter() - started, 2)
            report.rows[table] = n
    for table in report.rows:
        secs = report.seconds[table]
        console.print(
            f"  {table:<14} {report.rows[table]:>10,} rows in {secs:7.2f} s "
            f"({report.rows[table] / secs if secs else 0:,.0f} rows/s)"
        )
    if isinstance(writer, _SqliteWriter) and writer._fts_fills:
        started = time.perf_counter()
        writer.rebuild_fts()
        report.seconds["fts_fill"] = round(time.perf_counter() - started, 2)
        names = ", ".join(n for n, _f in writer._fts_fills)
        console.print(f"  FTS index {names} filled in {report.seconds['fts_fill']:.2f} s (triggers restored)")
    started = time.perf_counter()
    writer.finish(console)
    report.seconds["analyze"] = round(time.perf_counter() - started, 2)
    what = "ANALYZE" if backend == "sqlite" else "VACUUM ANALYZE"
    console.print(f"  {what} in {report.seconds['analyze']:.2f} s; load total {report.total_seconds:.1f} s")
    return report


def has_data(url: str, spec: BulkSpec) -> bool:
    """True if the store at `url` already holds exactly this data set's row counts (for --reuse)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            counts: dict[str, int] = {
                t: conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one()
                for t in ("users", "shops", "products", "product_views")
            }
    except Exception:
        return False
    finally:
        engine.dispose()
    return counts == {
        "users": spec.users,
        "shops": spec.shops,
        "products": spec.products,
        "product_views": spec.views,
    }
