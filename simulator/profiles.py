"""How big a simulated marketplace is: `small` for tests, `demo` for the demo, `large` for benchmarks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    users: int  # buyers of every persona, fraudsters included; shop owners come on top (one per shop)
    shops: int
    products: int
    days: int  # default length of a backfill
    categories: int


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("small", users=60, shops=8, products=80, days=14, categories=8),
        Profile("demo", users=2000, shops=200, products=5000, days=90, categories=16),
        Profile("large", users=20_000, shops=1000, products=50_000, days=180, categories=24),
    )
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)}") from None
