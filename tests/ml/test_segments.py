"""Segments found from behaviour match the personas the simulator planted, and carry fitting names."""

from __future__ import annotations

import pandas as pd
import pytest

from ml.price import category_reference
from ml.segments import (
    Segmentation,
    assign_segments,
    persona_agreement,
    segment_shifts,
    segment_users,
    user_features,
)
from tests.ml.conftest import Market
from tests.ml.frames import personas


def _features(market: Market, as_of: pd.Timestamp) -> pd.DataFrame:
    f = market.frames
    return user_features(
        f.users,
        f.orders,
        f.views,
        reference=category_reference(f.products),
        as_of=as_of,
        messages=f.messages,
        price_alerts=f.price_alerts,
        follows=f.follows,
    )


@pytest.fixture(scope="module")
def segmentation(market: Market) -> Segmentation:
    return segment_users(_features(market, market.end))


def test_features_cover_every_buyer_once(market: Market, segmentation: Segmentation) -> None:
    buyers = market.frames.users[market.frames.users["role"] == "buyer"]["user_id"]
    assert sorted(segmentation.users["user_id"]) == sorted(buyers)
    u = segmentation.users.set_index("user_id")
    orders = market.frames.orders
    one = int(orders["buyer_id"].value_counts().index[0])
    mine = orders[orders["buyer_id"] == one]
    assert u.loc[one, "lifetime_orders"] == len(mine)
    assert u.loc[one, "frequency"] == (mine["status"] != "cancelled").sum()
    assert u.loc[one, "monetary"] == sum(mine[mine["status"] != "cancelled"]["total_amount"])


def test_segments_recover_the_planted_personas(market: Market, segmentation: Segmentation) -> None:
    truth = personas(market.truth)
    ari = persona_agreement(segmentation.users, truth)
    assert ari >= 0.6, (ari, segmentation.metrics)
    k = segmentation.metrics["k"]
    assert k == max(segmentation.metrics["silhouette_by_k"], key=segmentation.metrics["silhouette_by_k"].get)


def test_segments_are_named_after_how_their_members_shop(market: Market, segmentation: Segmentation) -> None:
    truth = personas(market.truth)
    users = segmentation.users.assign(persona=segmentation.users["user_id"].map(truth))
    majority = users.groupby("persona")["segment_name"].agg(lambda s: s.value_counts().index[0])
    assert majority["bargain_hunter"] == "bargain hunters", majority
    assert majority["window_shopper"] == "window shoppers", majority
    assert majority["loyal_buyer"] == "loyal", majority
    assert segmentation.users["segment_name"].nunique() == segmentation.metrics["k"]


def test_a_fitted_segmentation_scores_users_again_and_shows_shifts(
    market: Market, segmentation: Segmentation
) -> None:
    again = assign_segments(segmentation, segmentation.users)
    assert (again["segment"].to_numpy() == segmentation.users["segment"].to_numpy()).all()
    earlier = assign_segments(segmentation, _features(market, market.end - pd.Timedelta(days=14)))
    shifts = segment_shifts(earlier, segmentation.users)
    assert shifts["after"].sum() == len(segmentation.users)
    assert shifts["before"].sum() == len(earlier) < len(segmentation.users)  # some signed up since
    assert (shifts["change"] == shifts["after"] - shifts["before"]).all()
