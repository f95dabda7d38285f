"""Overview: the headline numbers of a date range against the range just before it.

The range lives in the URL (`?start=YYYY-MM-DD&end=YYYY-MM-DD`, both days included, UTC), so a
view can be shared. A shop owner sees their shops' numbers."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import streamlit as st

from dashboard import charts, formatting
from dashboard.context import PageContext, current
from dashboard.data import cache
from dashboard.data.store_reads import DailyRow, PeriodNumbers

DEFAULT_DAYS = 7
DATES_KEY = "overview_dates"


def date_range(params: Mapping[str, str], today: date) -> tuple[date, date]:
    """The range the URL asks for; the last week up to today when it asks for none or nonsense."""
    default = (today - timedelta(days=DEFAULT_DAYS - 1), today)
    try:
        start = date.fromisoformat(params["start"])
        end = date.fromisoformat(params["end"])
    except (KeyError, ValueError):
        return default
    return (start, end) if start <= end else (end, start)


def bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00, the day after end 00:00) in UTC."""
    return (
        datetime.combine(start, datetime.min.time(), UTC),
        datetime.combine(end + timedelta(days=1), datetime.min.time(), UTC),
    )


def render(ctx: PageContext) -> None:
    st.title("Overview")
    viewer = ctx.viewer
    if not viewer.sees_platform and not viewer.shops:
        st.info("You do not own a shop yet: once you open one, its numbers show here.")
        return
    today = ctx.clock.now().astimezone(UTC).date()
    start, end = date_range(st.query_params.to_dict(), today)
    picked = st.date_input(
        "Dates (UTC, both included)", value=(start, end), key=DATES_KEY, format="YYYY-MM-DD"
    )
    if isinstance(picked, tuple) and len(picked) == 2:
        start, end = picked
    # While a range is half picked the widget holds one day: keep showing the URL's range meanwhile.
    st.query_params["start"] = start.isoformat()
    st.query_params["end"] = end.isoformat()

    if viewer.sees_platform:
        st.caption("The whole platform.")
    else:
        st.caption("Your shops: " + ", ".join(s.name for s in viewer.shops))

    since, until = bounds(start, end)
    length = until - since
    reads, scope = ctx.reads, viewer.scope
    exclude = None if viewer.sees_platform else viewer.id
    now_numbers = cache.period(reads, reads.key, since, until, scope, exclude)
    before = cache.period(reads, reads.key, since - length, since, scope, exclude)
    st.caption(
        f"Compared with {(since - length).date():%Y-%m-%d} to {(since - timedelta(days=1)).date():%Y-%m-%d}."
    )
    kpis(now_numbers, before, shop_view=not viewer.sees_platform)

    rows = cache.daily(reads, reads.key, since, until, scope)
    st.plotly_chart(charts.daily_orders_revenue(rows), key="daily_orders_revenue")
    with st.expander("Daily numbers"):
        st.dataframe(daily_frame(rows), hide_index=True)


def kpis(cur: PeriodNumbers, prev: PeriodNumbers, *, shop_view: bool) -> None:
    cols = st.columns(5)
    cols[0].metric("Orders", cur.orders, formatting.change(cur.orders, prev.orders), help="Orders placed.")
    users_label = "New customers" if shop_view else "New users"
    users_help = (
        "Buyers whose first order at your shops fell in the range." if shop_view else "Accounts created."
    )
    cols[1].metric(
        users_label, cur.new_users, formatting.change(cur.new_users, prev.new_users), help=users_help
    )
    cols[2].metric(
        "Active users",
        cur.active_users,
        formatting.change(cur.active_users, prev.active_users),
        help="People who did anything recorded" + (" at your shops (you excluded)." if shop_view else "."),
    )
    conv_delta = (
        None
        if cur.conversion is None or prev.conversion is None
        else f"{(cur.conversion - prev.conversion) * 100:+.1f} pp"
    )
    cols[3].metric(
        "Conversion",
        formatting.ratio(cur.conversion),
        conv_delta,
        help=f"Orders per product viewer ({cur.orders} orders, {cur.product_viewers} viewers).",
    )
    cols[4].metric("Paid orders", cur.paid_orders, formatting.change(cur.paid_orders, prev.paid_orders))

    st.subheader("Revenue")
    if not cur.revenue and not prev.revenue:
        st.caption("No paid orders in this range.")
        return
    currencies = sorted(set(cur.revenue) | set(prev.revenue))
    rcols = st.columns(max(len(currencies), 1))
    for col, currency in zip(rcols, currencies, strict=True):
        amount = cur.revenue.get(currency)
        before = prev.revenue.get(currency)
        col.metric(
            f"Revenue {currency}",
            formatting.money(amount) if amount is not None else "0",
            formatting.change(amount or 0, before or 0),
            help="Orders placed in the range and paid (not cancelled).",
        )


def daily_frame(rows: list[DailyRow]) -> pd.DataFrame:
    currencies = sorted({c for r in rows for c in r.revenue})
    return pd.DataFrame(
        [
            {
                "day": r.day.isoformat(),
                "orders": r.orders,
                # Text, so the table shows the exact amounts rather than floats.
                **{
                    f"revenue {c}": formatting.money(r.revenue[c]) if c in r.revenue else ""
                    for c in currencies
                },
            }
            for r in rows
        ]
    )


if __name__ == "__main__":  # run as a page by the router
    render(current())
