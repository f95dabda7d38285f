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
    # Scales every persona's daily chance of a visit (personas.py): how busy the marketplace is.
    activity: float = 1.0
    seller_activity: float = 0.9  # chance a seller works their shop on a given day
    fraud_share: float = 0.08  # of the users; their orders are a few percent of all orders at demo scale
    purchase: float = 1.0  # scales every persona's purchase chance per product page


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("small", users=60, shops=8, products=80, days=14, categories=8),
        # About 1% of the users visit on a day (window shoppers twice as often as big spenders), a
        # shop's owner looks in every fifth day and a product page sells half as often as in `small`:
        # sized so that the history is ready in about three minutes at the backfill's present speed
        # (bench/simulator.py).
        Profile(
            "demo",
            users=2000,
            shops=200,
            products=5000,
            days=90,
            categories=16,
            activity=0.02,
            seller_activity=0.2,
            fraud_share=0.008,
            purchase=0.5,
        ),
        Profile(
            "large",
            users=20_000,
            shops=1000,
            products=50_000,
            days=180,
            categories=24,
            activity=0.1,
            seller_activity=0.5,
            fraud_share=0.01,
            purchase=0.5,
        ),
    )
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)}") from None
