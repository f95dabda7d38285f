"""Product recommendations: seed 001 §3's algorithm as the baseline, an item-item collaborative model
blended with it, an offline evaluation on a time split, and rows for `product_recommendations`.

Seed 001 §3, exactly: take the user's browsing history, extract the categories of what they viewed,
score products by 30 % views + 50 % sales + 20 % rating (each normalised to 0..1 over the catalogue),
keep products in those categories, exclude what they already viewed, sort by score, return the top
20; trending products fill the list when the history is too short (or absent: cold start).
Never recommended: an inactive product, one out of stock, one from the user's own shop.

The collaborative part scores a product by its cosine similarity (over users' views and purchases)
to what the user interacted with; the blend adds it to the seed's score, each scaled to 0..1 per user.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from ml.checks import require_columns

TOP_N = 20
VIEW_WEIGHT, SALES_WEIGHT, RATING_WEIGHT = 0.3, 0.5, 0.2
PURCHASE_STRENGTH = 3.0  # a purchase says more about taste than a view
# reasons written to product_recommendations.reason (String(64))
REASON_SIMILAR = "similar_to_your_items"
REASON_CATEGORY = "popular_in_your_categories"
REASON_TRENDING = "trending"
REASON_POPULAR = "popular"


# --- inputs --------------------------------------------------------------------------------------
def interactions_from(
    views: pd.DataFrame, order_lines: pd.DataFrame, *, include_anonymous: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per interaction: user_id (nullable for anonymous views), product_id, kind ('view' or
    'purchase'), quantity, at (UTC).

    `views`: user_id, product_id, viewed_at. `order_lines`: buyer_id, product_id, quantity,
    created_at, status (cancelled orders are not purchases). `include_anonymous`: extra views
    (product_id, viewed_at) without a user, which count for popularity only."""
    require_columns(views, ("user_id", "product_id", "viewed_at"), "views")
    require_columns(
        order_lines, ("buyer_id", "product_id", "quantity", "created_at", "status"), "order_lines"
    )
    v = pd.DataFrame(
        {
            "user_id": views["user_id"].astype("Int64"),
            "product_id": views["product_id"].astype("int64"),
            "kind": "view",
            "quantity": 1,
            "at": pd.to_datetime(views["viewed_at"], utc=True),
        }
    )
    kept = order_lines[order_lines["status"].astype(str) != "cancelled"]
    p = pd.DataFrame(
        {
            "user_id": kept["buyer_id"].astype("Int64"),
            "product_id": kept["product_id"].astype("int64"),
            "kind": "purchase",
            "quantity": kept["quantity"].astype("int64"),
            "at": pd.to_datetime(kept["created_at"], utc=True),
        }
    )
    frames = [v, p]
    if include_anonymous is not None and len(include_anonymous):
        frames.append(
            pd.DataFrame(
                {
                    "user_id": pd.array([pd.NA] * len(include_anonymous), dtype="Int64"),
                    "product_id": include_anonymous["product_id"].astype("int64"),
                    "kind": "view",
                    "quantity": 1,
                    "at": pd.to_datetime(include_anonymous["viewed_at"], utc=True),
                }
            )
        )
    return pd.concat(frames, ignore_index=True).sort_values("at", kind="stable").reset_index(drop=True)


