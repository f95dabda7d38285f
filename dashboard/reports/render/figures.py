"""A report's Chart as a plotly figure: what the dashboard's pages show and the PDF embeds.

plotly draws floats and naive times, so Decimals and UTC datetimes are converted here, for drawing
only; the exact values stay in the report's tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.reports.model import Cell, Chart, ChartKind, Report, Table
from dashboard.reports.render.cells import is_number, naive_utc

TEMPLATES = {"light": "plotly_white", "dark": "plotly_dark"}
EMPTY_TEXT = "No data for these filters"
BAND_FILL = {"light": "rgba(99, 110, 250, 0.18)", "dark": "rgba(140, 150, 255, 0.25)"}


def figure(report: Report, chart: Chart, theme: str = "light") -> go.Figure:
    if theme not in TEMPLATES:
        raise ValueError(f"unknown theme {theme!r}: one of {', '.join(TEMPLATES)}")
    table = report.table(chart.table)
    for name in chart_columns(chart):
        table.column(name)  # a spec naming a missing column fails here, with the table's name
    if not table.rows:
        fig = _empty()
    elif chart.kind is ChartKind.pie:
        fig = _pie(table, chart)
    else:
        fig = _xy(table, chart, theme)
    fig.update_layout(
        title={"text": chart.title},
        template=TEMPLATES[theme],
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        legend={"orientation": "h", "yanchor": "top", "y": -0.15},
        height=380,
    )
    return fig


def chart_columns(chart: Chart) -> list[str]:
    """Every column a chart reads."""
    series = [chart.series] if chart.series else []
    return [chart.x, *chart.y, *chart.y2, *(chart.band or ()), *series]


def _empty() -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(
        text=EMPTY_TEXT, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5, font={"size": 16}
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def _pie(table: Table, chart: Chart) -> go.Figure:
    # Repeated labels (a long table) are summed by plotly itself.
    labels = [_draw(v) for v in table.values(chart.x)]
    values = [_draw(v) for v in table.values(chart.y[0])]
    return go.Figure(go.Pie(labels=labels, values=values, name=chart.y[0], sort=False))


def _xy(table: Table, chart: Chart, theme: str) -> go.Figure:
    columns = [*chart.y, *(c for c in chart.y2 if c not in chart.y)]
    fig = make_subplots(specs=[[{"secondary_y": True}]]) if chart.y2 else go.Figure()
    labels = {c.name: c.label for c in table.columns}
    groups = _groups(table, chart.series)
    for group, rows in groups:
        x = [_draw(r[table.column(chart.x)]) for r in rows]
        if chart.kind is ChartKind.area and chart.band is not None:
            # The band first, so the line is drawn over it.
            lower, upper = ([_draw(r[table.column(c)]) for r in rows] for c in chart.band)
            band_name = f"{labels[chart.band[0]]} to {labels[chart.band[1]]}"
            fig.add_trace(
                go.Scatter(x=x, y=lower, mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip")
            )
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=upper,
                    mode="lines",
                    line={"width": 0},
                    fill="tonexty",
                    fillcolor=BAND_FILL[theme],
                    name=_name(group, band_name, only=False),
                )
            )
        for col in columns:
            y = [_draw(r[table.column(col)]) for r in rows]
            name = _name(group, labels[col], only=len(columns) == 1)
            secondary = col in chart.y2
            trace = _trace(chart.kind, x, y, name, secondary)
            if chart.y2:
                fig.add_trace(trace, secondary_y=secondary)
            else:
                fig.add_trace(trace)
    if chart.kind is ChartKind.stacked_bar:
        fig.update_layout(barmode="stack")
    elif chart.kind is ChartKind.bar:
        fig.update_layout(barmode="group")
    y_title = chart.y_title or (labels[chart.y[0]] if len(chart.y) == 1 else None)
    fig.update_xaxes(title_text=chart.x_title or labels[chart.x])
    if chart.y2:
        # make_subplots' secondary axis would not make room for its title by itself.
        fig.update_yaxes(automargin=True)
        fig.update_yaxes(title_text=y_title, secondary_y=False)
        fig.update_yaxes(title_text=", ".join(labels[c] for c in chart.y2), secondary_y=True)
    else:
        fig.update_yaxes(title_text=y_title)
    return fig


def _trace(kind: ChartKind, x: list[Any], y: list[Any], name: str, secondary: bool) -> go.Scatter | go.Bar:
    if kind in (ChartKind.bar, ChartKind.stacked_bar) and not secondary:
        return go.Bar(x=x, y=y, name=name)
    if kind is ChartKind.scatter:
        return go.Scatter(x=x, y=y, name=name, mode="markers")
    # Lines: line and area charts, and a bar chart's secondary axis (bars on two axes overlap).
    return go.Scatter(x=x, y=y, name=name, mode="lines+markers" if len(x) <= 40 else "lines")


def _groups(table: Table, series: str | None) -> list[tuple[str | None, list[Sequence[Cell]]]]:
    """The rows split by the series column, in order of first appearance; one group when wide."""
    if series is None:
        return [(None, list(table.rows))]
    i = table.column(series)
    groups: dict[str, list[Sequence[Cell]]] = {}
    for row in table.rows:
        groups.setdefault("" if row[i] is None else str(row[i]), []).append(row)
    return list(groups.items())


def _name(group: str | None, label: str, only: bool) -> str:
    """A trace's legend entry: the series value alone when it has a single column."""
    if group is None:
        return label
    return group if only else f"{group} · {label}"


def _draw(value: Cell) -> Any:
    if isinstance(value, bool) or not is_number(value):
        return naive_utc(value) if isinstance(value, datetime) else value
    return float(value)
