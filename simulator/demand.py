"""Demand over time and price: weekly seasonality, a per-category trend, promotions, the price response.

The intensity of a category on a day multiplies every persona's purchase chance (and, more gently,
how many users come at all). The price response is persona-specific (see personas.py): the chance is
scaled by (reference / price) ** elasticity, capped so it stays a probability.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date

# Indexed by date.toordinal() % 7, i.e. Sunday .. Saturday: Friday and Saturday sell most.
WEEKLY = (0.9, 0.85, 0.9, 0.95, 1.05, 1.25, 1.2)
MAX_PURCHASE = 0.9


@dataclass(frozen=True)
class Promotion:
    category: int  # index into the world's categories
    start_day: int
    end_day: int  # inclusive
    lift: float


@dataclass(frozen=True)
class Demand:
    start: date
    days: int
    trends: tuple[float, ...]  # per category: relative growth per day (e.g. 0.01 = +1 %/day)
    promotions: tuple[Promotion, ...]

    @classmethod
    def plan(cls, rng: random.Random, start: date, days: int, categories: int) -> Demand:
        trends = tuple(round(rng.uniform(-0.004, 0.012), 4) for _ in range(categories))
        promos: list[Promotion] = []
        for _ in range(max(1, days // 10)):
            length = rng.randint(2, 4)
            first = rng.randrange(0, max(1, days - length))
            promos.append(Promotion(rng.randrange(categories), first, first + length - 1, 1.8))
        return cls(start, days, trends, tuple(promos))

    def weekly(self, day: int) -> float:
        return WEEKLY[(self.start.toordinal() + day) % 7]

    def intensity(self, category: int, day: int) -> float:
        value = self.weekly(day) * math.exp(self.trends[category] * day)
        for p in self.promotions:
            if p.category == category and p.start_day <= day <= p.end_day:
                value *= p.lift
        return value

    def curve(self, category: int) -> list[float]:
        return [round(self.intensity(category, d), 4) for d in range(self.days)]


def price_factor(price: float, reference: float, elasticity: float) -> float:
    return float((reference / price) ** elasticity) if price > 0 else 1.0


def purchase_probability(
    base: float, elasticity: float, price: float, reference: float, intensity: float
) -> float:
    return min(MAX_PURCHASE, base * intensity * price_factor(price, reference, elasticity))
