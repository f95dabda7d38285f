"""plotly figures of the dashboard, built from the store reads' rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.data.store_reads import DailyRow


def events_per_minute(points: Sequence[tuple[datetime, int]]) -> go.Figure:
    fig = go.Figure(
        go.Bar(
            x=[t for t, _ in points],
            y=[n for _, n in points],
            name="events",
            hovertemplate="%{x|%H:%M} UTC<br>%{y} events<extra></extra>",
        )
    )
    fig.update_layout(
        title="Events per minute, last hour (UTC)",
        xaxis_title=None,
        yaxis_title="events",
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        height=300,
    )
    return fig


def daily_orders_revenue(rows: Sequence[DailyRow]) -> go.Figure:
    """Orders as bars on the left axis, revenue per currency as lines on the right one."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    days = [r.day for r in rows]
    fig.add_trace(go.Bar(x=days, y=[r.orders for r in rows], name="orders"), secondary_y=False)
    currencies = sorted({c for r in rows for c in r.revenue})
    for currency in currencies:
        # plotly draws floats; the exact Decimals stay in the tables and KPIs.
        fig.add_trace(
            go.Scatter(
                x=days,
                y=[float(r.revenue.get(currency, 0)) for r in rows],
                name=f"revenue {currency}",
                mode="lines+markers",
            ),
            secondary_y=True,
        )
    fig.update_layout(
        title="Daily orders and revenue (UTC days)",
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        height=360,
        legend={"orientation": "h"},
    )
    fig.update_yaxes(title_text="orders", secondary_y=False)
    fig.update_yaxes(title_text="revenue", secondary_y=True)
    return fig
