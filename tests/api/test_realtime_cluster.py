"""Two API processes deliver each other's live events through Redis, and survive Redis going away.

Each test starts its own redis-server on a free port (so it can stop and restart it) and two uvicorn
processes on the test's database, then talks to them as clients do: REST over httpx, sockets over
`websockets`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import orjson
import pytest
import websockets
from fastapi.testclient import TestClient

from api.core.clock import ManualClock
from api.core.settings import Settings
from api.db.engine import Store
from tests.conftest import TEST_SECRET, service_missing
from tests.helpers import Actor, Api, data

pytestmark = pytest.mark.redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Any, timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            value = check()
            if value:
                return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class RedisServer:
    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            service_missing("redis-server", "the binary is needed to stop and restart Redis in a test")
        self.binary = str(binary)
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(
            lambda: socket.create_connection(("127.0.0.1", self.port), timeout=0.2), what="redis-server"
        )

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class ApiProcess:
    def __init__(self, settings: Settings, redis_url: str, tmp: Path, name: str) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "STORE_ENVIRONMENT": "test",
            "STORE_DATABASE_URL": settings.database_url,
            "STORE_REDIS_URL": redis_url,
            "STORE_JWT_SECRET": TEST_SECRET,
            "STORE_AUTO_MIGRATE": "false",
            "STORE_DATA_DIR": str(tmp / name),
            "STORE_SESSION_SWEEP_SECONDS": "0",
            "STORE_DELIVERY_POLL_SECONDS": "0",
            "STORE_CALL_SWEEP_SECONDS": "0",
            "STORE_LOG_LEVEL": "WARNING",
        }
        self.log = open(tmp / f"{name}.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "api.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        wait_until(
            lambda: httpx.get(f"{self.url}/health", timeout=1).status_code == 200, 60, what=f"api {name}"
        )

    def realtime(self) -> dict[str, Any]:
        health: dict[str, Any] = data(httpx.get(f"{self.url}/health", timeout=5))["realtime"]
        return health

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture
def cluster(
    settings: Settings, store: Store, clock: ManualClock, tmp_path: Path
) -> Iterator[tuple[RedisServer, ApiProcess, ApiProcess, Api]]:
    redis = RedisServer(tmp_path)
    redis.start()
    a = ApiProcess(settings, redis.url, tmp_path, "a")
    b = ApiProcess(settings, redis.url, tmp_path, "b")
    try:
        for proc in (a, b):
            wait_until(lambda p=proc: p.realtime()["fanout"] == "ok", what="fan-out connected")
        with httpx.Client(base_url=a.url, timeout=10) as http:
            yield redis, a, b, Api(cast(TestClient, http), store, clock)
    finally:
        a.stop()
        b.stop()
        redis.stop()


async def open_socket(base: str, user: Actor) -> Any:
    ws = await websockets.connect(f"{base.replace('http', 'ws')}/ws?token={user.access_token}")
    welcome = orjson.loads(await ws.recv())
    assert welcome["type"] == "welcome"
    return ws


async def next_of(ws: Any, kind: str, timeout: float = 5.0) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        while True:
            frame: dict[str, Any] = orjson.loads(await ws.recv())
            if frame["type"] == kind:
                return frame

    return await asyncio.wait_for(read(), timeout)


async def all_of(ws: Any, kind: str, quiet: float = 1.0) -> list[dict[str, Any]]:
    """Every frame of a kind until none has come for `quiet` seconds."""
    frames = []
    with contextlib.suppress(TimeoutError):
        while True:
            frames.append(await next_of(ws, kind, quiet))
    return frames


async def nothing_of(ws: Any, kind: str, wait: float = 0.5) -> None:
    with contextlib.suppress(TimeoutError):
        frame = await next_of(ws, kind, wait)
        raise AssertionError(f"unexpected {kind}: {frame}")


def open_chat(api: Api) -> tuple[Actor, Actor, int]:
    buyer, seller = api.user(), api.user()
    shop = api.shop(seller)
    conv = data(
        api.client.post("/api/conversations", json={"shopId": shop["id"]}, headers=buyer.headers), 201
    )
    return buyer, seller, int(conv["id"])


def test_two_processes_deliver_each_others_messages_through_redis(cluster: Any) -> None:
    _, a, b, api = cluster
    buyer, seller, conv_id = open_chat(api)

    async def scenario() -> None:
        buyer_ws = await open_socket(a.url, buyer)  # the buyer is on process A
        seller_ws = await open_socket(b.url, seller)  # the seller on process B
        async with httpx.AsyncClient(base_url=b.url) as b_http:
            resp = await b_http.post(
                f"/api/conversations/{conv_id}/messages", json={"body": "from B"}, headers=seller.headers
            )
            assert resp.status_code == 201
        await buyer_ws.send(
            orjson.dumps({"type": "send_message", "conversationId": conv_id, "body": "from A", "id": 1})
        )
        # Each side's socket gets both messages (its own too, for its other devices), each exactly once:
        # no second copy from the local and the Redis paths both.
        for ws in (buyer_ws, seller_ws):
            bodies = [f["data"]["message"]["body"] for f in await all_of(ws, "new_message")]
            assert sorted(bodies) == ["from A", "from B"]
        await seller_ws.send(orjson.dumps({"type": "typing", "conversationId": conv_id}))
        assert (await next_of(buyer_ws, "typing"))["data"]["userId"] == seller.id
        await buyer_ws.close()
        await seller_ws.close()

    asyncio.run(scenario())
    assert a.realtime()["mode"] == "redis" and b.realtime()["mode"] == "redis"


def test_redis_going_away_keeps_local_sockets_working_and_fanout_resumes(cluster: Any) -> None:
    redis, a, b, api = cluster
    buyer, seller, conv_id = open_chat(api)

    async def send(ws: Any, body: str) -> None:
        await ws.send(orjson.dumps({"type": "send_message", "conversationId": conv_id, "body": body}))

    async def scenario() -> None:
        buyer_on_a = await open_socket(a.url, buyer)
        seller_on_a = await open_socket(a.url, seller)
        seller_on_b = await open_socket(b.url, seller)

        redis.stop()
        await asyncio.to_thread(wait_until, lambda: a.realtime()["fanout"] == "down", 15, "fan-out down")
        # The API keeps serving, and sockets on the same process keep getting their events.
        await send(buyer_on_a, "while redis is down")
        got = await next_of(seller_on_a, "new_message")
        assert got["data"]["message"]["body"] == "while redis is down"
        await nothing_of(seller_on_b, "new_message")  # B could not hear of it: pub/sub keeps nothing
        assert a.realtime()["mode"] == "in-process"

        redis.start()  # same port: the processes reconnect on their own
        for proc in (a, b):
            await asyncio.to_thread(
                wait_until, lambda p=proc: p.realtime()["fanout"] == "ok", 20, "fan-out back"
            )
        await send(buyer_on_a, "redis is back")
        for ws in (seller_on_a, seller_on_b):
            got = await next_of(ws, "new_message")
            assert got["data"]["message"]["body"] == "redis is back"
        for ws in (buyer_on_a, seller_on_a, seller_on_b):
            await ws.close()

    asyncio.run(scenario())
    stored = data(httpx.get(f"{b.url}/api/conversations/{conv_id}/messages", headers=seller.headers))
    assert {"while redis is down", "redis is back"} <= {m["body"] for m in stored}
