"""Blockchain: the payments the store recorded, by currency and chain, per day, and the latest ones.

A payment is an order with paid_at set (marts.fct_orders.was_paid), counted on the UTC day it was
paid, for its whole total, whether or not the order was cancelled since. On-chain settlement
(transactions, confirmations, fees) is not in the warehouse yet."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from dashboard.reports.builder import BuildContext, SectionSpec
from dashboard.reports.model import Chart, ChartKind, Column, Format, Metric, Report, Table, table
from dashboard.reports.sections import queries as q
from warehouse import marts
from warehouse.marts import MartReader

SLUG = "blockchain"
TITLE = "Blockchain"
LATEST = 100
UNKNOWN_CHAIN = "unknown"


def _payments_cte(sel: q.Selection) -> tuple[str, q.Params]:
    """`WITH payments AS (...)`: the selection's orders paid in its days. With a category or product,
    the orders holding one of its products (for their whole amount: a payment pays the order)."""
    since, until = sel.bounds()
    shop_sql, params = q.shop_condition(sel)
    product_sql, more = q.product_condition(sel)
    holding = "TRUE"
    if sel.by_product:
        holding = f"order_id IN (SELECT order_id FROM marts.fct_order_items WHERE {product_sql})"  # noqa: S608
    body = f"""SELECT order_id, shop_id, status, currency, total_amount, paid_at, is_cancelled,
                      coalesce(payment_chain, '{UNKNOWN_CHAIN}') AS chain
               FROM marts.fct_orders
               WHERE was_paid AND paid_at >= :since AND paid_at < :until AND {shop_sql} AND {holding}"""  # noqa: S608
    return f"WITH payments AS ({body})", {**params, **more, "since": since, "until": until}


@dataclass(frozen=True)
class ChainTotal:
    currency: str
    chain: str
    paid_orders: int
    amount: Decimal
    cancelled: int  # of those, cancelled since


def _by_chain(reader: MartReader, sel: q.Selection) -> list[ChainTotal]:
    cte, params = _payments_cte(sel)
    rows = reader.fetch(
        f"""{cte}
            SELECT currency, chain, CAST(count(*) AS BIGINT), CAST(sum(total_amount) AS {q.MONEY_SQL}),
                   CAST(sum(CASE WHEN is_cancelled THEN 1 ELSE 0 END) AS BIGINT)
            FROM payments GROUP BY currency, chain ORDER BY currency, chain""",  # noqa: S608
        params,
    )
    return [ChainTotal(str(r[0]), str(r[1]), int(r[2]), marts.money(r[3]), int(r[4] or 0)) for r in rows]


def _metrics(chains: list[ChainTotal], currencies: list[str]) -> list[Metric]:
    paid = sum(c.paid_orders for c in chains)
    metrics = [Metric("Paid orders", paid, Format.integer, help="Orders paid in the days (by the day paid).")]
    amounts = {
        cur: marts.money(sum((c.amount for c in chains if c.currency == cur), Decimal(0)))
        for cur in currencies
    }
    if not currencies:
        metrics.append(Metric("Amount paid", marts.money(0), Format.money))
    for cur in currencies:
        metrics.append(Metric(f"Amount paid ({cur})", amounts[cur], Format.money))
    chains_used = {c.chain for c in chains if c.chain != UNKNOWN_CHAIN}
    metrics.append(Metric("Chains used", len(chains_used), Format.integer, help="Distinct payment chains."))
    return metrics


def _chain_table(chains: list[ChainTotal]) -> Table:
    paid = sum(c.paid_orders for c in chains)
    return table(
        "payments_by_currency_chain",
        "Payments by currency and chain",
        (
            Column("currency", "Currency", Format.text),
            Column("chain", "Chain", Format.text),
            Column("paid_orders", "Paid orders", Format.integer),
            Column("amount", "Amount", Format.money),
            Column("share_of_orders", "Share of paid orders", Format.ratio),
            Column("cancelled_after_payment", "Cancelled since", Format.integer),
        ),
        [
            (c.currency, c.chain, c.paid_orders, c.amount, marts.ratio(c.paid_orders, paid), c.cancelled)
            for c in chains
        ],
    )


def _currency_table(chains: list[ChainTotal]) -> Table:
    paid = sum(c.paid_orders for c in chains)
    sums: dict[str, tuple[int, Decimal]] = {}
    for c in chains:
        n, amount = sums.get(c.currency, (0, Decimal(0)))
        sums[c.currency] = (n + c.paid_orders, marts.money(amount + c.amount))
    return table(
        "payments_by_currency",
        "Payments by currency",
        (
            Column("currency", "Currency", Format.text),
            Column("paid_orders", "Paid orders", Format.integer),
            Column("amount", "Amount", Format.money),
            Column("share_of_orders", "Share of paid orders", Format.ratio),
        ),
        [(cur, n, amount, marts.ratio(n, paid)) for cur, (n, amount) in sorted(sums.items())],
    )


def _daily(reader: MartReader, sel: q.Selection) -> Table:
    cte, params = _payments_cte(sel)
    rows = reader.fetch(
        f"""{cte}
            SELECT CAST(paid_at AS DATE) AS paid_date, currency, CAST(count(*) AS BIGINT),
                   CAST(sum(total_amount) AS {q.MONEY_SQL})
            FROM payments GROUP BY CAST(paid_at AS DATE), currency""",  # noqa: S608
        params,
    )
    have: dict[tuple[date, str], tuple[int, Decimal]] = {
        (r[0], str(r[1])): (int(r[2]), marts.money(r[3])) for r in rows
    }
    currencies = sorted({c for _, c in have})
    out = []
    for day in sel.days:
        for cur in currencies:
            n, amount = have.get((day, cur)) or (0, marts.money(0))
            out.append((day, cur, n, amount))
    return table(
        "daily_payments",
        "Payments by day and currency",
        (
            Column("date", "Date", Format.date),
            Column("currency", "Currency", Format.text),
            Column("paid_orders", "Paid orders", Format.integer),
            Column("amount", "Amount", Format.money),
        ),
        out,
        note="By the UTC day paid; one row per day for each currency paid in during the days.",
    )


def _latest(reader: MartReader, sel: q.Selection) -> Table:
    cte, params = _payments_cte(sel)
    rows = reader.fetch(
        f"""{cte}
            SELECT p.order_id, p.shop_id, s.shop_name, p.currency, p.chain, p.total_amount, p.status,
                   p.paid_at
            FROM payments p JOIN marts.dim_shops s ON s.shop_id = p.shop_id
            ORDER BY p.paid_at DESC, p.order_id DESC
            LIMIT :limit""",  # noqa: S608
        {**params, "limit": LATEST},
    )
    return table(
        "latest_payments",
        f"Latest payments (at most {LATEST})",
        (
            Column("order_id", "Order id", Format.integer),
            Column("shop_id", "Shop id", Format.integer),
            Column("shop_name", "Shop", Format.text),
            Column("currency", "Currency", Format.text),
            Column("chain", "Chain", Format.text),
            Column("amount", "Amount", Format.money),
            Column("status", "Status now", Format.text),
            Column("paid_at", "Paid at (UTC)", Format.datetime),
        ),
        [
            (int(r[0]), int(r[1]), str(r[2]), str(r[3]), str(r[4]), marts.money(r[5]), str(r[6]), q.utc(r[7]))
            for r in rows
        ],
    )


CHARTS = (
    Chart(
        "payments_by_currency",
        "Paid orders by currency",
        "payments_by_currency",
        "currency",
        ("paid_orders",),
        ChartKind.pie,
    ),
    Chart(
        "payments_by_chain",
        "Paid orders by chain",
        "payments_by_currency_chain",
        "chain",
        ("paid_orders",),
        ChartKind.bar,
        series="currency",
    ),
    Chart(
        "daily_payments",
        "Paid orders per day",
        "daily_payments",
        "date",
        ("paid_orders",),
        ChartKind.stacked_bar,
        series="currency",
        y_title="Paid orders",
    ),
)

NOTES = (
    "A payment is an order the store marked paid, counted on the UTC day it was paid for the order's "
    "total, including orders cancelled since.",
    "On-chain settlement data (transactions, confirmations, fees) comes with the blockchain work later; "
    "the chain is the one the buyer paid on, as the store recorded it.",
)


def build(ctx: BuildContext) -> Report:
    filters = q.report_filters(ctx)
    q.check_product(ctx, filters)
    sel = q.selection(ctx, filters)
    chains = _by_chain(ctx.reader, sel)
    before = _by_chain(ctx.reader, q.selection(ctx, filters.previous()))
    currencies = sorted({c.currency for c in chains} | {c.currency for c in before})
    notes: tuple[str, ...] = NOTES
    if sel.by_product:
        notes += (
            "A category or product filter keeps the orders holding its products, for their whole amount.",
        )
    tables = (
        _chain_table(chains),
        _currency_table(chains),
        _daily(ctx.reader, sel),
        _latest(ctx.reader, sel),
    )
    return Report(
        section=SLUG,
        title=TITLE,
        subtitle=q.subtitle(ctx, filters),
        generated_at=ctx.now,
        freshness=ctx.freshness_text(),
        metrics=q.compared(_metrics(chains, currencies), _metrics(before, currencies)),
        tables=tables,
        charts=CHARTS,
        notes=notes,
    )


SECTION = SectionSpec(slug=SLUG, title=TITLE, build=build)
