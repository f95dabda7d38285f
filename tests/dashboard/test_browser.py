"""The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright against a real
Streamlit server on the simulated market's store and warehouse.

It signs in as the admin, opens every section, changes a filter (the URL follows), downloads an export
and opens it, and saves a screenshot of each page (to STORE_SCREENSHOTS_DIR when set, else the test's
temporary directory)."""

from __future__ import annotations

import csv
import io
import os
import shutil
import socket
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dashboard import run
from simulator.world import PASSWORD
from tests.conftest import service_missing
from tests.pipelines.trained import TrainedMarket, trained_market  # noqa: F401 (a fixture)

CHROMIUM = os.environ.get("STORE_TEST_CHROMIUM", "/usr/bin/chromium")
ADMIN = "admin.s7@example.com"
RANGE = "start=2026-01-05&end=2026-02-01"
SECTIONS = ["Overview", "Analytics", "Blockchain", "AI Insights", "Security", "System", "Real-time"]
STARTUP_SECONDS = 60
STEP_MS = 60_000  # a cold page builds its report: generous on a busy 2-core machine


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def dashboard_url(trained_market: TrainedMarket, tmp_path: Path) -> Iterator[str]:  # noqa: F811
    settings = trained_market.settings
    port = _free_port()
    env = {
        **os.environ,
        "STORE_ENVIRONMENT": "test",
        "STORE_DATABASE_URL": settings.database_url,
        "STORE_DATA_DIR": str(settings.data_dir),
        "STORE_WAREHOUSE_PATH": str(settings.warehouse_path),
        "STORE_JWT_SECRET": settings.secret,
        "STORE_AUTO_MIGRATE": "false",
        "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none",
    }
    env.pop("STORE_WAREHOUSE_URL", None)
    proc = run.start(port=port, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert proc.poll() is None, f"streamlit exited with {proc.returncode}"
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the dashboard did not start"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def _settled(page: Any) -> None:
    """Wait until the page's script has finished and its charts are drawn."""
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0)
    charts = page.get_by_test_id("stPlotlyChart")
    if charts.count():
        # Charts below the fold are drawn as they scroll in; the first says the page has drawn.
        expect(charts.first.locator(".main-svg").first).to_be_attached()
    page.wait_for_timeout(1000)


def _browser_available() -> None:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        service_missing("Chromium", f"{CHROMIUM} not found (apt-get install chromium; `make setup` does it)")


def test_admin_opens_every_section_changes_a_filter_and_downloads(dashboard_url: str, tmp_path: Path) -> None:
    _browser_available()
    from playwright.sync_api import expect, sync_playwright

    shots = Path(os.environ.get("STORE_SCREENSHOTS_DIR") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        try:
            page = browser.new_context(
                viewport={"width": 1440, "height": 1000}, accept_downloads=True
            ).new_page()
            page.set_default_timeout(STEP_MS)
            # A shared link: the range survives signing in.
            page.goto(f"{dashboard_url}/?{RANGE}")
            page.get_by_role("textbox", name="Email").fill(ADMIN)
            page.get_by_role("textbox", name="Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("heading", name="Overview")).to_be_visible()
            expect(page.get_by_test_id("stMetric").first).to_be_visible()
            _settled(page)
            page.screenshot(path=shots / "overview.png", full_page=True)

            for title in SECTIONS[1:]:
                page.get_by_test_id("stSidebarNavLink").filter(has_text=title).first.click()
                expect(page.get_by_role("heading", name=title)).to_be_visible()
                expect(page.get_by_test_id("stException")).to_have_count(0)
                _settled(page)
                page.screenshot(path=shots / f"{title.lower().replace(' ', '-')}.png", full_page=True)

            # Analytics: pick a shop; the URL carries it, so the view can be shared.
            page.get_by_test_id("stSidebarNavLink").filter(has_text="Analytics").first.click()
            expect(page.get_by_role("heading", name="Analytics")).to_be_visible()
            assert "start=2026-01-05" in page.url and "end=2026-02-01" in page.url
            page.get_by_test_id("stSelectbox").filter(has_text="Shop").first.click()
            option = page.get_by_role("option").nth(1)
            shop_name = option.inner_text().strip()
            option.click()
            page.wait_for_url("**shop=*")
            # The report is the shop's now: its subtitle names it.
            expect(page.get_by_text(shop_name).first).to_be_visible()
            expect(page.get_by_test_id("stException")).to_have_count(0)
            _settled(page)
            page.screenshot(path=shots / "analytics-shop.png", full_page=True)

            with page.expect_download() as info:
                page.get_by_role("button", name="CSV").first.click()
            download = info.value
            saved = tmp_path / download.suggested_filename
            download.save_as(saved)
        finally:
            browser.close()

    shop_id = page.url.split("shop=")[1].split("&")[0]
    assert saved.name.startswith(f"analytics_2026-01-05_2026-02-01_shop{shop_id}")
    body = saved.read_bytes()
    if saved.suffix == ".zip":
        with zipfile.ZipFile(io.BytesIO(body)) as zf:
            tables = {n: list(csv.DictReader(io.StringIO(zf.read(n).decode()))) for n in zf.namelist()}
    else:
        tables = {saved.name: list(csv.DictReader(io.StringIO(body.decode())))}
    # Every row of the export is of the chosen shop.
    shop_columns = [rows for rows in tables.values() if rows and "shop_id" in rows[0]]
    assert shop_columns, f"no table with shops in {list(tables)}"
    assert {r["shop_id"] for rows in shop_columns for r in rows} == {shop_id}
    assert sorted(p.name for p in shots.glob("*.png")) == sorted(
        [f"{t.lower().replace(' ', '-')}.png" for t in SECTIONS] + ["analytics-shop.png"]
    )
