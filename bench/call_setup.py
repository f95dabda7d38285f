"""Call set-up time: from `POST /api/calls/initiate` to two aiortc peers connected through the API's
signaling over /ws, on loopback. Target: <= 1 s.

    .venv/bin/python -m bench.call_setup                     # serves the app itself (temporary SQLite)
    .venv/bin/python -m bench.call_setup --base-url http://127.0.0.1:8000 --n 50
    .venv/bin/python -m bench.call_setup --database-url postgresql+psycopg://postgres@127.0.0.1/bench

What one measurement covers, as a client app would do it: both users already hold a socket; the
caller initiates over REST and sends its SDP offer and ICE candidates over /ws right away (allowed
while the call rings); the receiver gets `call_incoming`, accepts over REST, answers the offer and
sends its own candidates; the clock stops when *both* RTCPeerConnections report `connected` (ICE and
DTLS done). Each call is then ended over REST.

The peer code here is also what tests/api/test_calls_webrtc.py drives. aioice leaves 127.0.0.1 out
of the host candidates it gathers, so on a machine (or container) with loopback only aiortc would
find no path: `loopback_ice()` makes it gather 127.0.0.1 alone, and no STUN server is configured, so
nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import secrets
import socket
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import aioice.ice
import httpx
import typer
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp
from websockets.asyncio.client import ClientConnection, connect

TARGET_SECONDS = 1.0
PASSWORD = "bench-password-123"
_seq = itertools.count(1)


# --- aiortc on loopback ------------------------------------------------------------------------------


@contextlib.contextmanager
def loopback_ice() -> Iterator[None]:
    """While active, aiortc's ICE agent (aioice) gathers one host candidate: 127.0.0.1."""
    original = aioice.ice.get_host_addresses

    def loopback_only(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return ["127.0.0.1"] if use_ipv4 else []

    aioice.ice.get_host_addresses = loopback_only
    try:
        yield
    finally:
        aioice.ice.get_host_addresses = original


def new_peer() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))  # no STUN: loopback needs none


def split_candidates(sdp: str) -> tuple[str, list[dict[str, Any]]]:
    """The SDP without its candidate lines, and those candidates as browsers trickle them
    (RTCIceCandidateInit), ending each media section with an empty end-of-candidates one."""
    kept: list[str] = []
    candidates: list[dict[str, Any]] = []
    mline, mid = -1, None

    def end_of_section() -> None:
        if mline >= 0:
            candidates.append({"candidate": "", "sdpMid": mid, "sdpMLineIndex": mline})

    for line in sdp.splitlines():
        if line.startswith("m="):
            end_of_section()
            mline, mid = mline + 1, None
        elif line.startswith("a=mid:"):
            mid = line[len("a=mid:") :]
        if line.startswith("a=candidate:"):
            candidates.append({"candidate": line[2:], "sdpMid": mid, "sdpMLineIndex": mline})
            continue
        if line == "a=end-of-candidates":
            continue
        kept.append(line)
    end_of_section()
    return "\r\n".join(kept) + "\r\n", candidates


async def opened(channel: RTCDataChannel, timeout: float = 5.0) -> RTCDataChannel:
    """The channel once it is open (a caller's channel opens when SCTP is up, after `connected`)."""
    if channel.readyState != "open":
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def _open() -> None:
            if not ready.done():
                ready.set_result(None)

        channel.once("open", _open)
        if channel.readyState != "open":
            await asyncio.wait_for(ready, timeout)
    return channel


async def add_candidate(pc: RTCPeerConnection, init: dict[str, Any]) -> None:
    """Applies a trickled RTCIceCandidateInit (an empty one is end-of-candidates)."""
    text = init.get("candidate") or ""
    if not text:
        await pc.addIceCandidate(None)
        return
    candidate = candidate_from_sdp(text.removeprefix("candidate:"))
    candidate.sdpMid = init.get("sdpMid")
    candidate.sdpMLineIndex = init.get("sdpMLineIndex")
    await pc.addIceCandidate(candidate)


# --- a /ws client ------------------------------------------------------------------------------------


class SignalError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.error = error


