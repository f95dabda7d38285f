"""What a page gets from the router: settings, the store reads, the clock and the signed-in viewer.

Streamlit runs a page file as a fresh script, so the router cannot call it with arguments: it leaves
the context in the session's state for the page to pick up with `current()`."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from api.core.clock import Clock
from api.core.settings import Settings
from dashboard.access import Viewer
from dashboard.data.store_reads import StoreReads

VIEWER_KEY = "dashboard_viewer"
CONTEXT_KEY = "dashboard_context"


@dataclass(frozen=True)
class PageContext:
    settings: Settings
    reads: StoreReads
    clock: Clock
    viewer: Viewer


def current() -> PageContext:
    ctx = st.session_state.get(CONTEXT_KEY)
    if not isinstance(ctx, PageContext):
        # Only reachable by running a page file on its own, without the router.
        st.error("Open the dashboard through dashboard/app.py.")
        st.stop()
    return ctx


def signed_in() -> Viewer | None:
    viewer = st.session_state.get(VIEWER_KEY)
    return viewer if isinstance(viewer, Viewer) else None
