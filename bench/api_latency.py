"""Latency and throughput benchmark of the store API's read endpoints, on SQLite and on PostgreSQL.

    .venv/bin/python -m bench.api_latency                       # both backends, full size (minutes)
    .venv/bin/python -m bench.api_latency --backend sqlite --products 5000 --views 50000 --seconds 5

For each backend: a fresh bench database (data/bench/store_bench.db, or `store_bench` on the local
PostgreSQL), the real migrations, a bulk load (bench/bulk_load.py: 100k products in 500 shops, 10k users,
1M product views and their outbox events by default), then uvicorn on 127.0.0.1 serving the real app
(bench/server.py). After a warm-up, listing, search and product detail each get a fixed request rate for
a fixed time, open loop (bench/loadgen.py), and their p50/p95/p99/max and errors are checked against the
targets. Before each phase the server is left to work off any backlog of the previous one. Last, the most
requests/s that listing (and search and detail) sustains is measured next to a bare JSON endpoint of the
same server, with `wrk` when installed (apt-get install wrk), else with the Python closed-loop client.

The load generator shares the machine with the server; on a shared machine, --quiet-wait waits for other
work to leave the cores before each phase, and the table shows how much CPU other work took anyway.

Figures go to bench/results/api_latency.json (one entry per backend, kept across runs).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from bench import bulk_load, figures, loadgen
from bench.server import BARE_PATH
from bench.stores import PG_ADMIN_URL, Backend, BenchStore

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "api_latency.json"
SQLITE_PATH = ROOT / "data" / "bench" / "store_bench.db"
PG_DATABASE = "store_bench"
HOST = "127.0.0.1"

# p99 targets (ms) of the issue; every endpoint must also answer without a single error.
TARGET_P99_MS = {"listing": 20.0, "search": 30.0, "detail": None}
TARGET_THROUGHPUT_RATIO = 0.40

# Not a terminal (a log, CI): wide enough for the result table anyway.
console = Console(width=None if sys.stdout.isatty() else 150)
cli = typer.Typer(add_completion=False, help=__doc__)


STORE = BenchStore(SQLITE_PATH, PG_DATABASE)


# --- databases ----------------------------------------------------------------------------------------------


def database_url(backend: Backend) -> str:
    return STORE.url(backend)


def recreate_database(backend: Backend) -> None:
    STORE.recreate(backend)


def at_head(url: str) -> bool:
    from alembic.script import ScriptDirectory

    from api.db.migrate import alembic_config

    heads = set(ScriptDirectory.from_config(alembic_config(url)).get_heads())
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            current = {r[0] for r in conn.execute(text("SELECT version_num FROM store_alembic_version"))}
    except Exception:
        return False
    finally:
        engine.dispose()
    return current == heads


def prepare(backend: Backend, spec: bulk_load.BulkSpec, reuse: bool) -> dict[str, Any]:
    """A bench database holding the data set; returns what was done and how long it took."""
    from api.db.migrate import upgrade

    url = database_url(backend)
    if backend is Backend.postgres and not _pg_reachable():
        raise typer.Exit(_fail(f"PostgreSQL is not reachable at {_display(PG_ADMIN_URL)}"))
    fingerprint = schema_fingerprint()
    if reuse:
        if stored_fingerprint(backend) == fingerprint and at_head(url) and bulk_load.has_data(url, spec):
            console.print(f"[green]reusing[/] the loaded bench database ({_display(url)})")
            return {"reused": True}
        console.print(
            "the bench database is missing, holds another data set or predates the current "
            "migrations or generator: loading it afresh"
        )
    started = time.perf_counter()
    recreate_database(backend)
    upgrade(url)
    migrate_s = round(time.perf_counter() - started, 2)
    console.print(f"fresh database {_display(url)}, migrated in {migrate_s:.2f} s; bulk load:")
    report = bulk_load.load(url, spec, console)
    store_fingerprint(backend, fingerprint)
    return {
        "reused": False,
        "migrateSeconds": migrate_s,
        "loadSeconds": report.seconds,
        "rows": report.rows,
        "loadTotalSeconds": report.total_seconds,
    }


def schema_fingerprint() -> str:
    """A hash of the migrations and of the generator: --reuse must not keep a database loaded before a
    migration was rewritten in place (pre-release, 0001 is regenerated under the same revision id)."""
    from api.db.migrate import MIGRATIONS_DIR

    digest = hashlib.sha256()
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update(Path(bulk_load.__file__).read_bytes())
    return digest.hexdigest()[:24]


def stored_fingerprint(backend: Backend) -> str | None:
    if backend is Backend.sqlite:
        path = Path(f"{SQLITE_PATH}.fingerprint")
        return path.read_text().strip() if path.exists() and SQLITE_PATH.exists() else None
    engine = _admin_engine()
    with engine.connect() as conn:
        value = conn.execute(
            text("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :db"),
            {"db": PG_DATABASE},
        ).scalar_one_or_none()
    return str(value).removeprefix("bench data ") if value else None


def store_fingerprint(backend: Backend, fingerprint: str) -> None:
    if backend is Backend.sqlite:
        Path(f"{SQLITE_PATH}.fingerprint").write_text(fingerprint + "\n")
        return
    engine = _admin_engine()
    with engine.begin() as conn:
        conn.execute(text(f"COMMENT ON DATABASE \"{PG_DATABASE}\" IS 'bench data {fingerprint}'"))


def _pg_reachable() -> bool:
    engine = create_engine(PG_ADMIN_URL)
    try:
        with engine.connect():
            return True
    except Exception:
        return False
    finally:
        engine.dispose()


def _display(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _fail(message: str) -> int:
    console.print(f"[red]error:[/] {message}")
    return 1


def sample_catalog(url: str) -> loadgen.Catalog:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            products = [r[0] for r in conn.execute(text("SELECT id FROM products WHERE is_active"))]
            # One entry per product: shop filters land on big shops as often as real traffic does.
            shops = [r[0] for r in conn.execute(text("SELECT shop_id FROM products WHERE is_active"))]
            cats = conn.execute(text("SELECT id, slug FROM categories ORDER BY id")).all()
            prices = [
                str(r[0])
                for r in conn.execute(
                    text("SELECT price FROM products WHERE currency = 'USDT' ORDER BY id LIMIT 2000")
                )
            ]
    finally:
        engine.dispose()
    if not products:
        raise RuntimeError("the bench database has no active products")
    return loadgen.Catalog(
        product_ids=products,
        shop_ids=shops,
        category_ids=[c[0] for c in cats],
        category_slugs=[c[1] for c in cats],
        terms=bulk_load.search_terms(),
        cities=bulk_load.CITIES,
        price_points=[str(int(float(p))) for p in prices if float(p) >= 1] or ["10"],
    )


# --- the server ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Server:
    """uvicorn serving bench.server:create_app in its own process group; stopped on exit, error or Ctrl-C."""

    def __init__(
        self,
        url: str,
        workers: int,
        extra_env: dict[str, str] | None = None,
        app: str = "bench.server:create_app",
    ) -> None:
        self.url, self.workers, self.extra_env, self.app = url, workers, extra_env or {}, app
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="bench-uvicorn-", suffix=".log", delete=False)  # noqa: SIM115

    def start(self, timeout: float = 60.0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STORE_")}
        env.update(
            {
                "STORE_DATABASE_URL": self.url,
                "STORE_ENVIRONMENT": "production",
                "STORE_JWT_SECRET": secrets.token_hex(24),  # 48 characters
                "STORE_LOG_LEVEL": "WARNING",
                "STORE_AUTO_MIGRATE": "false",
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )
        env.update(self.extra_env)
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            self.app,
            "--factory",
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--log-level",
            "warning",
            "--no-access-log",
            "--ws-per-message-deflate",
            "false",
        ]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {self.proc.returncode}:\n{self.tail()}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"http://{HOST}:{self.port}/health", timeout=2) as resp,
            ):
                if resp.status == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"uvicorn did not answer /health within {timeout:.0f} s:\n{self.tail()}")

    def get_json(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://{HOST}:{self.port}{path}", timeout=10) as resp:
            return json.loads(resp.read())

    def status_of(self, path: str) -> int:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{self.port}{path}", timeout=10) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    def drain(self, timeout: float = 300.0) -> float:
        """Wait until the server has worked off any backlog (an overloaded phase leaves queued requests
        that would otherwise be billed to the next phase): its CPU is near idle and a bare request comes
        back fast. Returns the seconds waited."""
        started = time.monotonic()
        pid = self.proc.pid if self.proc else None
        while time.monotonic() - started < timeout:
            before = loadgen.tree_cpu_seconds(pid) if pid else None
            time.sleep(0.5)
            after = loadgen.tree_cpu_seconds(pid) if pid else None
            busy = (after - before) / 0.5 if before is not None and after is not None else 0.0
            if busy < 0.15:
                t0 = time.perf_counter()
                with contextlib.suppress(OSError):
                    self.status_of(BARE_PATH)
                    if time.perf_counter() - t0 < 0.2:
                        return round(time.monotonic() - started, 1)
        raise RuntimeError(f"the server is still busy {timeout:.0f} s after the load stopped")

    def tail(self, n: int = 40) -> str:
        self.log.flush()
        return "\n".join(Path(self.log.name).read_text(errors="replace").splitlines()[-n:])

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


# --- one backend --------------------------------------------------------------------------------------------

ENDPOINTS = {"listing": "/api/products", "search": "/api/products/search", "detail": "/api/products/{id}"}


def check_endpoints(server: Server, workload: loadgen.Workload) -> list[str]:
    """Endpoints that do not answer 200 yet (another engineer's work may still be landing)."""
    missing = []
    for name, path in (
        ("listing", workload.listing_path()),
        ("search", workload.search_path()),
        ("detail", workload.detail_path()),
    ):
        status = server.status_of(path)
        if status != 200:
            missing.append(f"{name} ({path} -> {status})")
    return missing


def wrk_throughput(
    port: int, name: str, paths: list[str], *, connections: int, seconds: float, server_pid: int | None
) -> loadgen.ThroughputResult:
    """Closed-loop req/s with wrk (one thread, `connections` keep-alive connections, paths in a Lua list)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        items = ",\n".join(json.dumps(p) for p in paths)
        f.write(
            "local paths = {\n" + items + "\n}\nlocal i = 0\nrequest = function()\n  i = i + 1\n"
            "  return wrk.format('GET', paths[(i % #paths) + 1])\nend\n"
        )
        script = f.name
    try:
        with loadgen.CpuMeter(server_pid) as cpu:
            cmd = [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds:.0f}s",
                "--latency",
                "-s",
                script,
                f"http://{HOST}:{port}",
            ]
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    finally:
        Path(script).unlink(missing_ok=True)
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    if not total:
        raise RuntimeError(f"cannot parse wrk output:\n{out}")
    unit = {"s": 1.0, "ms": 0.001, "m": 60.0, "us": 1e-6}[total.group(3)]
    requests, secs = int(total.group(1)), float(total.group(2)) * unit
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(int(g) for g in sock.groups()) if sock else 0)

    def pct(label: str) -> float | None:
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return None
        return round(float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)], 2)

    elapsed = secs or seconds
    return loadgen.ThroughputResult(
        name=name,
        requests=requests,
        seconds=secs,
        errors=errors,
        tool="wrk",
        connections=connections,
        p50_ms=pct("50"),
        p99_ms=pct("99"),
        server_cpu_percent=None if cpu.server is None else round(100 * cpu.server / elapsed, 1),
    )


def throughput(
    server: Server, workload: loadgen.Workload, *, connections: int, seconds: float, quiet_wait: float = 0
) -> dict[str, loadgen.ThroughputResult]:
    """Closed-loop max req/s of the bare route and of each endpoint (listing's is the one with a target)."""
    pid = server.proc.pid if server.proc else None
    targets = [
        ("bare", [BARE_PATH]),
        ("listing", [workload.listing_path() for _ in range(5000)]),
        ("search", [workload.search_path() for _ in range(5000)]),
        ("detail", [workload.detail_path() for _ in range(5000)]),
    ]
    out: dict[str, loadgen.ThroughputResult] = {}
    use_wrk = shutil.which("wrk") is not None
    if not use_wrk:
        console.print(
            "[yellow]wrk not installed[/] (apt-get install wrk): using the Python closed-loop "
            "client, which takes more CPU from the server and under-reports both figures"
        )
    for name, paths in targets:
        server.drain()
        if quiet_wait:
            wait_for_quiet(quiet_wait)
        if use_wrk:
            out[name] = wrk_throughput(
                server.port, name, paths, connections=connections, seconds=seconds, server_pid=pid
            )
        else:
            cycle = itertools.cycle(paths)
            out[name] = loadgen.run(
                loadgen.closed_loop(
                    HOST,
                    server.port,
                    name,
                    cycle.__next__,
                    connections=connections,
                    seconds=seconds,
                    server_pid=pid,
                )
            )
        r = out[name]
        console.print(
            f"  max throughput {name:<8} {r.rps:8.0f} req/s  ({r.tool}, {connections} connections, "
            f"{r.errors} errors, p50 {r.p50_ms} ms, server CPU {r.server_cpu_percent}%)"
        )
    return out


def environment(url: str) -> dict[str, Any]:
    """What the figures were measured on."""
    import platform
    import sqlite3

    import uvicorn

    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "uvicorn": uvicorn.__version__,
        "sqlite": sqlite3.sqlite_version,
        "wrk": shutil.which("wrk") is not None,
    }
    if make_url(url).get_backend_name() == "postgresql":
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                info["postgres"] = conn.execute(text("SHOW server_version")).scalar_one()
        finally:
            engine.dispose()
    return info


def background_load(seconds: float = 2.0) -> float:
    """How busy all cores are (percent) while the benchmark itself is idle."""
    before = loadgen.machine_cpu()
    time.sleep(seconds)
    after = loadgen.machine_cpu()
    if not before or not after or after[1] <= before[1]:
        return 0.0
    return round(100 * (after[0] - before[0]) / (after[1] - before[1]), 1)


def wait_for_quiet(max_wait: float, threshold: float = 15.0) -> float:
    """On a shared machine: wait (up to max_wait s) until other work leaves the cores nearly idle.
    Returns the background busy percent measured last."""
    deadline = time.monotonic() + max_wait
    busy = background_load()
    waited = False
    while busy > threshold and time.monotonic() < deadline:
        if not waited:
            console.print(
                f"  machine {busy:.0f}% busy with other work: waiting up to {max_wait:.0f} s "
                "for it to quiet down"
            )
            waited = True
        busy = background_load(3.0)
    return busy


def pg_backend_pids() -> list[int]:
    """PIDs of the PostgreSQL backends connected to the bench database (the server's pool)."""
    engine = _admin_engine()
    with engine.connect() as conn:
        return [
            int(r[0])
            for r in conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()"),
                {"db": PG_DATABASE},
            )
        ]


