"""Cached forms of the slower store reads, shared by every session of the dashboard process.

Arguments starting with `_` are not hashed by Streamlit, so each function also takes the database's
name (`db`) to keep two stores' numbers apart."""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from dashboard.data.store_reads import PeriodNumbers, ShopScope, StoreReads

# Today's numbers on the Real-time page may lag this much: they are the day's totals, not the feed.
OVERVIEW_TTL_SECONDS = 10
# The per-minute chart redraws every few seconds for every open Real-time page: one query serves all.
LIVE_TTL_SECONDS = 3


@st.cache_data(ttl=OVERVIEW_TTL_SECONDS, show_spinner=False)
def period(
    _reads: StoreReads,
    db: str,
    start: datetime,
    end: datetime,
    shops: ShopScope,
    exclude_user_id: int | None,
) -> PeriodNumbers:
    return _reads.period(start=start, end=end, shops=shops, exclude_user_id=exclude_user_id)


@st.cache_data(ttl=LIVE_TTL_SECONDS, show_spinner=False)
def events_per_minute(
    _reads: StoreReads, db: str, since: datetime, until: datetime, shops: ShopScope
) -> list[tuple[datetime, int]]:
    return _reads.events_per_minute(since=since, until=until, shops=shops)
