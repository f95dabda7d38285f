"""Load generators for the benchmark: an open-loop one (fixed request rate) and a closed-loop one (max req/s).

The HTTP client is a minimal HTTP/1.1 keep-alive client on raw asyncio streams (uvloop when installed):
a GET costs a few tens of microseconds of client CPU, several times less than httpx, which matters
because the client shares the machine's two cores with the server it measures.

Open loop: request i is due at start + i / rate whatever happened to earlier requests; each one takes an
idle keep-alive connection or opens a new one, and its latency is measured from its *scheduled* send
time, so a stalled server shows up in the percentiles instead of silently slowing the client down
(no coordinated omission).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import orjson

uvloop: Any
try:  # uvicorn[standard] installs it; the client is a lot cheaper on it
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None


# --- HTTP/1.1 over asyncio streams ------------------------------------------------------------------------


class HttpError(Exception):
    pass


class StaleConnection(Exception):
    """A kept-alive connection the server had already closed: nothing was answered, safe to retry."""


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.closed = False
        self.requests = 0
        self.idle_since = time.monotonic()

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
        return cls(reader, writer)

    async def get(self, path: str, host_header: bytes, keep_body: bool = False) -> tuple[int, bytes]:
        reused = self.requests > 0
        self.requests += 1
        try:
            self.writer.write(
                b"GET "
                + path.encode()
                + b" HTTP/1.1\r\nHost: "
                + host_header
                + b"\r\nAccept: application/json\r\n\r\n"
            )
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError) as exc:
            partial = getattr(exc, "partial", b"")
            if reused and not partial:
                raise StaleConnection from exc
            raise
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = -1
        chunked = close = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                close = True
        if chunked:
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                parts.append(chunk[:-2])
            body = b"".join(parts)
        elif length >= 0:
            body = await self.reader.readexactly(length)
        else:
            body = await self.reader.read()
            close = True
        if close:
            self.close()
        return status, body if keep_body or status >= 400 else b""

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.writer.close()


class Pool:
    """Keep-alive connections to one server; a request takes an idle one or opens another.

    Like any HTTP client, a request that finds its kept-alive connection already closed by the server
    (uvicorn closes connections idle for 5 s) is sent again on a new connection; connections idle for
    longer than `max_idle` are not reused at all."""

    def __init__(
        self,
        host: str,
        port: int,
        max_connections: int = 1024,
        max_idle: float = 4.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.max_idle = max_idle
        self.retries = 0
        # Extra header lines ride after Host: the request bytes are built once per request anyway.
        extra = "".join(f"\r\n{name}: {value}" for name, value in (headers or {}).items())
        self.host_header = f"{host}:{port}{extra}".encode()
        self.idle: deque[Connection] = deque()
        self.opened = 0
        self.slots = asyncio.Semaphore(max_connections)

    async def get(self, path: str, keep_body: bool = False) -> tuple[int, bytes]:
        async with self.slots:
            conn = self._idle_connection()
            if conn is None:
                conn = await self._open()
            try:
                result = await conn.get(path, self.host_header, keep_body)
            except StaleConnection:
                conn.close()
                self.retries += 1
                conn = await self._open()
                try:
                    result = await conn.get(path, self.host_header, keep_body)
                except BaseException:
                    conn.close()
                    raise
            except BaseException:
                conn.close()
                raise
            if not conn.closed:
                conn.idle_since = time.monotonic()
                self.idle.append(conn)
            return result

    def _idle_connection(self) -> Connection | None:
        now = time.monotonic()
        while self.idle:
            conn = self.idle.pop()  # the most recently used: the likeliest to be alive
            if now - conn.idle_since < self.max_idle:
                return conn
            conn.close()
        return None

    async def _open(self) -> Connection:
        conn = await Connection.open(self.host, self.port)
        self.opened += 1
        return conn

    def close(self) -> None:
        while self.idle:
            self.idle.pop().close()


# --- results ------------------------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending sequence (p in 0..100)."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(-(-p * len(sorted_values) // 100)) - 1))
    return sorted_values[k]


@dataclass
class RunResult:
    name: str
    rate: float
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)  # every answered request, any status
    statuses: Counter[int] = field(default_factory=Counter)
    exceptions: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    client_cpu_seconds: float = 0.0
    server_cpu_seconds: float | None = None
    db_cpu_seconds: float | None = None  # PostgreSQL backends serving the server's connections
    machine_busy: float | None = None  # share of all cores busy during the run
    connections_opened: int = 0
    stale_retries: int = 0  # requests re-sent because the server had closed their idle connection
    late_sends: int = 0  # sends that left more than 5 ms after their scheduled time (client overload)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values()) + sum(self.exceptions.values())

    @property
    def errors(self) -> int:
        bad = sum(n for status, n in self.statuses.items() if not 200 <= status < 300)
        return bad + sum(self.exceptions.values())

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        wall = self.wall_seconds or 1.0
        return {
            "requests": self.requests,
            "errors": self.errors,
            "rate": self.rate,
            "seconds": self.seconds,
            "achievedRate": round(self.requests / wall, 1),
            "p50Ms": round(percentile(lat, 50), 2),
            "p95Ms": round(percentile(lat, 95), 2),
            "p99Ms": round(percentile(lat, 99), 2),
            "p999Ms": round(percentile(lat, 99.9), 2),
            "maxMs": round(lat[-1], 2) if lat else None,
            "meanMs": round(sum(lat) / len(lat), 2) if lat else None,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "exceptions": dict(self.exceptions),
            "errorSamples": self.error_samples[:5],
            "clientCpuPercent": round(100 * self.client_cpu_seconds / wall, 1),
            "serverCpuPercent": None
            if self.server_cpu_seconds is None
            else round(100 * self.server_cpu_seconds / wall, 1),
            "dbCpuPercent": None
            if self.db_cpu_seconds is None
            else round(100 * self.db_cpu_seconds / wall, 1),
            "machineBusyPercent": None if self.machine_busy is None else round(100 * self.machine_busy, 1),
            # CPU (percent of one core) that neither the server, its database nor this client used
            "otherCpuPercent": None
            if self.machine_busy is None or self.server_cpu_seconds is None
            else round(
                max(
                    0.0,
                    100
                    * (
                        self.machine_busy * (os.cpu_count() or 1)
                        - (self.server_cpu_seconds + self.client_cpu_seconds + (self.db_cpu_seconds or 0.0))
                        / wall
                    ),
                ),
                1,
            ),
            "connectionsOpened": self.connections_opened,
            "staleRetries": self.stale_retries,
            "lateSends": self.late_sends,
        }


# --- CPU accounting from /proc ------------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def tree_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process and its live descendants (uvicorn workers), or None."""
    try:
        parents: dict[int, int] = {}
        stats: dict[int, float] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    raw = f.read()
            except OSError:
                continue
            fields = raw[raw.rindex(b")") + 2 :].split()
            parents[int(entry)] = int(fields[1])
            stats[int(entry)] = (int(fields[11]) + int(fields[12])) / _TICK
        tree, frontier = {pid}, [pid]
        while frontier:
            p = frontier.pop()
            kids = [c for c, pp in parents.items() if pp == p and c not in tree]
            tree.update(kids)
            frontier.extend(kids)
        if pid not in stats:
            return None
        return sum(stats.get(p, 0.0) for p in tree)
    except OSError:
        return None