@dataclass
class WsClient:
    """One user's socket: frames are sorted into one queue per type; replies are matched by id."""

    ws: ClientConnection
    frames: defaultdict[str, asyncio.Queue[dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(asyncio.Queue)
    )
    pending: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    reader: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, base_url: str, token: str) -> WsClient:
        ws = await connect(base_url.replace("http", "ws", 1) + f"/ws?token={token}", max_size=2**20)
        client = cls(ws)
        client.reader = asyncio.create_task(client._read())
        await client.next("welcome")
        return client

    async def _read(self) -> None:
        async for raw in self.ws:
            frame = json.loads(raw)
            fut = self.pending.pop(str(frame.get("id")), None) if frame["type"] in ("ack", "error") else None
            if fut is not None and not fut.done():
                fut.set_result(frame)
            else:
                self.frames[frame["type"]].put_nowait(frame)

    async def request(self, kind: str, timeout: float = 5.0, **fields: Any) -> dict[str, Any]:
        """Sends a frame and returns its ack's data; an error frame raises SignalError."""
        frame_id = f"f{next(_seq)}"
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[frame_id] = fut
        await self.ws.send(json.dumps({"type": kind, "id": frame_id, **fields}))
        reply = await asyncio.wait_for(fut, timeout)
        if reply["type"] == "error":
            raise SignalError(reply["error"])
        data: dict[str, Any] = reply["data"]
        return data

    async def next(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        """The next server frame of this type (the whole frame: type, data, meta)."""
        return await asyncio.wait_for(self.frames[kind].get(), timeout)

    async def close(self) -> None:
        await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.reader


# --- the two ends of a call ----------------------------------------------------------------------------


class CallPeer:
    """One side of a call: an RTCPeerConnection signalled through the API's /ws frames."""

    def __init__(self, ws: WsClient, call_id: int) -> None:
        self.ws = ws
        self.call_id = call_id
        self.pc = new_peer()
        self.connected = asyncio.Event()
        self.failed = asyncio.Event()
        self.channel: asyncio.Future[RTCDataChannel] = asyncio.get_running_loop().create_future()
        self.messages: asyncio.Queue[str] = asyncio.Queue()
        self._ice_task: asyncio.Task[None] | None = None

        @self.pc.on("connectionstatechange")
        def _state() -> None:
            if self.pc.connectionState == "connected":
                self.connected.set()
            elif self.pc.connectionState in ("failed", "closed"):
                self.failed.set()

        @self.pc.on("datachannel")
        def _channel(channel: RTCDataChannel) -> None:
            self._use(channel)

    def _use(self, channel: RTCDataChannel) -> None:
        @channel.on("message")
        def _message(message: str | bytes) -> None:
            self.messages.put_nowait(message if isinstance(message, str) else message.decode())

        if not self.channel.done():
            self.channel.set_result(channel)

    async def _send_local(self, kind: str) -> None:
        """Sends our description without candidates, then trickles the candidates one by one."""
        local = self.pc.localDescription
        sdp, candidates = split_candidates(local.sdp)
        await self.ws.request(kind, callId=self.call_id, sdp=sdp)
        for init in candidates:
            await self.ws.request("ice_candidate", callId=self.call_id, candidate=init)

    def _apply_remote_candidates(self) -> None:
        async def loop() -> None:
            while True:
                frame = await self.ws.frames["ice_candidate"].get()
                if frame["data"]["callId"] == self.call_id:
                    await add_candidate(self.pc, frame["data"]["candidate"])

        self._ice_task = asyncio.create_task(loop())

    async def offer(self) -> None:
        """The caller's side: opens a data channel and sends the offer (gathering happens here)."""
        self._use(self.pc.createDataChannel("chat"))
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self._send_local("call_offer")

    async def take_answer(self, timeout: float = 5.0) -> None:
        frame = await self.ws.next("call_answer", timeout)
        await self.pc.setRemoteDescription(RTCSessionDescription(frame["data"]["sdp"], "answer"))
        self._apply_remote_candidates()

    async def answer(self, timeout: float = 5.0) -> dict[str, Any]:
        """The receiver's side: waits for the offer, answers it. Returns the offer frame's data."""
        frame = await self.ws.next("call_offer", timeout)
        await self.pc.setRemoteDescription(RTCSessionDescription(frame["data"]["sdp"], "offer"))
        self._apply_remote_candidates()
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await self._send_local("call_answer")
        data: dict[str, Any] = frame["data"]
        return data

    async def wait_connected(self, timeout: float = 10.0) -> None:
        waits = [asyncio.create_task(self.connected.wait()), asyncio.create_task(self.failed.wait())]
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for task in waits:
            task.cancel()
        if not self.connected.is_set():
            raise TimeoutError(f"peer connection state: {self.pc.connectionState}")

    async def close(self) -> None:
        if self._ice_task is not None:
            self._ice_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._ice_task
        await self.pc.close()


# --- the measurement ----------------------------------------------------------------------------------


async def register(http: httpx.AsyncClient) -> tuple[int, str]:
    """A fresh user; returns (id, access token)."""
    name = f"call{secrets.token_hex(5)}"
    body = {"email": f"{name}@example.com", "username": name, "password": PASSWORD, "role": "buyer"}
    resp = await http.post("/api/auth/register", json=body)
    resp.raise_for_status()
    user_id = int(resp.json()["data"]["id"])
    resp = await http.post("/api/auth/login", json={"email": body["email"], "password": PASSWORD})
    resp.raise_for_status()
    return user_id, str(resp.json()["data"]["accessToken"])


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def one_call(
    http: httpx.AsyncClient,
    caller_ws: WsClient,
    caller_token: str,
    callee_ws: WsClient,
    callee_token: str,
    receiver_id: int,
) -> float:
    """One call set up and torn down; returns seconds from initiate to both peers connected."""
    start = time.perf_counter()
    resp = await http.post(
        "/api/calls/initiate",
        json={"receiverId": receiver_id, "callType": "video"},
        headers=_auth(caller_token),
    )
    resp.raise_for_status()
    call_id = int(resp.json()["data"]["id"])
    caller, callee = CallPeer(caller_ws, call_id), CallPeer(callee_ws, call_id)

    async def caller_side() -> None:
        await caller.offer()
        await caller.take_answer()
        await caller.wait_connected()

    async def callee_side() -> None:
        incoming = await callee_ws.next("call_incoming")
        assert incoming["data"]["id"] == call_id
        accepted = await http.put(f"/api/calls/{call_id}/accept", headers=_auth(callee_token))
        accepted.raise_for_status()
        await callee.answer()
        await callee.wait_connected()

    try:
        await asyncio.gather(caller_side(), callee_side())
        elapsed = time.perf_counter() - start
    finally:
        await caller.close()
        await callee.close()
    (await http.put(f"/api/calls/{call_id}/end", headers=_auth(caller_token))).raise_for_status()
    for ws in (caller_ws, callee_ws):  # leave nothing of this call for the next one to read
        for kind in ("call_incoming", "call_accepted", "call_ended", "ice_candidate"):
            while not ws.frames[kind].empty():
                ws.frames[kind].get_nowait()
    return elapsed


async def measure_call_setup(base_url: str, n: int, gap: float = 0.25) -> list[float]:
    """Sets up `n` calls one after another between two fresh users; seconds for each.

    `gap` seconds pass between calls: each call sends a few frames per socket, and back-to-back
    calls would exceed the per-socket message rate (settings.ws_rate_per_second), which closes the
    socket as a flood. No real client sets up several calls a second."""
    with loopback_ice():
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
            (_, caller_token), (receiver_id, callee_token) = await register(http), await register(http)
            caller_ws = await WsClient.connect(base_url, caller_token)
            callee_ws = await WsClient.connect(base_url, callee_token)
            try:
                times: list[float] = []
                for i in range(n):
                    if i:
                        await asyncio.sleep(gap)
                    times.append(
                        await one_call(http, caller_ws, caller_token, callee_ws, callee_token, receiver_id)
                    )
                return times
            finally:
                await caller_ws.close()
                await callee_ws.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


# --- command line ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def local_server(database_url: str | None = None) -> Iterator[str]:
    """The real app, on a temporary SQLite store unless a database is given (it is migrated), served
    by uvicorn on a free loopback port."""
    import uvicorn

    from api.core.settings import Environment, Settings
    from api.main import create_app

    with tempfile.TemporaryDirectory(prefix="call-bench-") as tmp:
        settings = Settings(
            environment=Environment.test,
            data_dir=Path(tmp),
            database_url=database_url or f"sqlite:///{tmp}/store.db",
            jwt_secret=secrets.token_urlsafe(48),
            auto_migrate=True,
            redis_url=None,
            log_level="WARNING",
            _env_file=None,
        )
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = uvicorn.Server(
            uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.05)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(timeout=10)


cli = typer.Typer(add_completion=False, help=__doc__)


@cli.command()
def main(
    base_url: Annotated[
        str | None, typer.Option(help="A running API; by default one is served here on a temporary SQLite.")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="The store of the app served here (default: a temporary SQLite).")
    ] = None,
    n: Annotated[int, typer.Option(min=1, help="Calls to set up, one after another.")] = 30,
    warmup: Annotated[int, typer.Option(min=0, help="Calls set up first and not counted.")] = 2,
    gap: Annotated[float, typer.Option(min=0, help="Seconds between two calls.")] = 0.25,
) -> None:
    for noisy in ("aioice", "aiortc", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    with contextlib.ExitStack() as stack:
        url = base_url or stack.enter_context(local_server(database_url))
        times = asyncio.run(measure_call_setup(url, warmup + n, gap))[warmup:]
    p50, p95, worst = statistics.median(times), percentile(times, 0.95), max(times)
    print(f"call set-up, initiate -> both peers connected, {n} calls on {url}")
    print(f"  p50 {p50 * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms   max {worst * 1000:7.1f} ms")
    verdict = "meets" if p95 <= TARGET_SECONDS else "MISSES"
    print(f"  target p95 <= {TARGET_SECONDS:.1f} s: {verdict}")
    if p95 > TARGET_SECONDS:
        raise typer.Exit(1)


if __name__ == "__main__":
    cli()
