"""Issue 4's targets: backfill throughput through the in-process API, the demo profile's data time, and
the whole main job from a fresh clone with an empty package cache.

    python -m bench.simulator                          # throughput (small, SQLite) + the demo profile
    python -m bench.simulator --backend both           # ... on SQLite and PostgreSQL
    python -m bench.simulator --skip-demo              # throughput only (about a minute)
    python -m bench.simulator --main-job               # also: git clone + `make demo` until the URLs print

Throughput is requests/s over the whole backfill (sign-ups, logins, browsing, orders and their moves,
chats, calls, reviews), with each request's latency broken down by route. Figures go to
bench/results/simulator.json.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from api.core.settings import Environment, Settings
from api.db.migrate import upgrade
from bench.figures import ROOT, save
from bench.stores import Backend, BenchStore
from simulator import client as sim_client
from simulator.engine import BackfillResult, run_backfill
from simulator.profiles import get_profile

console = Console()
RESULTS = ROOT / "bench" / "results" / "simulator.json"
TARGET_RPS = 1500
TARGET_DEMO_SECONDS = 180
TARGET_MAIN_JOB_SECONDS = 480
app = typer.Typer(add_completion=False)


class _Timed:
    """Wraps the simulator's client to time every request by route (ids folded into {id})."""

    def __init__(self) -> None:
        self.by_route: dict[str, list[float]] = defaultdict(list)
        self._orig = sim_client.StoreClient.send

    def __enter__(self) -> _Timed:
        orig, by_route = self._orig, self.by_route

        async def send(client: Any, method: str, path: str, **kwargs: Any) -> Any:
            t = time.perf_counter()
            out = await orig(client, method, path, **kwargs)
            by_route[f"{method} {re.sub(r'/[0-9]+', '/{id}', path)}"].append(time.perf_counter() - t)
            return out

        sim_client.StoreClient.send = send  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *_: object) -> None:
        sim_client.StoreClient.send = self._orig  # type: ignore[method-assign]


def _settings(url: str, data_dir: Path) -> Settings:
    return Settings(
        environment=Environment.development,
        database_url=url,
        data_dir=data_dir,
        redis_url=None,
        auto_migrate=False,
        _env_file=None,
    )


def _backfill(
    backend: Backend, profile: str, days: int | None, work: Path, timed: bool
) -> tuple[BackfillResult, dict[str, list[float]]]:
    store = BenchStore(work / f"sim-{profile}.db", f"store_bench_sim_{profile}")
    store.recreate(backend)
    url = store.url(backend)
    upgrade(url)
    settings = _settings(url, work / f"data-{backend}-{profile}")
    prof = get_profile(profile)
    n = days or prof.days
    with console.status(f"{backend}: backfilling {profile} ({n} days)…"):
        if timed:
            with _Timed() as t:
                result = run_backfill(settings, prof, seed=7, days=n)
            return result, t.by_route
        return run_backfill(settings, prof, seed=7, days=n), {}


def _route_table(by_route: dict[str, list[float]], title: str) -> Table:
    table = Table(title=title)
    for col in ("route", "n", "p50 ms", "p99 ms", "share"):
        table.add_column(col, justify="left" if col == "route" else "right")
    total = sum(sum(v) for v in by_route.values()) or 1.0
    for route, times in sorted(by_route.items(), key=lambda kv: -sum(kv[1]))[:15]:
        times.sort()
        p50, p99 = (times[min(len(times) - 1, int(q * len(times)))] * 1000 for q in (0.5, 0.99))
        table.add_row(route, str(len(times)), f"{p50:.2f}", f"{p99:.2f}", f"{100 * sum(times) / total:.1f}%")
    return table


def _main_job(work: Path) -> dict[str, Any]:
    """git clone, then `make demo` with an empty uv cache, until it prints its URLs; then Ctrl-C."""
    clone = work / "clone"
    shutil.rmtree(clone, ignore_errors=True)
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    # The clone's own defaults (data/ inside it), and no package cache to draw on.
    # Nor this checkout's virtualenv: the bench itself runs inside it (uv run puts it first on PATH).
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("STORE_", "UV_", "VIRTUAL_ENV", "DAGSTER_"))
    }
    venv = str(ROOT / ".venv")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(venv))
    env["UV_CACHE_DIR"] = str(work / "uv-cache-empty")
    shutil.rmtree(work / "uv-cache-empty", ignore_errors=True)
    began = time.monotonic()
    proc = subprocess.Popen(
        ["make", "demo", "DEMO_ARGS=--api-port 8190 --dagster-port 3190 --dashboard-port 8590"],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    up = None
    try:
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                up = time.monotonic() - began
                break
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    log = RESULTS.with_name("main_job.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("\n".join(lines) + "\n")
    if up is None:
        console.print("\n".join(lines[-40:]))
        raise RuntimeError("make demo never brought the URLs up")
    return {"seconds_to_urls": round(up, 1), "target_seconds": TARGET_MAIN_JOB_SECONDS}


@app.command()
def main(
    backend: Backend = Backend.sqlite,
    skip_demo: bool = typer.Option(False, "--skip-demo", help="Only the small-profile throughput"),
    main_job: bool = typer.Option(False, "--main-job", help="Also time make demo from a fresh clone"),
    demo_days: int | None = typer.Option(None, help="Days of the demo profile (default: its 90)"),
) -> None:
    backends = [Backend.sqlite, Backend.postgres] if backend is Backend.both else [backend]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-sim-") as tmp:
        work = Path(tmp)
        for b in backends:
            result, by_route = _backfill(b, "small", 14, work, timed=True)
            console.print(_route_table(by_route, f"{b}: backfill of the small profile, per route"))
            console.print(
                f"[bold]{b}: {result.requests} requests in {result.seconds:.1f} s = "
                f"{result.requests_per_second:.0f} requests/s[/] (target ≥ {TARGET_RPS}); "
                f"{result.orders} orders, {result.failures} planned failures"
            )
            entry: dict[str, Any] = {
                "small_requests": result.requests,
                "small_seconds": round(result.seconds, 2),
                "requests_per_second": round(result.requests_per_second),
                "target_requests_per_second": TARGET_RPS,
            }
            if not skip_demo:
                demo, _ = _backfill(b, "demo", demo_days, work, timed=False)
                console.print(
                    f"[bold]{b}: demo profile ({demo_days or get_profile('demo').days} days): "
                    f"{demo.seconds:.0f} s[/] (target ≤ {TARGET_DEMO_SECONDS} s), {demo.requests} requests "
                    f"= {demo.requests_per_second:.0f} requests/s, {demo.orders} orders "
                    f"({demo.fraudulent_orders} fraudulent)"
                )
                entry |= {
                    "demo_seconds": round(demo.seconds, 1),
                    "demo_requests": demo.requests,
                    "demo_requests_per_second": round(demo.requests_per_second),
                    "demo_orders": demo.orders,
                    "target_demo_seconds": TARGET_DEMO_SECONDS,
                }
            results[str(b)] = entry
        if main_job:
            with console.status("main job: git clone + make demo with an empty package cache…"):
                results["main_job"] = _main_job(work)
            console.print(f"[bold]main job: URLs up after {results['main_job']['seconds_to_urls']} s[/]")
    save(RESULTS, results, console)


if __name__ == "__main__":
    app()