def counts_as_of(products: pd.DataFrame, interactions: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """`products` with `views` and `sales_count` recounted from the interactions before `as_of`, as the
    store's counters stood then (for offline evaluation; serving uses today's counters)."""
    before = interactions[interactions["at"] < as_of]
    views = before[before["kind"] == "view"].groupby("product_id").size()
    sales = before[before["kind"] == "purchase"].groupby("product_id")["quantity"].sum()
    out = products.copy()
    out["views"] = out["product_id"].map(views).fillna(0).astype("int64")
    out["sales_count"] = out["product_id"].map(sales).fillna(0).astype("int64")
    return out


# --- the seed's baseline -------------------------------------------------------------------------
def seed_scores(products: pd.DataFrame) -> pd.Series:
    """30 % views + 50 % sales + 20 % rating, each min-max normalised over `products`; by product_id."""
    require_columns(products, ("product_id", "views", "sales_count", "rating"), "products")

    def norm(col: str) -> np.ndarray:
        x = products[col].astype(float).to_numpy()
        span = x.max() - x.min() if len(x) else 0.0
        return (x - x.min()) / span if span > 0 else np.zeros(len(x))

    score = VIEW_WEIGHT * norm("views") + SALES_WEIGHT * norm("sales_count") + RATING_WEIGHT * norm("rating")
    return pd.Series(score, index=products["product_id"].to_numpy(), name="score")


def buyable(products: pd.DataFrame) -> pd.DataFrame:
    """Active and in stock (the user's own shop is excluded per user)."""
    require_columns(
        products, ("product_id", "shop_id", "owner_id", "category_id", "is_active", "stock"), "products"
    )
    return products[products["is_active"].astype(bool) & (products["stock"].astype(int) > 0)]


def trending_scores(
    products: pd.DataFrame, interactions: pd.DataFrame, as_of: pd.Timestamp, days: int = 7
) -> pd.Series:
    """The seed's formula over the last `days` of views and sales (rating as is): what is hot now."""
    recent = counts_as_of(
        products, interactions[interactions["at"] >= as_of - pd.Timedelta(days=days)], as_of
    )
    return seed_scores(recent)


@dataclass
class Recommender:
    """Everything needed to recommend as of one moment; build it with `fit_recommender`."""

    products: pd.DataFrame  # buyable catalogue, indexed by product_id
    seed: pd.Series  # seed score by product_id (buyable only)
    trending: pd.Series  # trending score by product_id (buyable only)
    histories: dict[int, pd.DataFrame]  # user_id -> that user's interactions
    item_index: dict[int, int]  # product_id -> column of the similarity matrix
    items: np.ndarray  # column -> product_id
    similarity: sparse.csr_matrix  # item x item cosine similarity, zero diagonal
    blend: float = 0.5  # weight of the collaborative score; 0 is the seed baseline alone
    as_of: pd.Timestamp | None = None
    version: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)


def fit_recommender(
    products: pd.DataFrame,
    interactions: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    blend: float = 0.5,
    trending_days: int = 7,
) -> Recommender:
    """`products`: product_id, shop_id, owner_id, category_id, views, sales_count, rating, is_active,
    stock (as of `as_of`: see `counts_as_of`). `interactions`: see `interactions_from`; only those
    before `as_of` are used."""
    hist = interactions[interactions["at"] < as_of]
    ok = buyable(products).set_index("product_id", drop=False)
    seed = seed_scores(products).reindex(ok.index)
    trending = trending_scores(products, hist, as_of, trending_days).reindex(ok.index)
    known = hist.dropna(subset=["user_id"])
    histories = {int(u): g for u, g in known.groupby("user_id")}
    items, index, sim = _item_similarity(known)
    return Recommender(ok, seed, trending, histories, index, items, sim, blend, as_of)


def _item_similarity(known: pd.DataFrame) -> tuple[np.ndarray, dict[int, int], sparse.csr_matrix]:
    if known.empty:
        return np.zeros(0, dtype="int64"), {}, sparse.csr_matrix((0, 0))
    users, u_idx = np.unique(known["user_id"].astype("int64").to_numpy(), return_inverse=True)
    items, i_idx = np.unique(known["product_id"].astype("int64").to_numpy(), return_inverse=True)
    strength = np.where(known["kind"].to_numpy() == "purchase", PURCHASE_STRENGTH, 1.0)
    m = sparse.csr_matrix((strength, (u_idx, i_idx)), shape=(len(users), len(items)))
    m.data = np.log1p(m.data)  # repeat views of one product should not swamp the rest
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=0)).ravel())
    norms[norms == 0] = 1.0
    mn = m @ sparse.diags(1.0 / norms)
    sim = (mn.T @ mn).tocsr()
    sim.setdiag(0.0)
    sim.eliminate_zeros()
    return items, {int(p): i for i, p in enumerate(items)}, sim


# --- recommending --------------------------------------------------------------------------------
def _candidates(rec: Recommender, user_id: int) -> pd.DataFrame:
    """The buyable catalogue minus what the user viewed or bought and minus their own shop's products."""
    c = rec.products
    mask = c["owner_id"].to_numpy() != user_id
    h = rec.histories.get(user_id)
    if h is not None:
        mask &= ~c.index.isin(h["product_id"].unique())
    return c[mask]


