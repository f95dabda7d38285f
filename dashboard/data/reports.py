"""The sections' reports as the pages read them: built by the one report builder, cached per
published warehouse.

The cache key holds the warehouse's published identity (`warehouse.marts.published_identity`: the
read snapshot's inode, mtime and size on DuckDB), so a pipeline run that publishes new data makes
every page read it on its next rerun, and until then every session shares one build. Reads go to the
published snapshot, never to the file a run writes: a page neither blocks a run nor fails during one."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from api.core.settings import Settings
from dashboard.reports.builder import build_report
from dashboard.reports.filters import Filters, Scope
from dashboard.reports.model import Report
from warehouse import marts
from warehouse.duckdb import WarehouseUnavailable

# Checking the identity is a stat() on DuckDB and one small query on PostgreSQL: once a second per
# process is plenty, and a published run shows within it.
IDENTITY_TTL_SECONDS = 2
REPORTS_KEPT = 256


@st.cache_data(ttl=IDENTITY_TTL_SECONDS, show_spinner=False)
def identity(_settings: Settings, db: str) -> str | None:
    """The published warehouse's identity; None when there is none yet."""
    try:
        return marts.published_identity(_settings)
    except WarehouseUnavailable:
        return None


@st.cache_data(max_entries=REPORTS_KEPT, show_spinner=False)
def report(_settings: Settings, db: str, published: str, slug: str, filters: Filters, scope: Scope) -> Report:
    """The section's report; `published` is only the cache key (see the module's docstring)."""
    return build_report(_settings, slug, filters, scope, now=datetime.now(UTC))
