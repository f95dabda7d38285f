"""plotly figures of the dashboard, built from the store reads' rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import plotly.graph_objects as go


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
