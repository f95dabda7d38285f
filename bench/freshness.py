"""Issue 5's freshness target: an order placed through the API shows in `mart_shop_daily` within 60 s,
with the refresh sensor running.

    python -m bench.freshness                 # 3 orders on a small simulated store (SQLite, DuckDB)
    python -m bench.freshness --orders 5

What runs is what a deployment runs: the API (`store api`) and `dagster dev` (webserver + daemon, which
ticks the sensor) as child processes on a fresh data dir, after a small backfill and a first pipeline
run. Each order is placed over HTTP; the clock stops when the dashboard's reader (the published read
snapshot) shows it in the mart. Figures go to bench/results/pipeline.json under "freshness".
"""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import httpx
import typer
from rich.console import Console
from rich.table import Table

from api.core.settings import Environment, Settings
from api.db.migrate import upgrade
from bench.figures import ROOT, save
from pipelines.run import run_pipeline
from simulator.demo import Ports, start_services
from simulator.engine import run_backfill
from simulator.profiles import get_profile
from warehouse.duckdb import WarehouseUnavailable, read_connection
from warehouse.settings import warehouse_location

console = Console()
RESULTS = ROOT / "bench" / "results" / "pipeline.json"
TARGET_SECONDS = 60.0
TIMEOUT_SECONDS = 300.0
app = typer.Typer(add_completion=False)


def _mart_orders(settings: Settings, shop_id: int, day: str) -> int:
    """The shop-day's orders as a reader of the warehouse sees them now (0 before the first snapshot)."""
    try:
        with read_connection(warehouse_location(settings)) as conn:
            rows = conn.execute(
                "SELECT orders FROM marts.mart_shop_daily WHERE shop_id = ? AND date = ?::DATE",
                [shop_id, day],
            ).fetchall()
    except (WarehouseUnavailable, duckdb.CatalogException):  # no snapshot or mart yet
        return 0
    return int(rows[0][0]) if rows else 0


def _buyer_and_products(api: httpx.Client) -> tuple[str, list[dict[str, Any]]]:
    """A new buyer (signed up through the API, as anyone would) and products in stock to order."""
    tag = uuid.uuid4().hex[:8]
    email, password = f"bench.{tag}@example.com", f"bench-{tag}-password"
    api.post(
        "/api/auth/register", json={"email": email, "password": password, "username": f"bench_{tag}"}
    ).raise_for_status()
    login = api.post("/api/auth/login", json={"email": email, "password": password})
    login.raise_for_status()
    listing = api.get("/api/products", params={"pageSize": 50}).json()["data"]
    products = [p for p in listing if p["stock"] > 5]
    if not products:
        raise SystemExit("no product in stock to order")
    return login.json()["data"]["accessToken"], products


@app.command()
def main(orders: int = typer.Option(3, min=1, help="Orders to place, one after the other.")) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-freshness-") as tmp:
        data = Path(tmp) / "data"
        settings = Settings(environment=Environment.development, data_dir=data, _env_file=None)
        upgrade(settings.database_url)
        console.print("backfilling a small store through the API ...")
        run_backfill(settings, get_profile("small"), seed=7)
        console.print("first pipeline run ...")
        first = run_pipeline(settings)
        if not first.success:
            raise SystemExit(f"the first pipeline run failed: {first.failures}")
        ports = Ports(api=18_400, dagster=18_401, dashboard=18_402)
        services = start_services(settings, ports)
        try:
            services.wait_ready(timeout=180)
            api = httpx.Client(base_url=f"http://127.0.0.1:{ports.api}", timeout=30)
            token, products = _buyer_and_products(api)
            figures: list[float] = []
            for i in range(orders):
                product = products[i % len(products)]
                shop_id = int(product["shopId"])
                day = datetime.now(UTC).date().isoformat()
                before = _mart_orders(settings, shop_id, day)
                placed = time.monotonic()
                r = api.post(
                    "/api/orders",
                    json={
                        "items": [{"productId": product["id"], "quantity": 1}],
                        "shippingAddress": "1 Bench Rd",
                    },
                    headers={"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex},
                )
                r.raise_for_status()
                while _mart_orders(settings, shop_id, day) <= before:
                    if time.monotonic() - placed > TIMEOUT_SECONDS:
                        raise SystemExit(
                            f"order {i + 1} not in mart_shop_daily after {TIMEOUT_SECONDS:.0f} s"
                        )
                    time.sleep(0.5)
                figures.append(time.monotonic() - placed)
                console.print(f"order {i + 1}: in mart_shop_daily after {figures[-1]:.1f} s")
        finally:
            services.stop()

    table = Table(title="Freshness: order placed → visible in mart_shop_daily (read snapshot)")
    for col in ("orders", "median s", "max s", "target s"):
        table.add_column(col, justify="right")
    table.add_row(
        str(len(figures)), f"{statistics.median(figures):.1f}", f"{max(figures):.1f}", f"{TARGET_SECONDS:.0f}"
    )
    console.print(table)
    save(
        RESULTS,
        {
            "freshness": {
                "orders": len(figures),
                "seconds": [round(f, 1) for f in figures],
                "target": TARGET_SECONDS,
            }
        },
        console,
    )


if __name__ == "__main__":
    app()
