"""What every report section's page does: the filter bar (kept in the URL), the section's report from
the cache, its headline numbers, charts and tables, and its downloads.

A section page file is a few lines: `section_page("analytics")`, with an optional function for what
only that page shows. The filters live in the URL (`?start=&end=&shop=&category=&product=`), so a
view can be shared; a value the reader may not use (another owner's shop, a typo) is dropped with a
notice rather than failing the page."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date

import pandas as pd
import streamlit as st

from dashboard.context import PageContext, current
from dashboard.data import reports as cached
from dashboard.reports.builder import section
from dashboard.reports.filters import Filters, OutOfScope, from_params
from dashboard.reports.model import Column, Format, Metric, Report, Table
from dashboard.reports.render import ExportFormat, base_filename, cells, export
from dashboard.reports.render.figures import figure
from warehouse.duckdb import WarehouseUnavailable

PageExtra = Callable[[PageContext, Report, Filters], None]
METRICS_PER_ROW = 5
ALL = "All"
# Tables whose rows are choices of the drill-down: selecting a row narrows the filters to it.
DRILL_TABLES = {"shops": "shop", "products": "product"}
PARAM_KEYS = ("start", "end", "shop", "category", "product")
LAST_FILTERS_KEY = "dashboard_last_filters"


def _today(ctx: PageContext) -> date:
    return ctx.clock.now().astimezone(UTC).date()


def _set_params(filters: Filters) -> None:
    wanted = filters.to_params()
    for key in PARAM_KEYS:
        if key in wanted:
            if st.query_params.get(key) != wanted[key]:
                st.query_params[key] = wanted[key]
        elif key in st.query_params:
            del st.query_params[key]


def filter_bar(ctx: PageContext, slug: str, *, shop: bool = True, category: bool = True) -> Filters:
    """The filters of the URL, shown as widgets; a change to a widget rewrites the URL."""
    viewer = ctx.viewer
    params = st.query_params.to_dict()
    # Moving to another section drops the URL's query: the filters follow the viewer there.
    if not any(k in params for k in PARAM_KEYS):
        params = st.session_state.get(LAST_FILTERS_KEY, {})
    filters = from_params(params, _today(ctx), strict=False)
    shops = ctx.reads.shop_choices(viewer.scope)
    shop_ids = [s.id for s in shops]
    if filters.shop_id is not None and filters.shop_id not in shop_ids:
        st.warning(f"Shop {filters.shop_id} is not one you can see: showing all of yours instead.")
        filters = replace(filters, shop_id=None, product_id=None)

    cols = st.columns([2, 2, 2, 2]) if shop else st.columns([2, 6])
    picked = cols[0].date_input(
        "Dates (UTC, both included)",
        value=(filters.start, filters.end),
        key=f"{slug}_dates",
        format="YYYY-MM-DD",
    )
    # While a range is half picked the widget holds one day: keep the URL's range meanwhile.
    if isinstance(picked, tuple) and len(picked) == 2:
        filters = replace(filters, start=picked[0], end=picked[1])

    if shop and shops:
        names = {s.id: s.name for s in shops}
        # One's own single shop is the only choice; others choose among theirs or all.
        options: list[int | None] = [*shop_ids]
        if viewer.sees_platform or len(shops) > 1:
            options.insert(0, None)
        chosen = cols[1].selectbox(
            "Shop",
            options,
            index=options.index(filters.shop_id) if filters.shop_id in options else 0,
            format_func=lambda i: ALL if i is None else names[i],
            key=f"{slug}_shop_{filters.shop_id}",
        )
        if chosen != filters.shop_id:
            filters = replace(filters, shop_id=chosen, product_id=None)
    if category:
        cats = ctx.reads.category_choices()
        cat_names = {c.id: c.name for c in cats}
        cat_options: list[int | None] = [None, *cat_names]
        chosen_cat = cols[2 if shop else 1].selectbox(
            "Category",
            cat_options,
            index=cat_options.index(filters.category_id) if filters.category_id in cat_options else 0,
            format_func=lambda i: ALL if i is None else cat_names[i],
            key=f"{slug}_category_{filters.category_id}",
        )
        if chosen_cat != filters.category_id:
            filters = replace(filters, category_id=chosen_cat, product_id=None)
    if shop and filters.shop_id is not None:
        products = ctx.reads.product_choices(filters.shop_id, filters.category_id)
        prod_names = {p.id: p.name for p in products}
        prod_options: list[int | None] = [None, *prod_names]
        chosen_prod = cols[3].selectbox(
            "Product",
            prod_options,
            index=prod_options.index(filters.product_id) if filters.product_id in prod_options else 0,
            format_func=lambda i: ALL if i is None else prod_names[i],
            key=f"{slug}_product_{filters.shop_id}_{filters.product_id}",
        )
        filters = replace(filters, product_id=chosen_prod)
    elif filters.product_id is not None:
        filters = replace(filters, product_id=None)
    _set_params(filters)
    st.session_state[LAST_FILTERS_KEY] = filters.to_params()
    return filters


def delta_text(m: Metric) -> str | None:
    """A ratio's change in percentage points (a relative change of a rate misleads); others in %."""
    if m.format is Format.ratio:
        if m.value is None or m.previous is None:
            return None
        return f"{(float(m.value) - float(m.previous)) * 100:+.1f} pp"  # type: ignore[arg-type]
    return cells.change(m)


