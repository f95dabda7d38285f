"""Real-time: what is happening in the store now, redrawn every few seconds.

Reads the store's outbox and live tables directly (not the warehouse), so it is as fresh as the
store. A shop owner sees only their shops' events and numbers."""

from __future__ import annotations

from datetime import UTC, timedelta

import pandas as pd
import streamlit as st

from dashboard import charts, formatting
from dashboard.context import PageContext, current
from dashboard.data import cache
from dashboard.data.store_reads import FeedEvent

REFRESH_SECONDS = 5
FEED_SIZE = 50
# A session counts as online while it has been active this recently (the API touches last_activity
# at most once a minute, see Settings.session_touch_seconds).
ONLINE_WINDOW = timedelta(minutes=5)
SHORT_WINDOW = timedelta(minutes=5)
LONG_WINDOW = timedelta(minutes=60)
FEED_COLUMNS = ["time (UTC)", "type", "actor", "entity", "shop"]


def render(ctx: PageContext) -> None:
    st.title("Real-time")
    viewer = ctx.viewer
    if viewer.sees_platform:
        st.caption(f"The whole platform, redrawn every {REFRESH_SECONDS} s.")
    elif viewer.shops:
        names = ", ".join(s.name for s in viewer.shops)
        st.caption(
            f"Your shop{'s' if len(viewer.shops) > 1 else ''}: {names}. Redrawn every {REFRESH_SECONDS} s."
        )
    else:
        st.info("You do not own a shop yet: once you open one, its live activity shows here.")
        return
    live(ctx)


@st.fragment(run_every=REFRESH_SECONDS)
def live(ctx: PageContext) -> None:
    """The part of the page that redraws itself (a fragment: the rest of the page stays as it is)."""
    reads, viewer = ctx.reads, ctx.viewer
    scope = viewer.scope
    now = ctx.clock.now()

    cols = st.columns(5)
    if viewer.sees_platform:
        cols[0].metric(
            "Online users",
            reads.online_users(now=now, window=ONLINE_WINDOW),
            help="Sessions online and active in the last 5 minutes.",
        )
    else:
        visitors = reads.active_actors(
            since=now - SHORT_WINDOW, until=None, shops=scope, exclude_user_id=viewer.id
        )
        cols[0].metric(
            "Active on your shops",
            visitors,
            help="People (other than you) who did something at your shops in the last 5 minutes.",
        )
    cols[1].metric("Orders, 5 min", reads.count_orders(since=now - SHORT_WINDOW, until=None, shops=scope))
    cols[2].metric("Orders, 60 min", reads.count_orders(since=now - LONG_WINDOW, until=None, shops=scope))
    cols[3].metric("Messages, 5 min", reads.count_messages(since=now - SHORT_WINDOW, until=None, shops=scope))
    cols[4].metric("Messages, 60 min", reads.count_messages(since=now - LONG_WINDOW, until=None, shops=scope))

    # Today so far, live from the store (the warehouse's marts lag by a pipeline run).
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    exclude = None if viewer.sees_platform else viewer.id
    today = cache.period(reads, reads.key, midnight, now + timedelta(seconds=1), scope, exclude)
    tcols = st.columns(max(2, len(today.revenue) + 1))
    tcols[0].metric("Paid orders today", today.paid_orders, help="Orders placed since 00:00 UTC and paid.")
    for col, (currency, amount) in zip(tcols[1:], sorted(today.revenue.items()), strict=False):
        col.metric(f"Revenue today {currency}", formatting.money(amount))

    # Whole minutes, so the cached query's key changes once a minute and every open page shares it.
    until = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    points = cache.events_per_minute(reads, reads.key, until - LONG_WINDOW, until, scope)
    st.plotly_chart(charts.events_per_minute(points), key="events_per_minute")

    st.subheader("Latest activity")
    feed = reads.latest_events(limit=FEED_SIZE, shops=scope)
    if not feed:
        st.info("No events yet.")
    else:
        frame = feed_frame(feed)
        st.dataframe(frame, hide_index=True)
        # The live feed is the store's, not a report of the marts: its export is the feed as shown.
        st.download_button(
            "CSV",
            frame.to_csv(index=False),
            file_name=f"realtime_feed_{now:%Y%m%dT%H%M%SZ}.csv",
            mime="text/csv",
            icon=":material/download:",
            on_click="ignore",
            key="download_realtime_csv",
        )
    st.caption(f"Updated {now:%H:%M:%S} UTC")


def feed_frame(feed: list[FeedEvent]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "time (UTC)": e.occurred_at.strftime("%Y-%m-%d %H:%M:%S"),
                "type": e.event_type,
                "actor": e.actor or (f"user {e.actor_user_id}" if e.actor_user_id else "—"),
                "entity": f"{e.entity_type} {e.entity_id}" if e.entity_id is not None else e.entity_type,
                "shop": "" if e.shop_id is None else str(e.shop_id),
            }
            for e in feed
        ],
        columns=FEED_COLUMNS,
    )


if __name__ == "__main__":  # run as a page by the router
    render(current())
