"""Ground truth: what the simulator planted, written next to the data so models can be scored on it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from simulator.demand import MAX_PURCHASE
from simulator.personas import SPECS
from simulator.world import World

TRUTH_FILE = "truth.json"


def build_truth(world: World, fraudulent_orders: list[int]) -> dict[str, Any]:
    return {
        "seed": world.seed,
        "profile": world.profile.name,
        "start": world.start.isoformat(),
        "days": world.days,
        "users": [
            {
                "userId": u.id,
                "username": u.username,
                "persona": str(u.persona),
                "preferredCategories": [world.categories[c].id for c in u.preferred],
                "favouriteShops": [world.shops[s].id for s in u.favourite_shops],
                "signupDay": u.signup_day,
            }
            for u in [*world.sellers, *world.buyers]
        ],
        "fraudulentOrders": sorted(fraudulent_orders),
        # The store's ids of what the backfill created, in the plan's order: live mode acts on them.
        "shops": [{"shopId": s.id, "ownerUserId": s.owner.id, "name": s.name} for s in world.shops],
        "products": [
            {
                "productId": p.id,
                "shopId": world.shops[p.shop].id,
                "categoryId": world.categories[p.category].id,
                "price": str(p.price),
            }
            for p in world.products
        ],
        "categories": [
            {
                "categoryId": c.id,
                "name": c.name,
                "referencePrice": c.reference,
                "trendPerDay": world.demand.trends[c.index],
                "demandCurve": world.demand.curve(c.index),
            }
            for c in world.categories
        ],
        "promotions": [
            {
                "categoryId": world.categories[p.category].id,
                "startDay": p.start_day,
                "endDay": p.end_day,
                "lift": p.lift,
            }
            for p in world.demand.promotions
        ],
        # p(buy | view) = min(maxPurchase, base * demandCurve[day] * (referencePrice / price) ** elasticity)
        "priceResponse": {
            "maxPurchase": MAX_PURCHASE,
            "personas": {
                str(p): {"base": s.purchase * world.profile.purchase, "elasticity": s.elasticity}
                for p, s in SPECS.items()
            },
        },
    }


def read_truth(data_dir: Path) -> dict[str, Any] | None:
    path = data_dir / TRUTH_FILE
    if not path.exists():
        return None
    truth: dict[str, Any] = json.loads(path.read_text())
    return truth


def write_truth(truth: dict[str, Any], data_dir: Path) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / TRUTH_FILE
    path.write_text(json.dumps(truth, indent=1, sort_keys=True) + "\n")
    return path


# --- readers of what was planted, for scoring models against it ----------------------------------
def personas(truth: dict[str, Any]) -> pd.Series:
    """The planted persona per user id (sellers included)."""
    return pd.Series({u["userId"]: u["persona"] for u in truth["users"]}, name="persona")


def promotions(truth: dict[str, Any]) -> pd.DataFrame:
    """One row per planned promotion: category_id, start, end (dates, inclusive). A shop plans its
    promotions ahead, so they are known for the forecast horizon too."""
    start = pd.Timestamp(truth["start"])
    rows = [
        {
            "category_id": p["categoryId"],
            "start": start + pd.Timedelta(days=p["startDay"]),
            "end": start + pd.Timedelta(days=p["endDay"]),
        }
        for p in truth["promotions"]
    ]
    return pd.DataFrame(rows, columns=["category_id", "start", "end"])


def fraud_labels(truth: dict[str, Any]) -> set[int]:
    """The ids of the orders fraudsters placed."""
    return {int(o) for o in truth["fraudulentOrders"]}
