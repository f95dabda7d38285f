"""The overview, analytics and blockchain reports of the simulated market, checked against the store.

Every number is recounted from the store's own tables (orders, order_items, products, product_views,
shops, users) through its ORM, so a report that read the wrong mart column, dropped a currency, leaked
another shop's rows or shifted a day would differ from it."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from api.db import registry
from dashboard.reports.builder import build_report
from dashboard.reports.filters import Filters, OutOfScope, Scope
from dashboard.reports.model import Cell, Format, Metric, Report, Table
from tests.pipelines.trained import TrainedMarket, trained_market  # noqa: F401
from warehouse.marts import money

FILTERS = Filters(date(2026, 1, 5), date(2026, 2, 1))  # the simulation's 28 days
LATER = Filters(date(2026, 1, 19), date(2026, 2, 1))  # its previous period is the first two weeks
EMPTY = Filters(date(2030, 1, 1), date(2030, 1, 14))
NOW = datetime(2026, 2, 2, 12, tzinfo=UTC)
PAID = ("paid", "shipped", "delivered")
SLUGS = ("overview", "analytics", "blockchain")

Order = registry.orders.Order
OrderItem = registry.orders.OrderItem
Product = registry.catalog.Product
ProductView = registry.tracking.ProductView
Shop = registry.shops.Shop
User = registry.auth.User
Category = registry.catalog.Category


@dataclass(frozen=True)
class Store:
    """The store's rows the reports count, read once."""

    orders: list[registry.orders.Order]
    items: list[registry.orders.OrderItem]
    products: dict[int, registry.catalog.Product]
    views: list[registry.tracking.ProductView]
    shops: dict[int, registry.shops.Shop]
    users: list[registry.auth.User]
    categories: list[registry.catalog.Category]

    def placed(self, f: Filters, shops: Scope = None) -> list[registry.orders.Order]:
        since, until = f.bounds()
        return [
            o for o in self.orders if since <= o.created_at < until and (shops is None or o.shop_id in shops)
        ]

    def revenue(self, f: Filters, shops: Scope = None) -> dict[str, Decimal]:
        out: dict[str, Decimal] = defaultdict(Decimal)
        for o in self.placed(f, shops):
            if counts(o):
                out[o.currency] += o.total_amount
        return {c: money(v) for c, v in out.items()}

    def owned(self) -> dict[int, tuple[int, ...]]:
        by_owner: dict[int, list[int]] = defaultdict(list)
        for s in self.shops.values():
            by_owner[s.owner_id].append(s.id)
        return {owner: tuple(sorted(ids)) for owner, ids in by_owner.items()}


def counts(o: registry.orders.Order) -> bool:
    return o.status in PAID and o.paid_at is not None


@pytest.fixture(scope="module")
def store(trained_market: TrainedMarket) -> Iterator[Store]:  # noqa: F811
    engine = create_engine(trained_market.settings.database_url)
    with Session(engine) as s:
        yield Store(
            orders=list(s.scalars(select(Order))),
            items=list(s.scalars(select(OrderItem))),
            products={p.id: p for p in s.scalars(select(Product))},
            views=list(s.scalars(select(ProductView))),
            shops={sh.id: sh for sh in s.scalars(select(Shop))},
            users=list(s.scalars(select(User))),
            categories=list(s.scalars(select(Category))),
        )
    engine.dispose()


def num(cell: Cell) -> int:
    assert isinstance(cell, int), cell
    return cell


def dec(cell: Cell) -> Decimal:
    assert isinstance(cell, Decimal), cell
    return cell


def ints(t: Table, name: str) -> list[int]:
    return [num(v) for v in t.values(name)]


def build(market: TrainedMarket, slug: str, filters: Filters, scope: Scope = None) -> Report:
    return build_report(market.settings, slug, filters, scope, NOW)


def metrics(report: Report) -> dict[str, Metric]:
    return {m.label: m for m in report.metrics}


def value(report: Report, label: str) -> object:
    return metrics(report)[label].value


# --- overview -------------------------------------------------------------------------------------


