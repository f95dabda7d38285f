"""Latency of the cached product detail (`GET /api/products/{id}`), with Redis and without.

    .venv/bin/python -m bench.cache_detail                           # SQLite, 5,000 products, 20 s per mode
    .venv/bin/python -m bench.cache_detail --backend both --seconds 30 --reuse

For each database: a bench store of its own (data/bench/cache_bench.db, or `store_cache_bench` on the local
PostgreSQL), migrated and filled by bench/bulk_load.py (a few thousand products). Then, for each cache
mode, uvicorn serves the real app on 127.0.0.1 (bench/server.py, production settings from the
environment) with:

- `redis`: STORE_REDIS_URL set (its own Redis db, default 14; this run's keys are removed first),
- `in-process`: no Redis, the cache is a dict in the worker,
- `off`: no cache at all (cache_detail_seconds=0), for reference.

Every product's detail is read once (warm-up, which fills the cache), then a fixed rate is offered open
loop (bench/loadgen.py: latency from the scheduled send time, no coordinated omission) over a mixture of
ids: 80% of requests on the most popular 20% of products, the rest on any product. The table shows
p50/p95/p99/max, errors and the hit ratio the server reports (GET /api/cache/stats). Target: p99 <= 5 ms
at 200 requests/s offered. Figures go to bench/results/cache_detail.json.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from redis import Redis
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, text

from bench import bulk_load, figures, loadgen
from bench.api_latency import (
    HOST,
    ROOT,
    Server,
    _display,
    _pg_reachable,
    at_head,
    background_load,
    wait_for_quiet,
)
from bench.server import BARE_PATH
from bench.stores import PG_ADMIN_URL, Backend, BenchStore

RESULTS = ROOT / "bench" / "results" / "cache_detail.json"
SQLITE_PATH = ROOT / "data" / "bench" / "cache_bench.db"
PG_DATABASE = "store_cache_bench"
CACHE_PREFIX = "store:cache:"  # the app's (api/core/cache.py DEFAULT_PREFIX)
TARGET_P99_MS = 5.0

console = Console(width=None if sys.stdout.isatty() else 150)
cli = typer.Typer(add_completion=False, help=__doc__)


MODES = ("redis", "in-process", "off")


STORE = BenchStore(SQLITE_PATH, PG_DATABASE)


def database_url(backend: Backend) -> str:
    return STORE.url(backend)


def prepare(
    backend: Backend, spec: bulk_load.BulkSpec, reuse: bool, store: BenchStore | None = None
) -> dict[str, Any]:
    """A bench store holding `spec` (this bench's own unless `store` names another), reused if asked."""
    from api.db.migrate import upgrade

    store = store or STORE
    url = store.url(backend)
    if backend is Backend.postgres and not _pg_reachable():
        raise RuntimeError(f"PostgreSQL is not reachable at {_display(PG_ADMIN_URL)}")
    if reuse and at_head(url) and bulk_load.has_data(url, spec):
        console.print(f"[green]reusing[/] {_display(url)}")
        return {"reused": True}
    started = time.perf_counter()
    store.recreate(backend)
    upgrade(url)
    report = bulk_load.load(url, spec, console)
    return {"reused": False, "seconds": round(time.perf_counter() - started, 1), "rows": report.rows}


def catalogue(url: str) -> tuple[list[int], str]:
    """Active product ids, and the email of an active admin (bulk users share bulk_load.PASSWORD)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            ids = [
                int(r[0]) for r in conn.execute(text("SELECT id FROM products WHERE is_active ORDER BY id"))
            ]
            email: str = conn.execute(
                text("SELECT email FROM users WHERE role = 'admin' AND is_active ORDER BY id LIMIT 1")
            ).scalar_one()
    finally:
        engine.dispose()
    return ids, str(email)


def drop_namespace(redis_url: str) -> int:
    client = Redis.from_url(redis_url)
    try:
        removed = 0
        batch: list[bytes] = []
        for key in client.scan_iter(match=CACHE_PREFIX + "*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                removed += int(client.unlink(*batch))
                batch = []
        if batch:
            removed += int(client.unlink(*batch))
        return removed
    finally:
        client.close()


class CacheServer(Server):
    """bench.api_latency's server with the cache settings of one mode in its environment."""

    def __init__(self, url: str, workers: int, extra_env: dict[str, str]) -> None:
        super().__init__(url, workers)
        self.extra_env = extra_env

    def start(self, timeout: float = 60.0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STORE_")}
        env.update(
            {
                "STORE_DATABASE_URL": self.url,
                "STORE_ENVIRONMENT": "production",
                "STORE_JWT_SECRET": secrets.token_hex(24),
                "STORE_LOG_LEVEL": "WARNING",
                "STORE_AUTO_MIGRATE": "false",
                "STORE_SESSION_SWEEP_SECONDS": "0",
                "PYTHONDONTWRITEBYTECODE": "1",
                **self.extra_env,
            }
        )
        cmd = [sys.executable, "-m", "uvicorn", "bench.server:create_app", "--factory", "--host", HOST,
               "--port", str(self.port), "--workers", str(self.workers), "--log-level", "warning",
               "--no-access-log"]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {self.proc.returncode}:\n{self.tail()}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"http://{HOST}:{self.port}{BARE_PATH}", timeout=2) as resp,
            ):
                if resp.status == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"uvicorn did not answer within {timeout:.0f} s:\n{self.tail()}")

    def __enter__(self) -> CacheServer:
        self.start()
        return self

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(
            f"http://{HOST}:{self.port}{path}",
            data=json.dumps(body).encode() if body is not None else None,
            headers=headers,
            method=method,
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())["data"]


