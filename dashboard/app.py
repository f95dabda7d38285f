"""The dashboard's entry point and router: `streamlit run dashboard/app.py` (or `dashboard.run.serve`).

Settings come from the store's one Settings object (STORE_* environment variables and .env); this is
the only place that reads them. A visitor sees the sign-in page until they sign in; then the
sections their role allows. Tests set STORE_* variables and clear `get_settings`' cache first."""

from __future__ import annotations

import importlib
import threading
from functools import partial
from pathlib import Path

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from api.core.clock import SystemClock
from api.core.settings import Settings, get_settings
from dashboard import access
from dashboard.context import CONTEXT_KEY, VIEWER_KEY, PageContext, signed_in
from dashboard.data.engine import read_only_engine
from dashboard.data.store_reads import StoreReads
from dashboard.reports.builder import allowed, sections
from dashboard.sections import sign_in

SECTIONS = Path(__file__).parent / "sections"
SIGNED_OUT_NOTICE = "signed_out_notice"


@st.cache_resource(show_spinner=False)
def store_reads(database_url: str, _settings: Settings) -> StoreReads:
    """One read-only engine per database for the whole process, shared by every session."""
    return StoreReads(read_only_engine(_settings))


@st.cache_resource(show_spinner=False)
def warm_imports() -> threading.Thread:
    """The System page reads Dagster's run history, and importing Dagster takes seconds: a fresh server
    imports it in the background at its first visit, not while someone waits on the System page."""
    thread = threading.Thread(
        target=importlib.import_module, args=("pipelines.run",), daemon=True, name="dashboard-warm-imports"
    )
    thread.start()
    return thread


def sign_out(notice: str | None = None) -> None:
    for key in (VIEWER_KEY, CONTEXT_KEY):
        st.session_state.pop(key, None)
    if notice:
        st.session_state[SIGNED_OUT_NOTICE] = notice


def sidebar(ctx: PageContext) -> None:
    viewer = ctx.viewer
    with st.sidebar:
        st.markdown(f"**{viewer.username}** · {viewer.role}")
        if viewer.shops:
            st.caption("Shops: " + ", ".join(s.name for s in viewer.shops))
        if st.button("Sign out", key="sign_out"):
            sign_out()
            st.rerun()


def main() -> None:
    st.set_page_config(page_title="Crypto Store dashboard", page_icon=":material/monitoring:", layout="wide")
    settings = get_settings()
    reads = store_reads(settings.database_url, settings)
    warm_imports()

    viewer = signed_in()
    if viewer is not None:
        viewer = access.refresh(reads, viewer)
        if viewer is None:
            sign_out("Your account can no longer open the dashboard: sign in again.")

    if viewer is None:
        notice = st.session_state.pop(SIGNED_OUT_NOTICE, None)
        if notice:
            st.warning(notice)
        page = st.Page(partial(sign_in.render, reads, settings), title="Sign in", url_path="sign-in")
        st.navigation([page], position="hidden").run()
        return

    ctx = PageContext(settings=settings, reads=reads, clock=SystemClock(), viewer=viewer)
    st.session_state[VIEWER_KEY] = viewer
    st.session_state[CONTEXT_KEY] = ctx
    sidebar(ctx)
    st.navigation(pages_for(viewer)).run()


# slug, title, icon; a report section the viewer may not read (builder.allowed) is not listed.
PAGES: tuple[tuple[str, str, str], ...] = (
    ("overview", "Overview", ":material/dashboard:"),
    ("analytics", "Analytics", ":material/query_stats:"),
    ("blockchain", "Blockchain", ":material/currency_bitcoin:"),
    ("ai", "AI Insights", ":material/psychology:"),
    ("security", "Security", ":material/shield:"),
    ("system", "System", ":material/dns:"),
    ("realtime", "Real-time", ":material/bolt:"),
)


def pages_for(viewer: access.Viewer) -> list[StreamlitPage]:
    """The sections this viewer may open, in the seed's order (Real-time last)."""
    reports = sections()
    return [
        st.Page(
            SECTIONS / f"{slug}.py",
            title=title,
            icon=icon,
            url_path=None if slug == "overview" else slug,
            default=slug == "overview",
        )
        for slug, title, icon in PAGES
        if slug not in reports or allowed(reports[slug], viewer.scope)
    ]


if __name__ == "__main__":  # Streamlit runs the entry script as __main__
    main()