def test_overview_headline_days_and_tops_match_the_store(trained_market: TrainedMarket, store: Store) -> None:  # noqa: F811
    report = build(trained_market, "overview", FILTERS)
    placed = store.placed(FILTERS)
    revenue = store.revenue(FILTERS)
    assert revenue, "the simulation sells something"

    assert (report.section, report.title, report.generated_at) == ("overview", "Overview", NOW)
    assert "the whole platform" in report.subtitle and "2026-01-05 to 2026-02-01" in report.subtitle
    assert report.freshness.startswith("Data loaded")
    assert value(report, "Orders") == len(placed)
    assert value(report, "Paid orders") == sum(1 for o in placed if counts(o))
    shown = {m.label: m.value for m in report.metrics if m.format is Format.money}
    assert shown == {
        **{f"Revenue ({c})": v for c, v in revenue.items()},
        **{
            f"Average order value ({c})": money(v / sum(1 for o in placed if o.currency == c))
            for c, v in revenue.items()
        },
    }
    since, until = FILTERS.bounds()
    assert value(report, "New users") == sum(1 for u in store.users if since <= u.created_at < until)

    daily = report.table("daily")
    assert daily.values("date") == [FILTERS.start + timedelta(days=i) for i in range(28)]
    assert sum(ints(daily, "orders")) == len(placed)
    by_currency: dict[object, Decimal] = defaultdict(Decimal)
    for row in report.table("daily_revenue").records():
        by_currency[row["currency"]] += dec(row["revenue"])
    assert dict(by_currency) == revenue

    for row in report.table("top_shops").records():
        shop = num(row["shop_id"])
        assert row["shop_name"] == store.shops[shop].name
        assert row["revenue"] == store.revenue(FILTERS, (shop,))[str(row["currency"])]
    top = report.table("top_products").records()[0]
    line_revenue = sum(
        (
            i.line_total
            for i in store.items
            if i.product_id == top["product_id"] and i.order_id in {o.id for o in placed if counts(o)}
        ),
        Decimal(0),
    )
    assert top["revenue"] == money(line_revenue) > 0
    assert {c.key for c in report.charts} == {"daily_orders", "daily_revenue", "top_shops", "top_products"}


def test_overview_compares_with_the_period_before(trained_market: TrainedMarket, store: Store) -> None:  # noqa: F811
    report = build(trained_market, "overview", LATER)
    before = build(trained_market, "overview", LATER.previous())
    assert LATER.previous() == Filters(date(2026, 1, 5), date(2026, 1, 18))
    assert {m.label: m.previous for m in report.metrics} == {m.label: m.value for m in before.metrics}
    assert metrics(report)["Orders"].previous == len(store.placed(LATER.previous())) > 0
    assert value(report, "Orders") == len(store.placed(LATER))


def test_overview_category_counts_orders_holding_its_products(
    trained_market: TrainedMarket,  # noqa: F811
    store: Store,
) -> None:
    category = next(p.category_id for p in store.products.values() if p.category_id is not None)
    report = build(trained_market, "overview", Filters(FILTERS.start, FILTERS.end, category_id=category))
    placed = {o.id: o for o in store.placed(FILTERS)}
    lines = [
        i
        for i in store.items
        if i.order_id in placed and store.products[i.product_id].category_id == category
    ]
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    for i in lines:
        if counts(placed[i.order_id]):
            revenue[placed[i.order_id].currency] += i.line_total
    assert value(report, "Orders") == len({i.order_id for i in lines}) > 0
    assert {c: value(report, f"Revenue ({c})") for c in revenue} == {c: money(v) for c, v in revenue.items()}
    assert {store.products[p].category_id for p in ints(report.table("top_products"), "product_id")} == {
        category
    }
    since, until = FILTERS.bounds()
    assert value(report, "Views") == sum(
        1
        for v in store.views
        if since <= v.created_at < until and store.products[v.product_id].category_id == category
    )


# --- analytics ------------------------------------------------------------------------------------