@functools.cache
def _admin_engine() -> Engine:
    return create_engine(PG_ADMIN_URL, pool_size=1)


def run_backend(
    backend: Backend,
    spec: bulk_load.BulkSpec,
    *,
    rate: float,
    seconds: float,
    reuse: bool,
    workers: int,
    connections: int,
    throughput_seconds: float,
    warmup: int,
    quiet_wait: float,
) -> dict[str, Any]:
    console.rule(f"[bold]{backend.value}")
    prep = prepare(backend, spec, reuse)
    url = database_url(backend)
    catalog = sample_catalog(url)
    result: dict[str, Any] = {
        "backend": backend.value,
        "database": _display(url),
        "prepare": prep,
        "environment": environment(url),
        "spec": spec.__dict__,
        "rate": rate,
        "seconds": seconds,
        "workers": workers,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    loadgen.db_pids = pg_backend_pids if backend is Backend.postgres else None
    with Server(url, workers) as server:
        pid = server.proc.pid if server.proc else None
        console.print(f"uvicorn on {HOST}:{server.port} (pid {pid}, {workers} worker(s))")
        specs = loadgen.endpoint_specs(server.get_json("/openapi.json"))
        workload = loadgen.Workload(catalog, specs)
        missing = check_endpoints(server, workload)
        if missing:  # measured anyway: their errors show in the table
            console.print("[yellow]warning:[/] not answering 200: " + "; ".join(missing))
            result["notAnswering"] = missing
        result["sorts"] = {"listing": workload.listing_sorts, "search": workload.search_sorts}
        result["backgroundBusyPercent"] = background = wait_for_quiet(quiet_wait)
        if background > 25:
            console.print(
                f"[yellow]warning:[/] the machine is already {background:.0f}% busy without the "
                "benchmark: other work competes for the cores and inflates the latencies"
            )

        started = time.perf_counter()
        server.drain()
        warm = loadgen.run(
            loadgen.open_loop(
                HOST,
                server.port,
                "warmup",
                workload.mixed_path,
                rate=min(rate, 150.0),
                seconds=warmup / min(rate, 150.0),
            )
        )
        console.print(
            f"warm-up: {warm.requests} mixed requests in {time.perf_counter() - started:.1f} s, "
            f"{warm.errors} errors"
        )

        runs: dict[str, loadgen.RunResult] = {}
        makers = {
            "listing": workload.listing_path,
            "search": workload.search_path,
            "detail": workload.detail_path,
        }
        drained: dict[str, float] = {}
        background_before: dict[str, float] = {}
        for name, make in makers.items():
            drained[name] = server.drain()
            if drained[name] > 2:
                console.print(f"  (waited {drained[name]:.0f} s for the server to drain its backlog)")
            background_before[name] = wait_for_quiet(quiet_wait) if quiet_wait else background_load(1.0)
            runs[name] = loadgen.run(
                loadgen.open_loop(HOST, server.port, name, make, rate=rate, seconds=seconds, server_pid=pid)
            )
            s = runs[name].summary()
            console.print(
                f"  {name:<8} {s['requests']} requests, p99 {s['p99Ms']} ms, {s['errors']} errors; "
                f"CPU client {s['clientCpuPercent']}% server {s['serverCpuPercent']}% "
                + (f"postgres {s['dbCpuPercent']}% " if s["dbCpuPercent"] is not None else "")
                + f"machine {s['machineBusyPercent']}%, other work {s['otherCpuPercent']}% of a "
                "core"
            )
            for sample in runs[name].error_samples[:3]:
                console.print(f"    [red]{sample}[/]")
        tp = throughput(
            server, workload, connections=connections, seconds=throughput_seconds, quiet_wait=quiet_wait
        )
        if server.proc and server.proc.poll() is not None:
            raise RuntimeError(f"uvicorn died during the run:\n{server.tail()}")
        server_log = server.tail(20)

    result["endpoints"] = {
        name: r.summary()
        | {
            "path": ENDPOINTS[name],
            "targetP99Ms": TARGET_P99_MS[name],
            "drainedBeforeSeconds": drained[name],
            "backgroundBusyBeforePercent": background_before[name],
            "maxRps": round(tp[name].rps, 1),
        }
        for name, r in runs.items()
    }
    ratio = tp["listing"].rps / tp["bare"].rps if tp["bare"].rps else 0.0
    result["throughput"] = {name: r.summary() for name, r in tp.items()} | {
        "ratio": round(ratio, 3),
        "targetRatio": TARGET_THROUGHPUT_RATIO,
    }
    result["warmup"] = warm.summary()
    if server_log.strip():
        result["serverLogTail"] = server_log
    result["pass"] = verdicts(result)
    print_table(result)
    return result


def verdicts(result: dict[str, Any]) -> dict[str, bool]:
    out = {}
    for name, s in result["endpoints"].items():
        target = TARGET_P99_MS[name]
        out[name] = s["errors"] == 0 and (target is None or s["p99Ms"] <= target)
    tp = result["throughput"]
    out["throughput"] = tp["ratio"] >= TARGET_THROUGHPUT_RATIO and tp["listing"]["errors"] == 0
    return out


def print_table(result: dict[str, Any]) -> None:
    table = Table(
        title=f"store API on {result['backend']} — {result['rate']:.0f} req/s open loop for "
        f"{result['seconds']:.0f} s per endpoint ({result['spec']['products']:,} products)"
    )
    columns = (
        "endpoint",
        "requests",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "errors",
        "max req/s",
        "other CPU",
        "target",
        "result",
    )
    for col in columns:
        table.add_column(col, justify="left" if col in ("endpoint", "target") else "right")
    for name, s in result["endpoints"].items():
        target = TARGET_P99_MS[name]
        ok = result["pass"][name]
        table.add_row(
            f"{name} {s['path']}",
            str(s["requests"]),
            f"{s['p50Ms']:.1f}",
            f"{s['p95Ms']:.1f}",
            f"{s['p99Ms']:.1f}",
            f"{s['maxMs']:.1f}",
            str(s["errors"]),
            f"{s['maxRps']:,.0f}",
            "-" if s["otherCpuPercent"] is None else f"{s['otherCpuPercent']:.0f}%",
            (f"p99 ≤ {target:.0f} ms, " if target else "") + "0 errors",
            "[green]pass[/]" if ok else "[red]FAIL[/]",
        )
    tp = result["throughput"]
    ok = result["pass"]["throughput"]
    table.add_section()
    for name in ("bare", "listing"):
        t = tp[name]
        table.add_row(
            f"max req/s {BARE_PATH if name == 'bare' else '/api/products'}",
            str(t["requests"]),
            str(t["p50Ms"] if t["p50Ms"] is not None else "-"),
            "",
            str(t["p99Ms"] or "-"),
            "",
            str(t["errors"]),
            f"{t['requestsPerSecond']:,.0f}",
            "",
            f"{t['tool']}, {t['connections']} conn",
            "",
        )
    table.add_row(
        "listing / bare",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        f"{100 * tp['ratio']:.0f}% (target ≥ {100 * TARGET_THROUGHPUT_RATIO:.0f}%)",
        "[green]pass[/]" if ok else "[red]FAIL[/]",
    )
    table.caption = (
        "max req/s: closed loop, each endpoint alone. other CPU: CPU that neither the server "
        "nor the load generator used during the run (other work), in % of one core"
    )
    console.print(table)
    prep = result["prepare"]
    if not prep.get("reused"):
        loads = ", ".join(f"{k} {v:.1f} s" for k, v in prep["loadSeconds"].items())
        console.print(
            f"load: {loads}; total {prep['loadTotalSeconds']:.1f} s (+ migrations {prep['migrateSeconds']} s)"
        )


def save(results: dict[str, Any]) -> None:
    figures.save(RESULTS, results, console)


@cli.command()
def main(
    backend: Annotated[Backend, typer.Option(help="Database(s) to benchmark.")] = Backend.both,
    rate: Annotated[float, typer.Option(min=1, help="Fixed request rate per endpoint, open loop.")] = 200,
    seconds: Annotated[float, typer.Option(min=1, help="Duration of each endpoint's run.")] = 30,
    products: Annotated[int, typer.Option(min=1)] = 100_000,
    shops: Annotated[int, typer.Option(min=1)] = 500,
    users: Annotated[int, typer.Option(min=10)] = 10_000,
    views: Annotated[int, typer.Option(min=0)] = 1_000_000,
    seed: Annotated[int, typer.Option(help="Seed of the data generator.")] = 42,
    reuse: Annotated[bool, typer.Option(help="Skip the load if the database holds this data set.")] = False,
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes.")] = 1,
    connections: Annotated[int, typer.Option(min=1, help="Connections of the max-throughput runs.")] = 16,
    throughput_seconds: Annotated[float, typer.Option(min=1, help="Length of each max-throughput run.")] = 10,
    warmup: Annotated[int, typer.Option(min=0, help="Mixed warm-up requests before measuring.")] = 300,
    quiet_wait: Annotated[
        float,
        typer.Option(
            min=0,
            help="On a shared machine, wait up to this many seconds before each phase for other work to "
            "stop using the cores.",
        ),
    ] = 0,
) -> None:
    """Listing, search and product detail at a fixed rate; listing's max req/s next to a bare route."""
    spec = bulk_load.BulkSpec(users=users, shops=shops, products=products, views=views, seed=seed)
    backends = [Backend.sqlite, Backend.postgres] if backend is Backend.both else [backend]
    results: dict[str, Any] = {}
    failed = False
    try:
        for b in backends:
            try:
                results[b.value] = run_backend(
                    b,
                    spec,
                    rate=rate,
                    seconds=seconds,
                    reuse=reuse,
                    workers=workers,
                    connections=connections,
                    throughput_seconds=throughput_seconds,
                    warmup=max(warmup, 1),
                    quiet_wait=quiet_wait,
                )
                failed |= not all(results[b.value]["pass"].values())
            except RuntimeError as exc:
                console.print(f"[red]{b.value}: {exc}[/]")
                failed = True
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        raise typer.Exit(130) from None
    finally:
        if results:
            save(results)
    if failed:
        raise typer.Exit(1)


if __name__ == "__main__":
    cli()
