"""Issue 7 targets: each dashboard page's server-side run on large marts, cold and warm, and a 30-day
shop PDF report with its charts.

    python -m bench.dashboard [--events 10000000] [--reuse]

The data: the bulk generator's store (bench/bulk_store.py, `--events` outbox events over 90 days),
loaded and modelled by the real refresh pipeline into a DuckDB warehouse (cached under
data/bench/dashboard-<N>/ while the store's fingerprint holds; `--reuse` skips the refresh when a
warehouse is there). Each page then runs as Streamlit runs it (AppTest: the whole page script, the
report build included, signed in as an admin): cold is the first run in a fresh process cache (the
report built from the warehouse), warm a rerun of the same view (the report from the cache keyed on
the published warehouse). Figures go to bench/results/dashboard.json."""

from __future__ import annotations

import os
import statistics
import time
from datetime import UTC, datetime, timedelta

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, text

from api.core.settings import Settings, get_settings
from bench.bulk_store import CACHE_DIR, ensure_store
from bench.figures import ROOT, save
from bench.pipeline import bench_settings
from bench.stores import Backend
from dashboard.reports.builder import build_report, sections
from dashboard.reports.filters import Filters
from dashboard.reports.render import ExportFormat, export
from pipelines.run import run_pipeline
from warehouse import marts

APP = ROOT / "dashboard" / "app.py"
RESULTS = ROOT / "bench" / "results" / "dashboard.json"
PAGES = ["overview", "analytics", "blockchain", "ai", "security", "system"]
WARM_RUNS = 5
PDF_RUNS = 3
console = Console()


def _prepare(events: int, reuse: bool) -> Settings:
    url = ensure_store(Backend.sqlite, events, console)
    work = CACHE_DIR / f"dashboard-{events}"
    work.mkdir(parents=True, exist_ok=True)
    settings = bench_settings(url, work)
    snapshot = work / "warehouse.read.duckdb"
    if reuse and snapshot.exists():
        console.print(f"reusing the warehouse in {work.relative_to(ROOT)}")
        return settings
    began = time.perf_counter()
    with console.status(f"refresh pipeline over {events:,} events (load, dbt build, checks, publish)…"):
        summary = run_pipeline(settings)
    if not summary.success:
        raise SystemExit(f"the refresh failed: {summary.failures}")
    console.print(f"refresh pipeline: {time.perf_counter() - began:.1f} s")
    return settings


BENCH_ADMIN = "bench-admin@example.com"


def _admin(settings: Settings) -> tuple[int, str]:
    """The bench's admin, made with the store's own services if missing (the bulk store has only
    buyers and sellers; an admin sees every section)."""
    from api.auth import service
    from api.auth.schemas import RegisterIn
    from api.db.engine import Store
    from api.outbox.service import Uow

    engine = create_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(text("SELECT id FROM users WHERE email = :e"), {"e": BENCH_ADMIN}).first()
    finally:
        engine.dispose()
    if row is not None:
        return int(row[0]), BENCH_ADMIN
    store = Store.from_settings(settings)
    try:
        with store.write() as db:
            uow = Uow(session=db, now=datetime.now(UTC))
            body = RegisterIn.model_validate(
                {"email": BENCH_ADMIN, "username": "bench_admin", "password": "bench-password-1"}
            )
            user = service.register(uow, settings, body)
            service.set_role(uow, user.id, "admin")
            uow.commit()
    finally:
        store.engine.dispose()
    return int(user.id), BENCH_ADMIN


def _data_range(settings: Settings) -> Filters:
    with marts.open_marts(settings) as reader:
        ((end,),) = reader.fetch('SELECT max("date") FROM marts.mart_platform_daily')
    return Filters(start=end - timedelta(days=29), end=end)


def _busiest_shop(settings: Settings, filters: Filters) -> int:
    with marts.open_marts(settings) as reader:
        ((shop,),) = reader.fetch(
            """SELECT shop_id FROM marts.mart_shop_daily WHERE "date" BETWEEN :s AND :e
               GROUP BY shop_id ORDER BY sum(orders) DESC, shop_id LIMIT 1""",
            {"s": filters.start, "e": filters.end},
        )
    return int(shop)