def test_analytics_platform_numbers_and_drill_down(trained_market: TrainedMarket, store: Store) -> None:  # noqa: F811
    report = build(trained_market, "analytics", FILTERS)
    since, until = FILTERS.bounds()
    assert value(report, "Views") == sum(1 for v in store.views if since <= v.created_at < until) > 0
    assert value(report, "Orders") == len(store.placed(FILTERS))
    daily = report.table("daily")
    assert len(daily.rows) == FILTERS.days
    assert sum(ints(daily, "views")) == value(report, "Views")
    assert sum(map(dec, report.table("daily_revenue").values("revenue")), Decimal(0)) == sum(
        store.revenue(FILTERS).values(), Decimal(0)
    )

    shops = report.table("shops").records()
    assert {r["shop_id"]: r["shop_name"] for r in shops} == {s.id: s.name for s in store.shops.values()}
    for r in shops:
        assert r["orders"] == len(store.placed(FILTERS, (num(r["shop_id"]),)))
    assert report.extra["shops"] == sorted((s.id, s.name) for s in store.shops.values())
    categories = {p.category_id for p in store.products.values() if p.category_id is not None}
    assert [c for c, _ in report.extra["categories"]] == sorted(categories)
    # Named as the store names them (the warehouse copies the categories table).
    assert dict(report.extra["categories"]) == {c.id: c.name for c in store.categories if c.id in categories}
    assert report.extra["products"] == []  # the platform's products are listed once a shop is picked

    funnel = report.table("funnel").records()
    assert [r["step"] for r in funnel] == ["viewed", "chatted", "ordered", "paid"]
    users = [num(r["users"]) for r in funnel]
    assert users[0] >= users[2] >= users[3] > 0
    cohorts = report.table("cohorts").records()
    assert sum(num(r["cohort_size"]) for r in cohorts if r["months_since_signup"] == 0) == len(store.users)
    assert all(r["retention_rate"] == num(r["active_users"]) / num(r["cohort_size"]) for r in cohorts)
    terms = report.table("search_terms").records()
    assert terms and terms == sorted(terms, key=lambda r: (-num(r["searches"]), str(r["search_term"])))
    assert {c.key for c in report.charts} >= {"daily_traffic", "funnel", "cohort_retention", "search_terms"}


def test_analytics_shop_and_product_drill_down(trained_market: TrainedMarket, store: Store) -> None:  # noqa: F811
    shop = max(store.shops, key=lambda s: len(store.placed(FILTERS, (s,))))
    report = build(trained_market, "analytics", Filters(FILTERS.start, FILTERS.end, shop_id=shop))
    names = [t.name for t in report.tables]
    assert "shops" not in names and "products" in names and "cohorts" not in names
    mine = {p.id for p in store.products.values() if p.shop_id == shop}
    products = report.table("products").records()
    assert {r["product_id"] for r in products} == mine
    assert sorted(report.extra["products"]) == sorted((p, store.products[p].name) for p in mine)
    assert value(report, "Orders") == len(store.placed(FILTERS, (shop,)))
    assert store.shops[shop].name in report.subtitle

    product = num(max(products, key=lambda r: num(r["orders"]))["product_id"])
    drilled = build(
        trained_market, "analytics", Filters(FILTERS.start, FILTERS.end, shop_id=shop, product_id=product)
    )
    days = drilled.table("product_daily")
    placed = {o.id for o in store.placed(FILTERS)}
    since, until = FILTERS.bounds()
    assert len(days.rows) == FILTERS.days
    assert sum(ints(days, "orders")) == len(
        {i.order_id for i in store.items if i.product_id == product and i.order_id in placed}
    )
    assert sum(ints(days, "views")) == sum(
        1 for v in store.views if v.product_id == product and since <= v.created_at < until
    )
    assert drilled.table("products").values("product_id") == [product]

    category = store.products[product].category_id
    narrowed = build(
        trained_market, "analytics", Filters(FILTERS.start, FILTERS.end, shop_id=shop, category_id=category)
    )
    assert {r["category_id"] for r in narrowed.table("products").records()} == {category}
    assert {p for p, _ in narrowed.extra["products"]} == {
        p for p in mine if store.products[p].category_id == category
    }


# --- blockchain -----------------------------------------------------------------------------------


def test_blockchain_payments_match_the_store(trained_market: TrainedMarket, store: Store) -> None:  # noqa: F811
    report = build(trained_market, "blockchain", FILTERS)
    since, until = FILTERS.bounds()
    paid = [o for o in store.orders if o.paid_at is not None and since <= o.paid_at < until]
    expected: dict[tuple[str, str], tuple[int, Decimal]] = {}
    for o in paid:
        n, amount = expected.get((o.currency, o.payment_chain or "unknown"), (0, Decimal(0)))
        expected[(o.currency, o.payment_chain or "unknown")] = (n + 1, amount + o.total_amount)
    table = report.table("payments_by_currency_chain").records()
    assert {(r["currency"], r["chain"]): (r["paid_orders"], r["amount"]) for r in table} == {
        k: (n, money(a)) for k, (n, a) in expected.items()
    }
    shares = [r["share_of_orders"] for r in table if isinstance(r["share_of_orders"], float)]
    assert len(shares) == len(table) and math.fsum(shares) == pytest.approx(1.0)
    assert value(report, "Paid orders") == len(paid)
    assert value(report, "Chains used") == len({o.payment_chain for o in paid if o.payment_chain})
    for currency in {o.currency for o in paid}:
        assert value(report, f"Amount paid ({currency})") == money(
            sum((o.total_amount for o in paid if o.currency == currency), Decimal(0))
        )
    daily = report.table("daily_payments")
    assert len(daily.rows) == FILTERS.days * len({o.currency for o in paid})
    assert sum(ints(daily, "paid_orders")) == len(paid)
    latest = report.table("latest_payments")
    assert len(latest.rows) == min(100, len(paid))
    stamps = [t for t in latest.values("paid_at") if isinstance(t, datetime)]
    assert len(stamps) == len(latest.rows) and stamps == sorted(stamps, reverse=True)
    assert stamps[0] == max(o.paid_at for o in paid if o.paid_at is not None)
    assert any("blockchain work" in n for n in report.notes)
    assert {c.key for c in report.charts} == {"payments_by_currency", "payments_by_chain", "daily_payments"}


