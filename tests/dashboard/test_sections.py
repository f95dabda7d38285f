"""Every report section as its users meet it (Streamlit AppTest) on a simulated market whose marts the
real pipeline built: per role, each page renders without an exception and shows what the one report
builder computes; the filters come from and go to the URL; a shop owner sees only their shops."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from streamlit.testing.v1 import AppTest

from api.core.settings import Settings, get_settings
from dashboard.page import delta_text
from dashboard.reports.builder import build_report
from dashboard.reports.filters import Filters, Scope
from dashboard.reports.model import Report
from dashboard.reports.render import cells
from dashboard.sections.sign_in import EMAIL_KEY, PASSWORD_KEY
from simulator.world import PASSWORD
from tests.pipelines.trained import TrainedMarket, trained_market  # noqa: F401 (a fixture)

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
START, END = date(2026, 1, 5), date(2026, 2, 1)
RANGE = Filters(START, END)
ADMIN = "admin.s7@example.com"
STAFF_PAGES = ["overview", "analytics", "blockchain", "ai", "security", "system"]
SHOP_PAGES = ["overview", "analytics", "blockchain", "ai"]
TITLES = {
    "overview": "Overview",
    "analytics": "Analytics",
    "blockchain": "Blockchain",
    "ai": "AI Insights",
    "security": "Security",
    "system": "System",
}


@dataclass(frozen=True)
class Seller:
    email: str
    shops: tuple[int, ...]


@pytest.fixture
def market(
    trained_market: TrainedMarket,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[Settings]:
    """The dashboard's settings (STORE_* variables, as in production) on the trained market."""
    settings = trained_market.settings
    monkeypatch.chdir(tmp_path)  # no stray .env file
    for name, value in {
        "STORE_ENVIRONMENT": "test",
        "STORE_DATABASE_URL": settings.database_url,
        "STORE_DATA_DIR": str(settings.data_dir),
        "STORE_WAREHOUSE_PATH": str(settings.warehouse_path),
        "STORE_JWT_SECRET": settings.secret,
        "STORE_AUTO_MIGRATE": "false",
        # The System and Security pages read the API's /metrics: nothing listens here, quickly.
        "STORE_PUBLIC_BASE_URL": "http://127.0.0.1:9",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("STORE_WAREHOUSE_URL", raising=False)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def _store_rows(settings: Settings, sql: str, **params: object) -> list[tuple[Any, ...]]:
    engine = create_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params)]
    finally:
        engine.dispose()


@pytest.fixture
def seller(market: Settings) -> Seller:
    """The owner of the shop with the most orders (a shop owner with something to see)."""
    ((owner, email),) = _store_rows(
        market,
        """SELECT s.owner_id, u.email FROM shops s JOIN users u ON u.id = s.owner_id
           JOIN orders o ON o.shop_id = s.id
           GROUP BY s.owner_id, u.email ORDER BY count(*) DESC, s.owner_id LIMIT 1""",
    )
    shops = tuple(int(r[0]) for r in _store_rows(market, "SELECT id FROM shops WHERE owner_id = :o", o=owner))
    return Seller(str(email), shops)


def signed_in(email: str, params: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120)
    for key, value in (params or RANGE.to_params()).items():
        at.query_params[key] = value
    at.run()
    at.text_input(key=EMAIL_KEY).input(email)
    at.text_input(key=PASSWORD_KEY).input(PASSWORD)
    at.button[0].click()
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def shown(at: AppTest) -> dict[str, tuple[str, str]]:
    return {m.label: (m.value, m.delta) for m in at.metric}


def expected(report: Report) -> dict[str, tuple[str, str]]:
    return {m.label: (cells.display(m.value, m.format) or "n/a", delta_text(m) or "") for m in report.metrics}