def machine_cpu() -> tuple[float, float] | None:
    """(busy, total) jiffies of all cores, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            parts = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    return float(sum(parts) - idle), float(sum(parts))


# The processes doing the server's database work outside its own process tree (the PostgreSQL backends
# of its connections); the benchmark sets this for a PostgreSQL run. SQLite works inside the server.
db_pids: Callable[[], list[int]] | None = None


def pids_cpu_seconds(pids: list[int]) -> dict[int, float]:
    out: dict[int, float] = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        fields = raw[raw.rindex(b")") + 2 :].split()
        out[pid] = (int(fields[11]) + int(fields[12])) / _TICK
    return out


class CpuMeter:
    """CPU used during a run by this client, the server's process tree, the database backends serving it
    (polled, since the pool closes its overflow connections along the way) and the whole machine."""

    def __init__(self, server_pid: int | None, poll_seconds: float = 0.25) -> None:
        self.server_pid = server_pid
        self.poll_seconds = poll_seconds
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    def _poll_db(self, initial: bool = False) -> None:
        assert db_pids is not None
        for pid, cpu in pids_cpu_seconds(db_pids()).items():
            # a backend first seen after the start was opened during the run: all its CPU counts
            self._first.setdefault(pid, cpu if initial else 0.0)
            self._last[pid] = cpu

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            with contextlib.suppress(Exception):
                self._poll_db()

    def __enter__(self) -> CpuMeter:
        self.client0 = time.process_time()
        self.server0 = tree_cpu_seconds(self.server_pid) if self.server_pid else None
        if db_pids:
            self._poll_db(initial=True)
            self._poller = threading.Thread(target=self._poll_loop, daemon=True)
            self._poller.start()
        self.machine0 = machine_cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self.client = time.process_time() - self.client0
        s1 = tree_cpu_seconds(self.server_pid) if self.server_pid else None
        self.server = s1 - self.server0 if s1 is not None and self.server0 is not None else None
        self.db: float | None = None
        if self._poller is not None:
            self._stop.set()
            self._poller.join()
            with contextlib.suppress(Exception):
                self._poll_db()
            self.db = sum(self._last[pid] - first for pid, first in self._first.items())
        m1 = machine_cpu()
        self.machine = None
        if m1 and self.machine0 and m1[1] > self.machine0[1]:
            self.machine = (m1[0] - self.machine0[0]) / (m1[1] - self.machine0[1])


# --- open loop ---------------------------------------------------------------------------------------------


async def open_loop(
    host: str,
    port: int,
    name: str,
    next_path: Callable[[], str],
    *,
    rate: float,
    seconds: float,
    timeout: float = 10.0,
    server_pid: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    headers: Mapping[str, str] | None = None,
) -> RunResult:
    """Send `rate` GET requests per second for `seconds`, on schedule whatever the responses do."""
    total = max(1, round(rate * seconds))
    result = RunResult(name=name, rate=rate, seconds=seconds)
    pool = Pool(host, port, headers=headers)
    paths = [next_path() for _ in range(total)]  # drawn up front: no RNG work on the send path
    interval = 1.0 / rate
    clock = time.perf_counter

    async def one(path: str, due: float) -> None:
        try:
            status, body = await asyncio.wait_for(pool.get(path), timeout)
        except TimeoutError:
            result.exceptions["timeout"] += 1
            result.latencies_ms.append(timeout * 1000)
            if len(result.error_samples) < 20:
                result.error_samples.append(f"timeout {path}")
            return
        except (
            OSError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
            IndexError,
        ) as exc:
            result.exceptions[type(exc).__name__] += 1
            if len(result.error_samples) < 20:
                result.error_samples.append(f"{type(exc).__name__}: {exc} {path}")
            return
        result.latencies_ms.append((clock() - due) * 1000)
        result.statuses[status] += 1
        if status >= 300 and len(result.error_samples) < 20:
            result.error_samples.append(f"{status} {path} {body[:300].decode(errors='replace')}")

    tasks: set[asyncio.Task[None]] = set()
    with CpuMeter(server_pid) as cpu:
        start = clock() + 0.02
        for i, path in enumerate(paths):
            due = start + i * interval
            delay = due - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.005:
                result.late_sends += 1
            task = asyncio.create_task(one(path, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            if on_progress and i % max(1, int(rate)) == 0:
                on_progress(i, total)
        if tasks:
            await asyncio.wait(set(tasks))
        result.wall_seconds = clock() - start
    if on_progress:
        on_progress(total, total)
    result.client_cpu_seconds, result.server_cpu_seconds = cpu.client, cpu.server
    result.db_cpu_seconds = cpu.db
    result.machine_busy = cpu.machine
    result.connections_opened, result.stale_retries = pool.opened, pool.retries
    pool.close()
    return result


# --- closed loop -------------------------------------------------------------------------------------------


@dataclass
class ThroughputResult:
    name: str
    requests: int
    seconds: float
    errors: int
    tool: str
    connections: int
    p50_ms: float | None = None
    p99_ms: float | None = None
    client_cpu_percent: float | None = None
    server_cpu_percent: float | None = None
    error_samples: list[str] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "requestsPerSecond": round(self.rps, 1),
            "requests": self.requests,
            "seconds": round(self.seconds, 2),
            "errors": self.errors,
            "tool": self.tool,
            "connections": self.connections,
            "p50Ms": self.p50_ms,
            "p99Ms": self.p99_ms,
            "clientCpuPercent": self.client_cpu_percent,
            "serverCpuPercent": self.server_cpu_percent,
            "errorSamples": self.error_samples[:5],
        }


async def closed_loop(
    host: str,
    port: int,
    name: str,
    next_path: Callable[[], str],
    *,
    connections: int,
    seconds: float,
    server_pid: int | None = None,
) -> ThroughputResult:
    """`connections` clients, each sending its next request as soon as the previous one is answered."""
    pool = Pool(host, port, max_connections=connections)
    latencies: list[float] = []
    errors = 0
    samples: list[str] = []
    clock = time.perf_counter
    paths = [next_path() for _ in range(20_000)]
    stop_at = 0.0

    async def worker(offset: int) -> None:
        nonlocal errors
        i = offset
        while clock() < stop_at:
            path = paths[i % len(paths)]
            i += connections
            t0 = clock()
            try:
                status, body = await pool.get(path)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                errors += 1
                if len(samples) < 5:
                    samples.append(f"{type(exc).__name__}: {exc}")
                continue
            latencies.append((clock() - t0) * 1000)
            if not 200 <= status < 300:
                errors += 1
                if len(samples) < 5:
                    samples.append(f"{status} {path} {body[:200].decode(errors='replace')}")

    with CpuMeter(server_pid) as cpu:
        started = clock()
        stop_at = started + seconds
        await asyncio.gather(*(worker(k) for k in range(connections)))
        elapsed = clock() - started
    pool.close()
    lat = sorted(latencies)
    return ThroughputResult(
        name=name,
        requests=len(latencies),
        seconds=elapsed,
        errors=errors,
        tool="python",
        connections=connections,
        p50_ms=round(percentile(lat, 50), 2) if lat else None,
        p99_ms=round(percentile(lat, 99), 2) if lat else None,
        client_cpu_percent=round(100 * cpu.client / elapsed, 1),
        server_cpu_percent=None if cpu.server is None else round(100 * cpu.server / elapsed, 1),
        error_samples=samples,
    )


def run(coro: Any) -> Any:
    """Run a coroutine on uvloop when available."""
    if uvloop is not None:
        return uvloop.run(coro)
    return asyncio.run(coro)


# --- workloads ---------------------------------------------------------------------------------------------


@dataclass
class EndpointSpec:
    """What the server's OpenAPI says about one GET endpoint's query parameters."""

    path: str
    params: dict[str, dict[str, Any]]  # name -> JSON schema

    def enum(self, name: str) -> list[str]:
        schema = self.params.get(name) or {}
        for candidate in (schema, *schema.get("anyOf", []), *schema.get("allOf", [])):
            if "enum" in candidate:
                return [str(v) for v in candidate["enum"]]
            if "$ref" in candidate:
                return list(candidate.get("_resolved_enum", []))
        return []

    def type_of(self, name: str) -> str | None:
        schema = self.params.get(name) or {}
        for candidate in (schema, *schema.get("anyOf", [])):
            t = candidate.get("type")
            if t and t != "null":
                return str(t)
        return None


def endpoint_specs(openapi: dict[str, Any]) -> dict[str, EndpointSpec]:
    """Query parameters (with resolved enums) of every GET path in an OpenAPI document."""
    schemas = openapi.get("components", {}).get("schemas", {})

    def resolve(schema: dict[str, Any]) -> dict[str, Any]:
        schema = dict(schema)
        ref = schema.get("$ref")
        if ref:
            target = schemas.get(ref.rsplit("/", 1)[-1], {})
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        for key in ("anyOf", "allOf", "oneOf"):
            if key in schema:
                schema[key] = [resolve(s) for s in schema[key]]
        return schema

    out: dict[str, EndpointSpec] = {}
    for path, ops in openapi.get("paths", {}).items():
        get = ops.get("get")
        if not get:
            continue
        params = {
            p["name"]: resolve(p.get("schema", {}))
            for p in get.get("parameters", [])
            if p.get("in") == "query"
        }
        out[path] = EndpointSpec(path=path, params=params)
    return out


@dataclass
class Catalog:
    """What the workload needs to know about the loaded data."""

    product_ids: list[int]  # active products (detail requests)
    shop_ids: list[int]  # shops weighted by product count (listing filter)
    category_ids: list[int]
    category_slugs: list[str]
    terms: list[str]  # search vocabulary
    cities: list[tuple[str, float, float]]
    price_points: list[str]  # typical prices, as strings


class Workload:
    """Draws varied request paths for the three endpoints, using only the parameters the server declares."""

    LISTING = "/api/products"
    SEARCH = "/api/products/search"
    DETAIL = "/api/products/{id}"

    def __init__(self, catalog: Catalog, specs: dict[str, EndpointSpec], seed: int = 7) -> None:
        self.catalog = catalog
        self.rng = random.Random(seed)
        self.listing = specs.get(self.LISTING, EndpointSpec(self.LISTING, {}))
        self.search = specs.get(self.SEARCH, EndpointSpec(self.SEARCH, {}))
        detail = next((s for p, s in specs.items() if p.startswith("/api/products/{")), None)
        self.detail_template = detail.path if detail else "/api/products/{product_id}"
        self.listing_sorts = self.listing.enum("sort") or ["newest"]
        self.search_sorts = self.search.enum("sort")

    @staticmethod
    def _qs(params: dict[str, Any]) -> str:
        return urlencode({k: v for k, v in params.items() if v is not None})

    def _page(self) -> int:
        r = self.rng.random()
        return 1 if r < 0.6 else self.rng.randint(2, 5) if r < 0.9 else self.rng.randint(6, 50)

    def listing_path(self) -> str:
        rng, has = self.rng, self.listing.params
        params: dict[str, Any] = {}
        r = rng.random()
        if r < 0.35 and "shopId" in has:
            params["shopId"] = rng.choice(self.catalog.shop_ids)
        elif r < 0.7 and "categoryId" in has:
            params["categoryId"] = rng.choice(self.catalog.category_ids)
        if "sort" in has:
            params["sort"] = rng.choice(self.listing_sorts)
        if "inStock" in has and rng.random() < 0.1:
            params["inStock"] = "true"
        if "minPrice" in has and rng.random() < 0.1:
            params["minPrice"] = rng.choice(self.catalog.price_points)
        if "page" in has:
            params["page"] = self._page()
        if "pageSize" in has:
            params["pageSize"] = rng.choice([20, 20, 20, 12, 24, 50])
        return f"{self.LISTING}?{self._qs(params)}"

    def search_path(self) -> str:
        rng, has, cat = self.rng, self.search.params, self.catalog
        params: dict[str, Any] = {}
        r = rng.random()
        words = [w for w in cat.terms if " " not in w]
        term = rng.choice(cat.terms)
        # one term (65%), two words (20%), one term capitalised as people type it (15%)
        params["q"] = (
            term
            if r < 0.65
            else f"{rng.choice(words)} {rng.choice(words)}"
            if r < 0.85
            else term[:1].upper() + term[1:]
        )
        if rng.random() < 0.25 and "minPrice" in has:
            lo = rng.choice(cat.price_points)
            params["minPrice"] = lo
            if "maxPrice" in has:
                params["maxPrice"] = str(round(float(lo) * rng.choice([2, 3, 5, 10]), 2))
        geo = rng.random() < 0.2 and {"lat", "lon", "radiusKm"} <= set(has)
        if geo:
            _city, lat, lon = rng.choice(cat.cities)
            params["lat"] = round(lat + rng.gauss(0, 0.03), 4)
            params["lon"] = round(lon + rng.gauss(0, 0.03), 4)
            params["radiusKm"] = rng.choice([5, 10, 25, 50])
        if rng.random() < 0.2 and "category" in has:
            is_int = self.search.type_of("category") == "integer"
            params["category"] = rng.choice(cat.category_ids) if is_int else rng.choice(cat.category_slugs)
        if "minRating" in has and rng.random() < 0.1:
            params["minRating"] = rng.choice([3, 4, 4.5])
        if "delivery" in has and rng.random() < 0.1:
            params["delivery"] = "true"
        sorts = [s for s in self.search_sorts if geo or s != "distance"]
        if sorts and rng.random() < 0.5:
            params["sort"] = rng.choice(sorts)
        if "page" in has:
            params["page"] = 1 if rng.random() < 0.8 else rng.randint(2, 5)
        if "pageSize" in has and rng.random() < 0.3:
            params["pageSize"] = rng.choice([12, 24, 50])
        return f"{self.SEARCH}?{self._qs(params)}"

    def detail_path(self) -> str:
        pid = self.rng.choice(self.catalog.product_ids)
        name = self.detail_template[self.detail_template.index("{") + 1 : self.detail_template.index("}")]
        return self.detail_template.replace("{" + name + "}", str(pid))

    def mixed_path(self) -> str:
        return self.rng.choice((self.listing_path, self.search_path, self.detail_path))()


def decode(body: bytes) -> Any:
    with contextlib.suppress(orjson.JSONDecodeError):
        return orjson.loads(body)
    return None
