"""The dashboard's store reads on SQLite and PostgreSQL: the same numbers from both, exact money, and a
connection that cannot write."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from api.core.settings import Settings
from dashboard.data.engine import read_only_engine
from dashboard.data.store_reads import StoreReads
from tests.dashboard.conftest import PLATFORM, SHOP_A, World
from tests.helpers import Api


@pytest.fixture
def reads(settings: Settings) -> Iterator[StoreReads]:
    r = StoreReads(read_only_engine(settings))
    yield r
    r.engine.dispose()


def test_period_numbers_are_the_stores(api: Api, world: World, reads: StoreReads) -> None:
    now = datetime.now(UTC)
    start, end = now - timedelta(days=1), now + timedelta(days=1)

    platform = reads.period(start=start, end=end, shops=None)
    assert (platform.orders, platform.paid_orders) == (PLATFORM.orders, PLATFORM.paid)
    assert platform.revenue == PLATFORM.revenue
    assert all(isinstance(v, Decimal) for v in platform.revenue.values())
    assert (platform.new_users, platform.active_users) == (world.people, world.people)
    assert platform.product_viewers == PLATFORM.viewers

    shop_a = (world.shop_a["id"],)
    mine = reads.period(start=start, end=end, shops=shop_a, exclude_user_id=world.seller_a.id)
    assert (mine.orders, mine.paid_orders, mine.revenue) == (SHOP_A.orders, SHOP_A.paid, SHOP_A.revenue)
    assert (mine.new_users, mine.active_users, mine.product_viewers) == (
        SHOP_A.customers,
        2,
        SHOP_A.viewers,
    )
    assert mine.conversion == pytest.approx(SHOP_A.orders / SHOP_A.viewers)

    nothing = reads.period(start=start, end=end, shops=())  # a seller without a shop
    assert (nothing.orders, nothing.revenue, nothing.product_viewers, nothing.conversion) == (0, {}, 0, None)

    # The range is half open: a range ending before the data has none of it.
    before = reads.period(start=start - timedelta(days=7), end=start, shops=None)
    assert (before.orders, before.revenue, before.new_users) == (0, {}, 0)


def test_live_numbers(api: Api, world: World, reads: StoreReads) -> None:
    now = datetime.now(UTC)
    since = now - timedelta(minutes=5)
    assert reads.online_users(now=now, window=timedelta(minutes=5)) == world.people
    assert reads.count_orders(since=since, until=None, shops=None) == PLATFORM.orders
    assert reads.count_orders(since=since, until=None, shops=(world.shop_b["id"],)) == 2
    assert reads.count_messages(since=since, until=None, shops=None) == 1
    assert reads.count_messages(since=since, until=None, shops=(world.shop_b["id"],)) == 0
    assert reads.active_actors(since=since, until=None, shops=(world.shop_a["id"],)) == 3  # buyers and owner

    until = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    per_minute = reads.events_per_minute(since=until - timedelta(hours=1), until=until, shops=None)
    assert len(per_minute) == 60 and per_minute[-1][0] == until - timedelta(minutes=1)
    assert all(t.tzinfo is not None for t, _ in per_minute)
    assert sum(n for _, n in per_minute) == api.event_count()  # every event of the test is this hour's

    feed = reads.latest_events(limit=500, shops=(world.shop_a["id"],))
    assert feed and {e.shop_id for e in feed} == {world.shop_a["id"]}
    assert [e.id for e in feed] == sorted((e.id for e in feed), reverse=True)  # newest first
    placed = [e for e in feed if e.event_type == "order.placed"]
    assert len(placed) == SHOP_A.orders
    assert {e.actor for e in placed} == {world.buyer1.username, world.buyer2.username}
    assert len(reads.latest_events(limit=3, shops=None)) == 3


def test_accounts(api: Api, world: World, reads: StoreReads) -> None:
    account = reads.account_by_email(f"  {world.seller_a.email.upper()} ")
    assert account is not None and (account.id, account.role, account.is_active) == (
        world.seller_a.id,
        "seller",
        True,
    )
    assert account.password_hash.startswith("$argon2id$")
    assert reads.account_by_email("nobody@example.com") is None
    assert [s.name for s in reads.owned_shops(world.seller_a.id)] == ["Alpha Coins"]
    assert reads.owned_shops(world.buyer1.id) == ()


def test_the_dashboard_cannot_write(api: Api, world: World, reads: StoreReads) -> None:
    before = api.count("orders")
    with pytest.raises(DBAPIError), reads.engine.connect() as conn:
        conn.execute(text("DELETE FROM orders"))
    assert api.count("orders") == before