# --- scope, empty ranges --------------------------------------------------------------------------


def _shop_cells(report: Report) -> set[object]:
    return {v for t in report.tables if "shop_id" in {c.name for c in t.columns} for v in t.values("shop_id")}


def _product_cells(report: Report) -> set[object]:
    return {
        v
        for t in report.tables
        if "product_id" in {c.name for c in t.columns}
        for v in t.values("product_id")
    }


@pytest.mark.parametrize("shops_of", [1, 2], ids=["one-shop", "two-shops"])
def test_a_sellers_scope_sees_only_their_shops(
    trained_market: TrainedMarket,  # noqa: F811
    store: Store,
    shops_of: int,
) -> None:
    # Each simulated seller owns one shop; two sellers' shops stand for an owner of two.
    owned = sorted(store.owned().values())
    scope = tuple(sorted(s for shops in owned[:shops_of] for s in shops))
    theirs = {p.id for p in store.products.values() if p.shop_id in scope}
    since, until = FILTERS.bounds()
    for slug in SLUGS:
        report = build(trained_market, slug, FILTERS, scope)
        assert _shop_cells(report) <= set(scope), slug
        assert _product_cells(report) <= theirs, slug
        others = [s.name for s in store.shops.values() if s.id not in scope]
        assert not any(name in report.subtitle for name in others)
        if slug == "overview":
            placed = store.placed(FILTERS, scope)
            assert value(report, "Orders") == len(placed) > 0
            assert value(report, "Paid orders") == sum(1 for o in placed if counts(o))
            for c, v in store.revenue(FILTERS, scope).items():
                assert value(report, f"Revenue ({c})") == v
            assert "top_shops" not in [t.name for t in report.tables]
        if slug == "analytics":
            assert value(report, "Orders") == len(store.placed(FILTERS, scope))
            assert [s for s, _ in report.extra["shops"]] == list(scope)
            assert "cohorts" not in [t.name for t in report.tables]
            assert {p for p, _ in report.extra["products"]} <= theirs
        if slug == "blockchain":
            paid = [
                o for o in store.orders if o.shop_id in scope and o.paid_at and since <= o.paid_at < until
            ]
            assert value(report, "Paid orders") == len(paid) > 0


def test_an_empty_range_has_zero_numbers(trained_market: TrainedMarket) -> None:  # noqa: F811
    for slug in SLUGS:
        report = build(trained_market, slug, EMPTY)
        for m in report.metrics:
            assert m.value in (0, None), (slug, m)
            assert m.previous in (0, None), (slug, m)
        for t in report.tables:
            numeric = [c.name for c in t.columns if c.format in (Format.integer, Format.money, Format.ratio)]
            numeric = [n for n in numeric if n not in ("shop_id", "product_id", "category_id", "cohort_size")]
            for row in t.records():
                assert all(row[n] in (0, None) for n in numeric), (slug, t.name, row)
    assert len(build(trained_market, "overview", EMPTY).table("daily").rows) == EMPTY.days


def test_filters_outside_the_scope_are_refused(trained_market: TrainedMarket, store: Store) -> None:  # noqa: F811
    owned = sorted(store.owned().values())
    mine, other = owned[0], owned[1][0]
    foreign_product = next(p.id for p in store.products.values() if p.shop_id == other)
    for slug in SLUGS:
        with pytest.raises(OutOfScope):
            build(trained_market, slug, Filters(FILTERS.start, FILTERS.end, shop_id=other), mine)
        with pytest.raises(OutOfScope):
            build(trained_market, slug, Filters(FILTERS.start, FILTERS.end, product_id=foreign_product), mine)