def recommend_seed(rec: Recommender, user_id: int, n: int = TOP_N) -> list[tuple[int, float, str]]:
    """Seed 001 §3 exactly: (product_id, score, reason), best first."""
    cands = _candidates(rec, user_id)
    h = rec.histories.get(user_id)
    out: list[tuple[int, float, str]] = []
    if h is not None:
        viewed = h[h["kind"] == "view"]["product_id"].unique()
        cats = set(rec.products.reindex(viewed)["category_id"].dropna().astype(int))
        in_cats = cands[cands["category_id"].isin(cats)]
        s = rec.seed.reindex(in_cats.index).sort_values(ascending=False, kind="stable").head(n)
        out = [(int(p), float(v), REASON_CATEGORY) for p, v in s.items()]
    return out + _fill_trending(rec, cands, out, n)


def _fill_trending(
    rec: Recommender, cands: pd.DataFrame, have: list[tuple[int, float, str]], n: int
) -> list[tuple[int, float, str]]:
    if len(have) >= n:
        return []
    taken = {p for p, _, _ in have}
    t = rec.trending.reindex(cands.index)
    t = t[~t.index.isin(list(taken))]
    # ties (no recent activity at all) fall back to the seed's all-time score
    order = pd.DataFrame({"t": t, "s": rec.seed.reindex(t.index)}).sort_values(
        ["t", "s"], ascending=False, kind="stable"
    )
    return [(int(p), float(v), REASON_TRENDING) for p, v in order["t"].head(n - len(have)).items()]


def recommend_blended(rec: Recommender, user_id: int, n: int = TOP_N) -> list[tuple[int, float, str]]:
    """Seed score and item-item similarity, each scaled to 0..1 for the user, mixed by `rec.blend`.
    Candidates: products in the user's categories or similar to their items; trending fills up."""
    cands = _candidates(rec, user_id)
    h = rec.histories.get(user_id)
    if h is None or not len(cands):
        return _fill_trending(rec, cands, [], n)
    viewed = h[h["kind"] == "view"]["product_id"].unique()
    cats = set(rec.products.reindex(viewed)["category_id"].dropna().astype(int))
    cf = _cf_scores(rec, h).reindex(cands.index).fillna(0.0)
    seed = rec.seed.reindex(cands.index).where(cands["category_id"].isin(cats), 0.0).fillna(0.0)
    keep = (cf > 0) | (seed > 0)
    cf, seed = cf[keep], seed[keep]
    if not len(cf):
        return _fill_trending(rec, cands, [], n)
    cf_part, seed_part = rec.blend * _unit(cf), (1 - rec.blend) * _unit(seed)
    top = (cf_part + seed_part).sort_values(ascending=False, kind="stable").head(n)
    out = [
        (int(p), float(v), REASON_SIMILAR if cf_part[p] >= seed_part[p] else REASON_CATEGORY)
        for p, v in top.items()
    ]
    return out + _fill_trending(rec, cands, out, n)


def _unit(s: pd.Series) -> pd.Series:
    top = float(s.max()) if len(s) else 0.0
    return s / top if top > 0 else s * 0.0


def _cf_scores(rec: Recommender, history: pd.DataFrame) -> pd.Series:
    cols = [rec.item_index[int(p)] for p in history["product_id"] if int(p) in rec.item_index]
    if not cols:
        return pd.Series(dtype=float)
    strength = np.where(history["kind"].to_numpy() == "purchase", PURCHASE_STRENGTH, 1.0)
    weights = np.zeros(len(rec.items))
    for c, w in zip(cols, strength[: len(cols)], strict=False):
        weights[c] += w
    weights = np.log1p(weights)
    scores = rec.similarity @ weights
    nz = np.nonzero(scores)[0]
    return pd.Series(scores[nz], index=rec.items[nz])


def recommend_popular(rec: Recommender, user_id: int, n: int = TOP_N) -> list[tuple[int, float, str]]:
    """The comparison: the most viewed and bought products overall, minus viewed and unbuyable."""
    cands = _candidates(rec, user_id)
    pop = (cands["views"].astype(float) + cands["sales_count"].astype(float)).sort_values(
        ascending=False, kind="stable"
    )
    return [(int(p), float(v), REASON_POPULAR) for p, v in pop.head(n).items()]