def page_runs(settings: Settings, filters: Filters) -> dict[str, dict[str, float]]:
    """Each page through AppTest: the first run (cold report) and reruns (warm)."""
    from streamlit.testing.v1 import AppTest

    from dashboard.access import Viewer
    from dashboard.context import VIEWER_KEY

    os.environ.update(
        {
            "STORE_ENVIRONMENT": "development",
            "STORE_DATABASE_URL": settings.database_url,
            "STORE_DATA_DIR": str(settings.data_dir),
            "STORE_WAREHOUSE_PATH": str(settings.warehouse_path),
            "STORE_JWT_SECRET": settings.secret,
            "STORE_AUTO_MIGRATE": "false",
        }
    )
    os.environ.pop("STORE_WAREHOUSE_URL", None)
    get_settings.cache_clear()
    user_id, email = _admin(settings)
    viewer = Viewer(user_id, email, "bench-admin", "admin")
    out: dict[str, dict[str, float]] = {}
    for slug in PAGES:
        at = AppTest.from_file(str(APP), default_timeout=600)
        at.session_state[VIEWER_KEY] = viewer  # signed in (sign-in itself is not what is measured)
        for key, value in filters.to_params().items():
            at.query_params[key] = value
        at.switch_page(f"sections/{slug}.py")
        began = time.perf_counter()
        at.run()
        cold = time.perf_counter() - began
        if at.exception:
            raise SystemExit(f"{slug}: {[e.message for e in at.exception]}")
        warm = []
        for _ in range(WARM_RUNS):
            began = time.perf_counter()
            at.run()
            warm.append(time.perf_counter() - began)
        out[slug] = {"cold_s": round(cold, 3), "warm_median_s": round(statistics.median(warm), 3)}
        console.print(f"  {slug:<11} cold {cold:6.2f} s   warm {statistics.median(warm):6.3f} s")
    return out


def pdf_runs(settings: Settings, filters: Filters) -> dict[str, float | int]:
    shop = _busiest_shop(settings, filters)
    shop_filters = Filters(start=filters.start, end=filters.end, shop_id=shop)
    times = []
    size = 0
    report = None
    for _ in range(PDF_RUNS):
        began = time.perf_counter()
        report = build_report(settings, "analytics", shop_filters, None, now=datetime.now(UTC))
        size = len(export(report, ExportFormat.pdf).content)
        times.append(time.perf_counter() - began)
    assert report is not None
    return {
        "shop_id": shop,
        "charts": len(report.charts),
        "first_s": round(times[0], 3),
        "median_s": round(statistics.median(times), 3),
        "bytes": size,
    }


def main(
    events: int = typer.Option(10_000_000, "--events", min=1000, help="events in the generated store"),
    reuse: bool = typer.Option(False, "--reuse", help="reuse the warehouse if one was built"),
) -> None:
    settings = _prepare(events, reuse)
    filters = _data_range(settings)
    console.print(f"pages over {filters.describe()}, {len(sections())} report sections")
    pages = page_runs(settings, filters)
    pdf = pdf_runs(settings, filters)
    table = Table(title=f"dashboard on {events:,} events")
    for col in ("page", "cold (s)", "warm (s)", "targets"):
        table.add_column(col)
    for slug, figures in pages.items():
        table.add_row(slug, f"{figures['cold_s']:.2f}", f"{figures['warm_median_s']:.3f}", "≤ 3 / ≤ 1")
    table.add_row(
        f"PDF, shop {pdf['shop_id']}, 30 days, {pdf['charts']} charts",
        f"{pdf['first_s']:.2f}",
        f"{pdf['median_s']:.2f}",
        "≤ 5",
    )
    console.print(table)
    save(RESULTS, {f"events_{events}": {"pages": pages, "pdf": pdf}}, console)


if __name__ == "__main__":
    typer.run(main)