def show_metrics(metrics: tuple[Metric, ...]) -> None:
    for start in range(0, len(metrics), METRICS_PER_ROW):
        row = metrics[start : start + METRICS_PER_ROW]
        cols = st.columns(METRICS_PER_ROW)
        for col, m in zip(cols, row, strict=False):
            col.metric(m.label, cells.display(m.value, m.format) or "n/a", delta_text(m), help=m.help)


def frame(t: Table) -> pd.DataFrame:
    """The table for st.dataframe: exact money as text, everything else typed so it sorts."""

    def cell(c: Column, v: object) -> object:
        if v is None:
            return None
        if c.format is Format.money:
            return cells.display(v, c.format)  # type: ignore[arg-type]
        if c.format is Format.ratio:
            return round(float(v) * 100, 2)  # type: ignore[arg-type]
        return v

    return pd.DataFrame(
        [[cell(c, v) for c, v in zip(t.columns, r, strict=True)] for r in t.rows],
        columns=_labels(t),
    )


def _labels(t: Table) -> list[str]:
    """Column headers, unique (a dataframe needs it): a repeated label gets its column's name."""
    labels = [c.label + (" (%)" if c.format is Format.ratio else "") for c in t.columns]
    return [
        f"{label} [{c.name}]" if labels.count(label) > 1 else label
        for label, c in zip(labels, t.columns, strict=True)
    ]


def show_table(t: Table, filters: Filters) -> None:
    st.subheader(t.title)
    if t.note:
        st.caption(t.note)
    if not t.rows:
        st.caption("No rows for these filters.")
        return
    drill = DRILL_TABLES.get(t.name)
    if drill is None:
        st.dataframe(frame(t), hide_index=True, key=f"table_{t.name}")
        return
    # Drill-down: picking a shop (or product) row narrows the whole page to it.
    state = st.dataframe(
        frame(t), hide_index=True, key=f"table_{t.name}", on_select="rerun", selection_mode="single-row"
    )
    rows = state.selection.rows if state is not None else []
    if rows:
        picked = int(str(t.rows[rows[0]][t.column(f"{drill}_id")]))
        if drill == "shop":
            narrowed = replace(filters, shop_id=picked, product_id=None)
        else:
            narrowed = replace(filters, product_id=picked)
        _set_params(narrowed)
        st.rerun()
    st.caption(f"Select a row to open that {drill}.")


def downloads(report: Report) -> None:
    """CSV, Excel and PDF of exactly what the page shows, rendered when clicked (not on every rerun)."""
    stem = base_filename(report)
    csv_ext, csv_mime = (".zip", "application/zip") if len(report.tables) > 1 else (".csv", "text/csv")
    files = [
        (ExportFormat.csv, "CSV", stem + csv_ext, csv_mime),
        (
            ExportFormat.excel,
            "Excel",
            stem + ".xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        (ExportFormat.pdf, "PDF", stem + ".pdf", "application/pdf"),
    ]
    row = st.container(horizontal=True)
    for fmt, label, name, mime in files:
        row.download_button(
            f"{label}",
            data=lambda fmt=fmt: export(report, fmt).content,  # type: ignore[misc]
            file_name=name,
            mime=mime,
            key=f"download_{report.section}_{fmt.value}",
            icon=":material/download:",
            on_click="ignore",
        )


def section_page(slug: str, extra: PageExtra | None = None, *, shop_filter: bool = True) -> None:
    ctx = current()
    spec = section(slug)
    viewer = ctx.viewer
    st.title(spec.title)
    if spec.platform_only and not viewer.sees_platform:
        st.error("This section is for analysts and admins.")
        return
    if not viewer.sees_platform and not viewer.shops:
        st.info("You do not own a shop yet: once you open one, its numbers show here.")
        return
    filters = filter_bar(ctx, slug, shop=shop_filter)
    db = ctx.reads.key
    published = cached.identity(ctx.settings, db)
    if published is None:
        st.warning("The warehouse is not built yet: run the pipeline (`store pipeline`) and reload.")
        return
    try:
        report = cached.report(ctx.settings, db, published, slug, filters, viewer.scope)
    except OutOfScope as exc:
        st.error(str(exc))
        return
    except WarehouseUnavailable as exc:
        st.warning(f"The warehouse cannot be read right now: {exc}")
        return
    st.caption(report.subtitle)
    st.caption(report.freshness)
    downloads(report)
    if report.metrics:
        show_metrics(report.metrics)
    for note in report.notes:
        st.info(note)
    if extra is not None:
        extra(ctx, report, filters)
    for chart in report.charts:
        st.plotly_chart(figure(report, chart), key=f"chart_{chart.key}")
    for t in report.tables:
        show_table(t, filters)
