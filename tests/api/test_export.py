"""GET /api/export/{type} over a store simulated and loaded by the real pipeline
(tests/pipelines/trained.py): each format's file opens and holds the marts' numbers (checked with SQL
of its own on the published warehouse), the headers say what the file is and how fresh, a seller gets
only their own shops, and every refusal is in the API's error envelope."""

from __future__ import annotations

import csv
import io
import math
import re
import zipfile
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import openpyxl
import pytest
from pypdf import PdfReader
from sqlalchemy import func, select, text

from api.outbox.models import Event
from dashboard import formatting
from simulator.world import PASSWORD
from tests.helpers import Api, error
from tests.pipelines.simulated import store_api
from tests.pipelines.trained import START, TrainedMarket, private_copy, trained_market
from warehouse.settings import warehouse_location

__all__ = ["trained_market"]

ADMIN = "admin.s7@example.com"
FIRST, LAST = START, date(2026, 2, 1)  # the simulated four weeks
PERIOD = {"startDate": FIRST.isoformat(), "endDate": LAST.isoformat()}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HEADER_ROW = 3  # a table sheet: title, note, header, rows (dashboard/reports/render/xlsx.py)


def _headers(api: Api, email: str) -> dict[str, str]:
    tokens = api.login(email, PASSWORD)
    return {"Authorization": f"Bearer {tokens['accessToken']}"}


@pytest.fixture(scope="module")
def market(trained_market: TrainedMarket, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    # Signing in writes sessions and events: on a copy, so the shared market stays as built.
    settings = private_copy(trained_market.settings, tmp_path_factory.mktemp("export") / "market")
    with store_api(settings) as api:
        yield api


def _revenue_by_currency(trained: TrainedMarket, first: date, last: date) -> dict[str, Decimal]:
    """Revenue per currency over the days, straight from the published marts."""
    path = warehouse_location(trained.settings).snapshot
    conn = duckdb.connect(str(path), read_only=True)
    try:
        rows = conn.execute(
            "SELECT currency, sum(revenue) FROM marts.mart_revenue_daily "
            "WHERE date BETWEEN ? AND ? GROUP BY currency HAVING sum(revenue) > 0",
            [first, last],
        ).fetchall()
    finally:
        conn.close()
    return {str(c): Decimal(v) for c, v in rows}


def _sellers(api: Api) -> dict[str, list[int]]:
    """A seller's email -> the shops they own."""
    with api.store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT u.email, s.id FROM shops s JOIN users u ON u.id = s.owner_id "
                "WHERE u.role = 'seller' ORDER BY s.id"
            )
        )
        owned: dict[str, list[int]] = {}
        for email, shop_id in rows.tuples():
            owned.setdefault(str(email), []).append(int(shop_id))
    return owned


def _get(api: Api, kind: str, headers: dict[str, str], **params: Any) -> Any:
    return api.client.get(f"/api/export/{kind}", params=params, headers=headers)


def _csv_tables(content: bytes, media_type: str) -> dict[str, list[dict[str, str]]]:
    """The CSV export's tables by name: one .csv, or a .zip of one per table."""
    if media_type.startswith("application/zip"):
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            return {
                Path(n).stem: list(csv.DictReader(io.StringIO(archive.read(n).decode("utf-8-sig"))))
                for n in archive.namelist()
            }
    return {"table": list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))}


def _sheet_records(ws: Any) -> list[dict[str, Any]]:
    rows = list(ws.iter_rows(min_row=HEADER_ROW, values_only=True))
    if not rows:
        return []
    header = [str(h) if h is not None else "" for h in rows[0]]
    return [dict(zip(header, r, strict=False)) for r in rows[1:] if any(v is not None for v in r)]


def _filename(resp: Any) -> str:
    disposition = resp.headers["content-disposition"]
    found = re.fullmatch(r'attachment; filename="([^"]+)"', disposition)
    assert found, disposition
    return found.group(1)


def test_each_format_opens_and_holds_the_marts_revenue(market: Api, trained_market: TrainedMarket) -> None:
    admin = _headers(market, ADMIN)
    revenue = _revenue_by_currency(trained_market, FIRST, LAST)
    assert revenue, "the simulated store should have paid orders in its four weeks"
    with market.store.read() as db:
        events_before = db.scalar(select(func.count()).select_from(Event))

    # CSV: exact amounts, summed per currency over the days, equal the marts'.
    resp = _get(market, "csv", admin, section="overview", **PERIOD)
    assert resp.status_code == 200, resp.text
    media = resp.headers["content-type"]
    assert media.startswith(("text/csv", "application/zip"))
    name = _filename(resp)
    assert name.startswith("overview_2026-01-05_2026-02-01.")
    assert resp.headers["x-data-freshness"].startswith("Data loaded ")
    tables = _csv_tables(resp.content, media)
    totals: dict[str, Decimal] = {}
    for row in tables["daily_revenue"]:
        totals[row["currency"]] = totals.get(row["currency"], Decimal(0)) + Decimal(row["revenue"])
    assert {c: v for c, v in totals.items() if v} == revenue

    # Excel (both spellings): a workbook with a typed sheet per table.
    for kind in ("excel", "xlsx"):
        resp = _get(market, kind, admin, section="overview", **PERIOD)
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"] == XLSX
        assert _filename(resp) == "overview_2026-01-05_2026-02-01.xlsx"
        book = openpyxl.load_workbook(io.BytesIO(resp.content), read_only=True)
        sheet = _sheet_records(book["daily_revenue"])
        for currency, amount in revenue.items():
            got = sum(r["Revenue"] for r in sheet if r["Currency"] == currency)
            assert math.isclose(got, float(amount), rel_tol=1e-9), (currency, got, amount)
        book.close()

    # PDF: the title and each currency's revenue, exact, as the dashboard writes money.
    resp = _get(market, "pdf", admin, section="overview", **PERIOD)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/pdf"
    assert _filename(resp) == "overview_2026-01-05_2026-02-01.pdf"
    assert resp.headers["cache-control"] == "private, no-store"
    pdf_text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(resp.content)).pages)
    assert "Overview" in pdf_text
    for currency, amount in revenue.items():
        assert f"Revenue ({currency})" in pdf_text
        assert formatting.money(amount) in pdf_text, (currency, formatting.money(amount))

    # An export changes nothing: no event was recorded.
    with market.store.read() as db:
        assert db.scalar(select(func.count()).select_from(Event)) == events_before