def mixture(ids: list[int], seed: int) -> Any:
    """Paths of product details: 80% on the hottest 20% of products, 20% on any."""
    rng = random.Random(seed)
    hot = rng.sample(ids, max(1, len(ids) // 5))

    def next_path() -> str:
        pid = rng.choice(hot) if rng.random() < 0.8 else rng.choice(ids)
        return f"/api/products/{pid}"

    return next_path


def run_mode(
    mode: str, url: str, ids: list[int], admin_email: str, *, rate: float, seconds: float, redis_url: str,
    workers: int, detail_ttl: float, quiet_wait: float,
) -> dict[str, Any]:  # fmt: skip
    env: dict[str, str] = {"STORE_CACHE_DETAIL_SECONDS": str(detail_ttl if mode != "off" else 0)}
    if mode == "redis":
        env["STORE_REDIS_URL"] = redis_url
        removed = drop_namespace(redis_url)
        if removed:
            console.print(f"  removed {removed} keys of an earlier run from {redis_url}")
    with CacheServer(url, workers, env) as server:
        pid = server.proc.pid if server.proc else None
        token = server.call(
            "POST", "/api/auth/login", {"email": admin_email, "password": bulk_load.PASSWORD}
        )["accessToken"]
        # Warm-up: every product once (fills the cache), then a short run of the measured mixture.
        order = iter(ids)
        warm = loadgen.run(
            loadgen.open_loop(HOST, server.port, "warm-up", lambda: f"/api/products/{next(order)}",
                              rate=2 * rate, seconds=len(ids) / (2 * rate))
        )  # fmt: skip
        server.drain()
        background = wait_for_quiet(quiet_wait) if quiet_wait else background_load(1.0)
        before = server.call("GET", "/api/cache/stats", token=token)
        result = loadgen.run(
            loadgen.open_loop(HOST, server.port, f"detail/{mode}", mixture(ids, seed=11), rate=rate,
                              seconds=seconds, server_pid=pid)
        )  # fmt: skip
        after = server.call("GET", "/api/cache/stats", token=token)
    summary: dict[str, Any] = result.summary()
    hits = after["byKind"]["product"]["hits"] - before["byKind"]["product"]["hits"]
    misses = after["byKind"]["product"]["misses"] - before["byKind"]["product"]["misses"]
    summary |= {
        "mode": mode,
        "warmupErrors": warm.errors,
        "backgroundBusyBeforePercent": background,
        "hits": hits,
        "misses": misses,
        "hitRatio": round(hits / (hits + misses), 4) if hits + misses else None,
        "cacheBackend": after["backend"],
        "cacheErrors": after["errors"],
        "cacheFallbacks": after["fallbacks"],
        "cacheKeys": after["keys"],
        "cacheMemory": after["memory"],
        "pass": summary["errors"] == 0 and summary["p99Ms"] <= TARGET_P99_MS,
    }
    for sample in result.error_samples[:3]:
        console.print(f"    [red]{sample}[/]")
    return summary


def print_table(backend: str, products: int, rate: float, seconds: float, runs: list[dict[str, Any]]) -> None:
    table = Table(
        title=f"GET /api/products/{{id}} on {backend}: {rate:.0f} req/s open loop for {seconds:.0f} s, "
        f"{products:,} products"
    )
    for col in ("cache", "requests", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors", "hit ratio",
                "server CPU", "other CPU", "target", "result"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("cache", "target") else "right")
    for r in runs:
        graded = r["mode"] != "off"
        table.add_row(
            r["mode"],
            str(r["requests"]),
            f"{r['p50Ms']:.2f}",
            f"{r['p95Ms']:.2f}",
            f"{r['p99Ms']:.2f}",
            f"{r['maxMs']:.2f}",
            str(r["errors"]),
            "-" if r["hitRatio"] is None else f"{100 * r['hitRatio']:.1f}%",
            "-" if r["serverCpuPercent"] is None else f"{r['serverCpuPercent']:.0f}%",
            "-" if r["otherCpuPercent"] is None else f"{r['otherCpuPercent']:.0f}%",
            f"p99 ≤ {TARGET_P99_MS:.0f} ms, 0 errors" if graded else "(reference)",
            ("[green]pass[/]" if r["pass"] else "[red]FAIL[/]") if graded else "",
        )
    table.caption = (
        "other CPU: CPU that neither the server nor the load generator used during the run (other work on "
        "the machine), in % of one core"
    )
    console.print(table)


@cli.command()
def main(
    backend: Annotated[Backend, typer.Option(help="Database(s) to run on.")] = Backend.sqlite,
    rate: Annotated[float, typer.Option(min=1, help="Requests per second offered, open loop.")] = 200,
    seconds: Annotated[float, typer.Option(min=1, help="Length of each mode's measured run.")] = 20,
    products: Annotated[int, typer.Option(min=10)] = 5_000,
    modes: Annotated[str, typer.Option(help="Comma-separated: redis, in-process, off.")] = ",".join(MODES),
    redis_url: Annotated[str, typer.Option(help="Redis of the `redis` mode.")] = "redis://127.0.0.1:6379/14",
    detail_ttl: Annotated[float, typer.Option(help="cache_detail_seconds of the server.")] = 300.0,
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes.")] = 1,
    reuse: Annotated[bool, typer.Option(help="Keep a bench store that already holds this data set.")] = False,
    quiet_wait: Annotated[
        float, typer.Option(min=0, help="Wait up to this many seconds for other work to leave the cores.")
    ] = 0,
) -> None:
    spec = bulk_load.BulkSpec(users=1_000, shops=100, products=products, views=products * 4, seed=42)
    chosen = [m.strip() for m in modes.split(",") if m.strip()]
    unknown = set(chosen) - set(MODES)
    if unknown:
        raise typer.BadParameter(f"unknown modes {sorted(unknown)}; choose from {MODES}")
    backends = [Backend.sqlite, Backend.postgres] if backend is Backend.both else [backend]
    results: dict[str, Any] = {}
    failed = False
    for b in backends:
        console.rule(f"[bold]{b.value}")
        prep = prepare(b, spec, reuse)
        url = database_url(b)
        ids, admin_email = catalogue(url)
        runs = []
        for mode in chosen:
            console.print(f"[bold]{mode}[/]: warm-up over {len(ids):,} products, then {rate:.0f} req/s")
            r = run_mode(mode, url, ids, admin_email, rate=rate, seconds=seconds, redis_url=redis_url,
                         workers=workers, detail_ttl=detail_ttl, quiet_wait=quiet_wait)  # fmt: skip
            console.print(
                f"  p50 {r['p50Ms']} ms, p95 {r['p95Ms']} ms, p99 {r['p99Ms']} ms, {r['errors']} errors, "
                f"hit ratio {r['hitRatio']}"
            )
            runs.append(r)
            failed |= mode != "off" and not r["pass"]
        print_table(b.value, len(ids), rate, seconds, runs)
        results[b.value] = {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "database": _display(url),
            "prepare": prep,
            "rate": rate,
            "seconds": seconds,
            "workers": workers,
            "detailTtlSeconds": detail_ttl,
            "cpus": os.cpu_count(),
            "targetP99Ms": TARGET_P99_MS,
            "runs": runs,
        }
    figures.save(RESULTS, results, console)
    if failed:
        raise typer.Exit(1)


if __name__ == "__main__":
    cli()
