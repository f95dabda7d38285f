"""Live delivery benchmark (issue 3): WebSocket chat fan-out, call set-up, cached product detail.

    .venv/bin/python -m bench.realtime                      # all three, the issue's sizes
    .venv/bin/python -m bench.realtime --only chat --clients 200 --rate 100 --seconds 10

chat: a fresh SQLite store (data/bench/realtime.db) gets N users in N/2 buyer-shop conversations,
written straight into the tables (bench-only bulk set-up, no events: nothing here reads them). uvicorn
serves the real app on 127.0.0.1 (`--workers` processes; with more than one, fan-out goes through
Redis). Every user logs in over REST and opens one socket; then, open loop, `--rate` messages per second
are sent over the sockets (`send_message` frames) into random conversations by a random side. Each
message must reach the other participant and the sender's own socket exactly once; delivery latency
is measured from the send to the recipient's `new_message` frame (one clock: the same client process).

calls: bench/call_setup.py: initiate over REST until two aiortc peers report "connected".
detail: bench/cache_detail.py: cached product detail at a fixed 200 requests/s.

Figures go to bench/results/realtime.json.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import orjson
import typer
import websockets
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy.orm import Session

from api.auth.models import User
from api.conversations.models import Conversation
from api.core.security import hash_password
from api.core.settings import Settings
from api.db.engine import create_store_engine
from api.db.migrate import upgrade
from api.outbox.service import SILENT_OK
from api.shops.models import Shop
from bench import figures, loadgen
from bench.api_latency import HOST, Server
from bench.stores import Backend

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "realtime.json"
DB_PATH = ROOT / "data" / "bench" / "realtime.db"
PASSWORD = "bench password 1"
TARGET_CHAT_P99_MS = 50.0
TARGET_CALL_SETUP_S = 1.0
TARGET_DETAIL_P99_MS = 5.0

console = Console(width=None if sys.stdout.isatty() else 150)
cli = typer.Typer(add_completion=False, help=__doc__)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- set-up -----------------------------------------------------------------------------------------


def prepare_store(clients: int) -> tuple[str, list[tuple[int, int, int]]]:
    """A fresh store with `clients` users in clients/2 conversations: [(conversation, buyer, seller)]."""
    DB_PATH.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{DB_PATH}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{DB_PATH}"
    upgrade(url)
    settings = Settings(database_url=url, jwt_secret="x" * 40, _env_file=None)
    engine = create_store_engine(settings)
    now = datetime.now(UTC)
    digest = hash_password(PASSWORD)  # one argon2 hash for every bench user
    pairs = clients // 2
    with Session(engine) as db:
        db.info[SILENT_OK] = True  # bench fixture rows, not marketplace activity
        users = [
            User(
                email=f"rt{i:05d}@bench.example",
                username=f"rt{i:05d}",
                password_hash=digest,
                role="seller" if i % 2 else "buyer",
                is_active=True,
                failed_login_count=0,
                created_at=now,
                updated_at=now,
            )
            for i in range(pairs * 2)
        ]
        db.add_all(users)
        db.flush()
        shops = [
            Shop(
                owner_id=users[2 * k + 1].id,
                name=f"Realtime Shop {k}",
                description="",
                delivery_available=False,
                follower_count=0,
                is_active=True,
                created_at=now,
                updated_at=now,
            )
            for k in range(pairs)
        ]
        db.add_all(shops)
        db.flush()
        convs = [
            Conversation(
                buyer_id=users[2 * k].id,
                seller_id=users[2 * k + 1].id,
                shop_id=shops[k].id,
                buyer_unread_count=0,
                seller_unread_count=0,
                buyer_archived=False,
                seller_archived=False,
                created_at=now,
                updated_at=now,
            )
            for k in range(pairs)
        ]
        db.add_all(convs)
        db.commit()
        triples = [(c.id, c.buyer_id, c.seller_id) for c in convs]
    engine.dispose()
    return url, triples


async def login_all(base: str, user_ids: list[int], concurrency: int = 8) -> dict[int, str]:
    tokens: dict[int, str] = {}
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:

        async def one(uid: int, progress: Progress, task: Any) -> None:
            async with sem:
                # Users were inserted in order, so user id n is rt{n-1}.
                resp = await http.post(
                    "/api/auth/login", json={"email": f"rt{uid - 1:05d}@bench.example", "password": PASSWORD}
                )
                resp.raise_for_status()
                tokens[uid] = resp.json()["data"]["accessToken"]
                progress.advance(task)

        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("logging in", total=len(user_ids))
            await asyncio.gather(*(one(uid, progress, task) for uid in user_ids))
    return tokens


# --- chat -------------------------------------------------------------------------------------------------


@dataclass
class ChatRun:
    sent_at: dict[int, float] = field(default_factory=dict)  # message seq → monotonic send time
    expected: dict[int, tuple[int, int]] = field(default_factory=dict)  # seq → (recipient, sender)
    got: dict[tuple[int, int], list[float]] = field(default_factory=dict)  # (seq, user) → receive times
    errors: list[str] = field(default_factory=list)
    acks: list[tuple[int, float]] = field(default_factory=list)  # (seq, send → ack: stored) latency
    closed: int = 0


async def reader(ws: Any, uid: int, run: ChatRun) -> None:
    try:
        async for raw in ws:
            now = time.monotonic()
            frame = orjson.loads(raw)
            kind = frame["type"]
            if kind == "new_message":
                body = frame["data"]["message"]["body"]
                if body.startswith("m"):
                    seq = int(body[1:])
                    run.got.setdefault((seq, uid), []).append(now)
            elif kind == "ack":
                seq = int(frame["id"])
                if seq in run.sent_at:
                    run.acks.append((seq, now - run.sent_at[seq]))
            elif kind == "error":
                run.errors.append(str(frame["error"])[:200])
    except websockets.ConnectionClosed:
        run.closed += 1


async def chat(
    base: str,
    triples: list[tuple[int, int, int]],
    tokens: dict[int, str],
    *,
    rate: float,
    seconds: float,
    warmup: float = 3.0,
    settle: float = 5.0,
) -> dict[str, Any]:
    run = ChatRun()
    ws_base = base.replace("http://", "ws://")
    sockets: dict[int, Any] = {}
    sem = asyncio.Semaphore(50)

    async def connect(uid: int) -> None:
        async with sem:
            ws = await websockets.connect(f"{ws_base}/ws?token={tokens[uid]}", max_queue=None)
            hello = orjson.loads(await ws.recv())
            assert hello["type"] == "welcome", hello
            sockets[uid] = ws

    started = time.perf_counter()
    await asyncio.gather(*(connect(uid) for uid in tokens))
    connect_s = time.perf_counter() - started
    console.print(f"{len(sockets)} sockets open in {connect_s:.1f} s")
    readers = [asyncio.create_task(reader(ws, uid, run)) for uid, ws in sockets.items()]

    rng = random.Random(7)
    # The first seconds run the same traffic but are reported apart: the first message of each
    # conversation notifies (and queues an email), statement caches and the page cache are cold.
    warm = int(rate * warmup)
    total = warm + int(rate * seconds)
    t0 = time.monotonic() + 0.5
    lateness: list[float] = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"sending {rate:.0f} msg/s", total=total)
        for seq in range(total):
            due = t0 + seq / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            conv, buyer, seller = triples[rng.randrange(len(triples))]
            sender, recipient = (buyer, seller) if rng.random() < 0.5 else (seller, buyer)
            now = time.monotonic()
            lateness.append(now - due)
            run.sent_at[seq] = now
            run.expected[seq] = (recipient, sender)
            await sockets[sender].send(
                orjson.dumps({"type": "send_message", "id": seq, "conversationId": conv, "body": f"m{seq}"})
            )
            if seq % 100 == 0:
                progress.update(task, completed=seq)
    # Wait for stragglers: stop once everything expected has arrived or `settle` seconds pass.
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        if all((s, r) in run.got and (s, snd) in run.got for s, (r, snd) in run.expected.items()):
            break
        await asyncio.sleep(0.1)
    for ws in sockets.values():
        await ws.close()
    for t in readers:
        t.cancel()
    await asyncio.gather(*readers, return_exceptions=True)

    latencies: list[float] = []
    cold: list[float] = []
    lost, dups = 0, 0
    per_second: dict[int, list[float]] = {}
    for seq, (recipient, sender) in run.expected.items():
        for uid in (recipient, sender):
            times = run.got.get((seq, uid), [])
            if not times:
                lost += 1
            elif len(times) > 1:
                dups += len(times) - 1
            if uid == recipient and times:
                latency = (times[0] - run.sent_at[seq]) * 1000
                if seq < warm:
                    cold.append(latency)
                    continue
                latencies.append(latency)
                per_second.setdefault(int(run.sent_at[seq] - t0), []).append(latency)
    ms = [a * 1000 for n, a in run.acks if n >= warm]
    return {
        "clients": len(sockets),
        "messages": total - warm,
        "warmupMessages": warm,
        "warmupP99Ms": round(pct(cold, 0.99), 2),
        "rate": rate,
        "seconds": seconds,
        "connectSeconds": round(connect_s, 2),
        "deliveryP50Ms": round(pct(latencies, 0.50), 2),
        "deliveryP95Ms": round(pct(latencies, 0.95), 2),
        "deliveryP99Ms": round(pct(latencies, 0.99), 2),
        "deliveryMaxMs": round(max(latencies, default=float("nan")), 2),
        "ackP99Ms": round(pct(ms, 0.99), 2),
        "lost": lost,
        "duplicates": dups,
        "errorFrames": len(run.errors),
        "errorSamples": run.errors[:3],
        "closedEarly": run.closed,
        "senderLateP99Ms": round(pct([x * 1000 for x in lateness], 0.99), 2),
        # p99 of each second of the run: a steady tail or stalls at some moments
        "p99BySecondMs": [round(pct(v, 0.99), 1) for _, v in sorted(per_second.items())],
    }


def run_chat(
    clients: int, rate: float, seconds: float, workers: int, redis_url: str | None
) -> dict[str, Any]:
    console.rule("[bold]chat: WebSocket fan-out")
    url, triples = prepare_store(clients)
    env = {
        "STORE_SESSION_SWEEP_SECONDS": "0",
        "STORE_DELIVERY_POLL_SECONDS": "1",
        "STORE_CALL_SWEEP_SECONDS": "1",
        "STORE_WS_SEND_QUEUE": "5000",
        "STORE_LIVE_CHANNEL": f"bench:live:{secrets.token_hex(4)}",
    }
    if redis_url:
        env["STORE_REDIS_URL"] = redis_url
    with Server(url, workers, extra_env=env) as server:
        base = f"http://{HOST}:{server.port}"
        if redis_url:
            deadline = time.monotonic() + 20
            while server.get_json("/health")["data"]["realtime"]["fanout"] != "ok":
                if time.monotonic() > deadline:
                    raise RuntimeError("fan-out did not connect to Redis")
                time.sleep(0.2)
        user_ids = sorted({u for _, b, s in triples for u in (b, s)})
        tokens = asyncio.run(login_all(base, user_ids))
        pid = server.proc.pid if server.proc else None
        cpu0 = loadgen.tree_cpu_seconds(pid) if pid else None
        wall0 = time.monotonic()
        result = asyncio.run(chat(base, triples, tokens, rate=rate, seconds=seconds))
        cpu1 = loadgen.tree_cpu_seconds(pid) if pid else None
        if cpu0 is not None and cpu1 is not None:
            result["serverCpuPercent"] = round(100 * (cpu1 - cpu0) / (time.monotonic() - wall0), 1)
        result["workers"] = workers
        result["fanout"] = "redis" if redis_url else "in-process"
    result["pass"] = (
        result["deliveryP99Ms"] <= TARGET_CHAT_P99_MS
        and result["lost"] == 0
        and result["duplicates"] == 0
        and result["errorFrames"] == 0
    )
    return result


# --- calls and cached detail (their own modules) --------------------------------------------------------


def run_calls(n: int, warmup: int = 2) -> dict[str, Any]:
    console.rule("[bold]calls: initiate → aiortc connected")
    from bench import call_setup

    with call_setup.local_server() as url:
        times = asyncio.run(call_setup.measure_call_setup(url, warmup + n))[warmup:]
    return {
        "calls": len(times),
        "p50S": round(statistics.median(times), 3),
        "p95S": round(pct(times, 0.95), 3),
        "maxS": round(max(times), 3),
        "pass": pct(times, 0.95) <= TARGET_CALL_SETUP_S,
    }


def run_detail(seconds: float) -> dict[str, Any]:
    console.rule("[bold]detail: cached product detail at 200 req/s")
    from bench import cache_detail

    failed = False
    try:
        cache_detail.main(backend=Backend.sqlite, seconds=seconds, modes="redis,in-process")
    except typer.Exit as exc:
        failed = exc.exit_code != 0
    runs = json.loads(cache_detail.RESULTS.read_text())["sqlite"]["runs"]
    return {
        "runs": {
            r["mode"]: {k: r[k] for k in ("p50Ms", "p95Ms", "p99Ms", "errors", "hitRatio")} for r in runs
        },
        "pass": not failed and all(r["pass"] for r in runs),
    }


def print_chat(result: dict[str, Any]) -> None:
    table = Table(title=f"chat ({result['fanout']}, {result['workers']} worker(s))")
    for col in (
        "clients",
        "msg/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "lost",
        "dup",
        "errors",
        "server CPU %",
    ):
        table.add_column(col, justify="right")
    table.add_row(
        str(result["clients"]),
        f"{result['rate']:.0f}",
        str(result["deliveryP50Ms"]),
        str(result["deliveryP95Ms"]),
        str(result["deliveryP99Ms"]),
        str(result["deliveryMaxMs"]),
        str(result["lost"]),
        str(result["duplicates"]),
        str(result["errorFrames"]),
        str(result.get("serverCpuPercent", "")),
    )
    console.print(table)


@cli.command()
def main(
    only: Annotated[str, typer.Option(help="chat, calls, detail or all")] = "all",
    clients: Annotated[int, typer.Option(help="WebSocket clients (users)")] = 1000,
    rate: Annotated[float, typer.Option(help="chat messages per second")] = 500.0,
    seconds: Annotated[float, typer.Option(help="seconds of chat load")] = 20.0,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
    redis_url: Annotated[str | None, typer.Option(help="fan out through this Redis")] = None,
    calls: Annotated[int, typer.Option(help="calls to set up")] = 20,
    detail_seconds: Annotated[float, typer.Option(help="seconds of cached-detail load")] = 20.0,
) -> None:
    results: dict[str, Any] = {"at": datetime.now(UTC).isoformat(timespec="seconds")}
    if only in ("chat", "all"):
        results["chat"] = run_chat(clients, rate, seconds, workers, redis_url)
        print_chat(results["chat"])
    if only in ("calls", "all"):
        results["calls"] = run_calls(calls)
        console.print(results["calls"])
    if only in ("detail", "all"):
        results["detail"] = run_detail(detail_seconds)
        console.print(results["detail"])
    figures.save(RESULTS, results, console)
    console.print_json(json.dumps(results, default=str))
    failed = [k for k, v in results.items() if isinstance(v, dict) and not v.get("pass", True)]
    if failed:
        console.print(f"[red]targets missed:[/] {', '.join(failed)}")
        raise typer.Exit(1)


if __name__ == "__main__":
    cli()