def _shop_ids(tables: dict[str, list[dict[str, str]]]) -> set[int]:
    return {int(r["shop_id"]) for rows in tables.values() for r in rows if r.get("shop_id")}


def test_a_seller_exports_only_their_own_shops(market: Api) -> None:
    sellers = _sellers(market)
    email, owned = next((e, shops) for e, shops in sellers.items() if len(shops) == 1)
    others = [s for shops in sellers.values() for s in shops if s not in owned]
    seller = _headers(market, email)

    resp = _get(market, "csv", seller, section="analytics", **PERIOD)
    assert resp.status_code == 200, resp.text
    tables = _csv_tables(resp.content, resp.headers["content-type"])
    seen = _shop_ids(tables)
    assert seen, "the analytics export should list the seller's shop"
    assert seen <= set(owned)

    # The staff export of the same section lists every shop: the seller's is a real restriction.
    admin = _headers(market, ADMIN)
    everyone = _csv_tables(
        _get(market, "csv", admin, section="analytics", **PERIOD).content, resp.headers["content-type"]
    )
    assert set(others) & _shop_ids(everyone)

    resp = _get(market, "xlsx", seller, section="overview", **PERIOD)
    assert resp.status_code == 200, resp.text
    book = openpyxl.load_workbook(io.BytesIO(resp.content), read_only=True)
    ids = {
        int(r["Shop id"])
        for ws in book.worksheets
        if ws.title != "Summary"
        for r in _sheet_records(ws)
        if r.get("Shop id") is not None
    }
    book.close()
    assert ids <= set(owned)
    assert "_shop" in _filename(resp)  # one shop owned: the report is that shop's

    err = error(_get(market, "pdf", seller, section="overview", shopId=str(others[0]), **PERIOD), 403)
    assert err["code"] == "FORBIDDEN"
    for platform_only in ("security", "system"):
        error(_get(market, "csv", seller, section=platform_only, **PERIOD), 403, "FORBIDDEN")
    # Their own shop, named, is fine.
    assert _get(market, "csv", seller, section="overview", shopId=str(owned[0]), **PERIOD).status_code == 200


def test_refusals_are_in_the_api_error_format(market: Api, trained_market: TrainedMarket) -> None:
    admin = _headers(market, ADMIN)
    error(_get(market, "csv", {}, section="overview", **PERIOD), 401, "UNAUTHORIZED")
    buyer = market.user("buyer")
    error(_get(market, "csv", buyer.headers, **PERIOD), 403, "FORBIDDEN")

    err = error(_get(market, "csv", admin, startDate="2026-13-01"), 422, "VALIDATION_ERROR")
    assert err["details"][0]["field"] == "startDate"
    assert "startDate" in err["message"]
    err = error(_get(market, "csv", admin, startDate="2026-02-01", endDate="2026-01-01"), 422)
    assert err["details"][0]["field"] == "startDate"
    err = error(_get(market, "csv", admin, endDate="yesterday"), 422)
    assert err["details"][0]["field"] == "endDate"
    err = error(_get(market, "csv", admin, shopId="abc"), 422)
    assert err["details"][0]["field"] == "shopId"
    err = error(_get(market, "csv", admin, section="nowhere"), 422)
    assert err["details"][0]["field"] == "section"
    err = error(_get(market, "docx", admin), 422)
    assert err["details"][0] == {**err["details"][0], "field": "type", "in": "path"}
    error(_get(market, "csv", admin, shopId="999999", **PERIOD), 404, "NOT_FOUND")


def test_no_warehouse_is_the_warehouse_not_ready_error(trained_market: TrainedMarket, tmp_path: Path) -> None:
    market = private_copy(trained_market.settings, tmp_path / "market")
    settings = market.model_copy(update={"warehouse_path": tmp_path / "none.duckdb"})
    with store_api(settings) as api:
        resp = _get(api, "pdf", _headers(api, ADMIN), **PERIOD)
        err = error(resp, 503, "WAREHOUSE_UNAVAILABLE")
        assert "pipeline" in err["details"]["hint"]
        assert resp.headers["retry-after"] == "60"
