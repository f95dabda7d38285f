"""The planned marketplace: categories with reference prices, shops, products and users with personas.

Everything here comes from one seeded `random.Random`, so the same seed and profile give the same plan.
Ids are the store's own and are learnt while the engine creates things through the API.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from simulator.demand import Demand
from simulator.personas import SPECS, Persona
from simulator.profiles import Profile

PASSWORD = "sim-password-123"
# name, search keyword, reference price (USDT)
CATEGORY_BASES = (
    ("Hardware Wallets", "wallet", 120.0),
    ("Mining Gear", "miner", 900.0),
    ("Graphics Cards", "gpu", 600.0),
    ("Books", "book", 30.0),
    ("Apparel", "shirt", 40.0),
    ("Collectible Coins", "coin", 80.0),
    ("Stickers", "sticker", 6.0),
    ("Art Prints", "print", 150.0),
    ("Gadgets", "gadget", 60.0),
    ("Courses", "course", 200.0),
    ("Cables", "cable", 15.0),
    ("Desks", "desk", 350.0),
)
ADJECTIVES = ("Classic", "Pro", "Mini", "Ultra", "Vintage", "Smart", "Eco", "Deluxe", "Compact", "Rugged")


@dataclass
class Category:
    index: int
    name: str
    keyword: str
    reference: float
    id: int = 0


@dataclass
class SimUser:
    index: int
    persona: Persona
    email: str
    username: str
    preferred: list[int]  # category indexes
    signup_day: int
    favourite_shops: list[int] = field(default_factory=list)  # shop indexes, loyal buyers only
    id: int = 0
    # live session state (simulated time, seconds since the backfill's start)
    access_token: str = ""
    refresh_token: str = ""
    session_id: int = 0
    token_at: float = -1e18
    active_at: float = -1e18


@dataclass
class Shop:
    index: int
    name: str
    owner: SimUser
    id: int = 0


@dataclass
class Product:
    index: int
    shop: int
    category: int
    name: str
    price: Decimal
    id: int = 0


@dataclass
class World:
    seed: int
    profile: Profile
    start: date
    days: int
    categories: list[Category]
    shops: list[Shop]
    products: list[Product]
    buyers: list[SimUser]
    demand: Demand

    @property
    def sellers(self) -> list[SimUser]:
        return [s.owner for s in self.shops]


def _price(rng: random.Random, reference: float) -> Decimal:
    factor = min(2.0, max(0.5, math.exp(rng.gauss(0.0, 0.3))))
    return Decimal(str(round(reference * factor, 2)))


def build_world(profile: Profile, seed: int, start: date, days: int) -> World:
    rng = random.Random(seed)  # noqa: S311 - simulation, not security
    categories = []
    for i in range(profile.categories):
        name, keyword, ref = CATEGORY_BASES[i % len(CATEGORY_BASES)]
        if i >= len(CATEGORY_BASES):
            name = f"{name} {i // len(CATEGORY_BASES) + 1}"
        categories.append(Category(i, name, keyword, ref))
    tag = f"s{seed}"
    shops = []
    for i in range(profile.shops):
        owner = SimUser(i, Persona.seller, f"seller{i}.{tag}@example.com", f"seller_{tag}_{i}", [], 0)
        shops.append(Shop(i, f"{rng.choice(ADJECTIVES)} Shop {i}", owner))
    products = []
    for i in range(profile.products):
        cat = categories[rng.randrange(len(categories))]
        name = f"{rng.choice(ADJECTIVES)} {cat.keyword} {i}"
        products.append(Product(i, rng.randrange(len(shops)), cat.index, name, _price(rng, cat.reference)))
    personas = list(SPECS)
    # The personas' shares, with the fraudsters' set by the profile and the others scaled to the rest.
    honest = sum(SPECS[p].share for p in personas if p is not Persona.fraudster)
    weights = [
        profile.fraud_share if p is Persona.fraudster else SPECS[p].share * (1 - profile.fraud_share) / honest
        for p in personas
    ]
    buyers = []
    for i in range(profile.users):
        persona = rng.choices(personas, weights)[0]
        spec = SPECS[persona]
        k = min(len(categories), rng.randint(*spec.preferred))
        preferred = sorted(rng.sample(range(len(categories)), k))
        if persona is Persona.fraudster:
            signup = rng.randrange(1, days) if days > 1 else 0
        else:
            signup = 0 if rng.random() < 0.65 or days == 1 else rng.randrange(1, days)
        user = SimUser(i, persona, f"user{i}.{tag}@example.com", f"user_{tag}_{i}", preferred, signup)
        if persona is Persona.loyal_buyer:
            user.favourite_shops = sorted(rng.sample(range(len(shops)), min(2, len(shops))))
        buyers.append(user)
    demand = Demand.plan(rng, start, days, len(categories))
    return World(seed, profile, start, days, categories, shops, products, buyers, demand)