def check_page(at: AppTest, settings: Settings, slug: str, filters: Filters, scope: Scope) -> Report:
    """The page shows the report the builder makes for the same filters and reader."""
    assert not at.exception, [e.message for e in at.exception]
    assert [t.value for t in at.title] == [TITLES[slug]]
    report = build_report(settings, slug, filters, scope, now=datetime.now(UTC))
    page, built = shown(at), expected(report)
    # An age ("minutes since the last load") moves between the page's run and this one.
    for ages in [label for label in built if "since" in label.lower()]:
        assert ages in page
        page.pop(ages), built.pop(ages)
    assert page == built
    assert len(at.get("plotly_chart")) == len(report.charts)
    assert [b.proto.label for b in at.get("download_button")] == ["CSV", "Excel", "PDF"]
    # Every table with rows is on the page, with all its rows.
    frames = [d.value for d in at.dataframe]
    for table in report.tables:
        if table.rows:
            assert any(
                len(f) == len(table.rows) and str(f.columns[0]).startswith(table.columns[0].label)
                for f in frames
            ), table.name
    return report


def test_admin_sees_every_section_with_the_builders_numbers(market: Settings) -> None:
    at = signed_in(ADMIN)
    for slug in STAFF_PAGES:
        if slug != "overview":
            at.switch_page(f"sections/{slug}.py").run()
        report = check_page(at, market, slug, RANGE, None)
        assert report.subtitle and report.freshness

    # The overview's orders are the store's: every order placed in the range, counted independently.
    at.switch_page("sections/overview.py").run()
    ((placed,),) = _store_rows(
        market,
        "SELECT count(*) FROM orders WHERE created_at >= :s AND created_at < :e",
        s=str(START),
        e=str(END + timedelta(days=1)),
    )
    assert shown(at)["Orders"][0] == f"{placed:,}"


def test_shop_owner_sees_only_their_shops(market: Settings, seller: Seller) -> None:
    at = signed_in(seller.email)
    for slug in SHOP_PAGES:
        if slug != "overview":
            at.switch_page(f"sections/{slug}.py").run()
        filters = Filters(START, END, shop_id=seller.shops[0] if len(seller.shops) == 1 else None)
        report = check_page(at, market, slug, filters, seller.shops)
        for table in report.tables:
            if any(c.name == "shop_id" for c in table.columns):
                assert set(table.values("shop_id")) <= set(seller.shops), (slug, table.name)

    # A shared link naming another owner's shop shows theirs instead, and says so.
    owner = "SELECT owner_id FROM shops WHERE id = :s"
    (other,) = _store_rows(
        market, f"SELECT id FROM shops WHERE owner_id <> ({owner}) LIMIT 1", s=seller.shops[0]
    )
    at = signed_in(seller.email, {**RANGE.to_params(), "shop": str(other[0])})
    assert at.warning and f"Shop {other[0]} is not one you can see" in at.warning[0].value
    assert at.query_params.get("shop") != str(other[0])


def test_filters_come_from_and_go_to_the_url(market: Settings) -> None:
    at = signed_in(ADMIN)
    at.switch_page("sections/analytics.py").run()
    assert at.date_input(key="analytics_dates").value == (START, END)
    assert at.query_params["start"] == START.isoformat() and at.query_params["end"] == END.isoformat()

    # Drill down: the platform, then a shop: the URL names it and the numbers are the shop's.
    ((shop,),) = _store_rows(
        market, "SELECT shop_id FROM orders GROUP BY shop_id ORDER BY count(*) DESC LIMIT 1"
    )
    box = next(s for s in at.selectbox if s.label == "Shop")
    box.set_value(int(shop)).run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.query_params["shop"] == str(shop)
    check_page(at, market, "analytics", Filters(START, END, shop_id=int(shop)), None)

    # A shorter range through the date widget: the URL follows and so do the numbers.
    at.date_input(key="analytics_dates").set_value((END - timedelta(days=6), END)).run()
    assert at.query_params["start"] == (END - timedelta(days=6)).isoformat()
    check_page(at, market, "analytics", Filters(END - timedelta(days=6), END, shop_id=int(shop)), None)


def test_a_range_with_no_data_shows_zeros_not_errors(market: Settings) -> None:
    at = signed_in(ADMIN, {"start": "2030-01-01", "end": "2030-01-31"})
    for slug in STAFF_PAGES:
        if slug != "overview":
            at.switch_page(f"sections/{slug}.py").run()
        check_page(at, market, slug, Filters(date(2030, 1, 1), date(2030, 1, 31)), None)
    at.switch_page("sections/overview.py").run()
    assert shown(at)["Orders"][0] == "0"