def recommendation_rows(
    rec: Recommender, user_ids: list[int], *, n: int = TOP_N, blended: bool = True
) -> pd.DataFrame:
    """Rows for `product_recommendations`: user_id, product_id, score, reason, rank (1 = best),
    model_version. Users without history get the trending list (cold start)."""
    rows = []
    fn = recommend_blended if blended else recommend_seed
    for u in user_ids:
        for rank, (p, s, why) in enumerate(fn(rec, int(u), n), start=1):
            rows.append((int(u), p, s, why, rank))
    out = pd.DataFrame(rows, columns=["user_id", "product_id", "score", "reason", "rank"])
    out["model_version"] = rec.version
    return out


def tune_blend(
    products: pd.DataFrame,
    interactions: pd.DataFrame,
    *,
    cutoff: pd.Timestamp,
    validation_days: int = 14,
    grid: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0),
    k: int = 10,
) -> tuple[float, dict[float, float]]:
    """The blend weight with the best precision@k on a validation window that ends at `cutoff` (so
    the held-out period after `cutoff` plays no part in choosing it). Returns it and every score."""
    inner = cutoff - pd.Timedelta(days=validation_days)
    scores = {}
    for b in grid:
        r = evaluate(
            products,
            interactions[interactions["at"] < cutoff],
            cutoff=inner,
            k=k,
            blend=b,
            models=("blended",),
        )
        scores[b] = float(r[f"precision_at_{k}_blended"])
    return max(scores, key=lambda b: (scores[b], -abs(b - 0.5))), scores


# --- offline evaluation --------------------------------------------------------------------------
def evaluate(
    products: pd.DataFrame,
    interactions: pd.DataFrame,
    *,
    cutoff: pd.Timestamp,
    k: int = 10,
    blend: float = 0.5,
    max_users: int | None = None,
    models: tuple[str, ...] = ("blended", "seed", "popularity"),
) -> dict[str, Any]:
    """Fits on interactions before `cutoff`, asks each model for `k` products per user, and checks them
    against what the user went on to view or buy after `cutoff` that they had not touched before.

    Users scored: those with history before the cutoff and something new after it. Returns per model
    (blended, seed, popularity): precision@k, recall@k, coverage (share of the buyable catalogue
    recommended to someone), plus users and seconds.
    """
    began = time.perf_counter()
    as_of_products = counts_as_of(products, interactions, cutoff)
    rec = fit_recommender(as_of_products, interactions, as_of=cutoff, blend=blend)
    after = interactions[(interactions["at"] >= cutoff)].dropna(subset=["user_id"])
    truth: dict[int, set[int]] = {}
    for u, g in after.groupby("user_id"):
        h = rec.histories.get(int(u))
        if h is None:
            continue
        new = set(g["product_id"].astype(int)) - set(h["product_id"].astype(int))
        if new:
            truth[int(u)] = new
    users = sorted(truth)
    if max_users is not None:
        users = users[:max_users]
    results: dict[str, Any] = {"users": len(users), "cutoff": cutoff.isoformat(), "k": k, "blend": blend}
    catalogue = max(1, len(rec.products))
    fns = {"blended": recommend_blended, "seed": recommend_seed, "popularity": recommend_popular}
    for name in models:
        fn = fns[name]
        hits, recall, shown = [], [], set()
        for u in users:
            top = [p for p, _, _ in fn(rec, u, k)]
            shown.update(top)
            got = len(set(top) & truth[u])
            hits.append(got / k)
            recall.append(got / len(truth[u]))
        results[f"precision_at_{k}_{name}"] = float(np.mean(hits)) if hits else 0.0
        results[f"recall_at_{k}_{name}"] = float(np.mean(recall)) if recall else 0.0
        results[f"coverage_{name}"] = len(shown) / catalogue
    if "popularity" in models and "blended" in models:
        pop = results[f"precision_at_{k}_popularity"]
        results["lift_over_popularity"] = results[f"precision_at_{k}_blended"] / pop if pop else float("inf")
    results["seconds"] = round(time.perf_counter() - began, 3)
    return results
