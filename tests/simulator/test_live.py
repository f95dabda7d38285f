"""Live mode: real-time traffic over HTTP against a running server, on the marketplace a backfill planted.
Runs on SQLite and PostgreSQL (the `database_url` fixture)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

from api.core.settings import Settings
from simulator.engine import run_backfill
from simulator.live import LIVE_TRUTH_FILE, NoWorld, run_live
from simulator.profiles import get_profile


def _scalar(url: str, sql: str, **params: object) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql), params).scalar_one())
    finally:
        engine.dispose()


def test_live_traffic_acts_on_the_backfilled_marketplace(settings: Settings, server_url: str) -> None:
    start = datetime.now(UTC).date() - timedelta(days=2)
    run_backfill(settings, get_profile("small"), seed=11, days=2, start=start)
    url = settings.database_url
    events_before = _scalar(url, "SELECT count(*) FROM events")
    views_before = _scalar(url, "SELECT count(*) FROM product_views")

    stats = run_live(
        server_url,
        settings.data_dir,
        sessions_per_minute=900,
        concurrency=8,
        speed=0.001,
        duration=6,
        seed=3,
    )

    assert stats.sessions >= 5, stats
    assert stats.failed_sessions == 0, stats.last_error
    assert _scalar(url, "SELECT count(*) FROM events") > events_before
    assert _scalar(url, "SELECT count(*) FROM product_views") > views_before
    # The server's clock stamped the live events: none of them lies in the backfilled past.
    newest = _scalar(
        url,
        "SELECT count(*) FROM events WHERE id > :n AND occurred_at < :start",
        n=events_before,
        start=datetime.combine(date.today(), datetime.min.time(), UTC),
    )
    assert newest == 0
    # Whoever live mode invented is in its own truth file, and really in the store.
    path = settings.data_dir / LIVE_TRUTH_FILE
    for line in path.read_text().splitlines() if path.exists() else []:
        entry = json.loads(line)
        assert _scalar(url, "SELECT count(*) FROM users WHERE id = :id", id=entry["userId"]) == 1
        if "fraudulentOrder" in entry:
            buyer = _scalar(url, "SELECT buyer_id FROM orders WHERE id = :id", id=entry["fraudulentOrder"])
            assert buyer == entry["userId"]


def test_live_mode_needs_a_backfill_first(settings: Settings) -> None:
    with pytest.raises(NoWorld, match="run a backfill first"):
        run_live("http://127.0.0.1:9", settings.data_dir, duration=1)
