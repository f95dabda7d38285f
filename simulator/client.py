"""Thin clients over the store API's envelope: over HTTP (httpx, for a running server) or straight into
the ASGI app in this process (the backfill).

Both speak to the same app through the same middleware, routing, validation and handlers; the in-process
one only skips the sockets and httpx's client machinery (URL merging, cookies, redirects), which cost
more than most of the store's handlers.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from starlette.types import ASGIApp, Message


class ApiFailed(Exception):
    def __init__(self, method: str, path: str, status: int, error: Any) -> None:
        super().__init__(f"{method} {path} -> {status}: {error}")
        self.status = status
        self.error = error


class StoreClient:
    """The calls the simulator makes; subclasses move the bytes."""

    def __init__(self) -> None:
        self.requests = 0
        self.failures = 0  # answers outside 2xx, expected ones (fraudsters' failed logins) included

    async def _request(
        self, method: str, path: str, headers: dict[str, str], params: dict[str, Any] | None, body: bytes
    ) -> tuple[int, bytes]:
        raise NotImplementedError

    async def send(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """(status, data or error) without raising: for calls whose failure is part of the plan."""
        h = dict(headers or {})
        if token:
            h["authorization"] = f"Bearer {token}"
        body = b""
        if json is not None:
            body = orjson.dumps(json)
            h["content-type"] = "application/json"
        self.requests += 1
        status, raw = await self._request(method, path, h, params, body)
        payload = orjson.loads(raw) if raw else {}
        if 200 <= status < 300:
            return status, payload["data"]
        self.failures += 1
        return status, payload.get("error", payload)

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The envelope's data; raises ApiFailed on any error answer."""
        status, data = await self.send(method, path, **kwargs)
        if status >= 400:
            raise ApiFailed(method, path, status, data)
        return data


class HttpStoreClient(StoreClient):
    """Over the network to a running server (live mode)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        super().__init__()
        self.http = http

    async def _request(
        self, method: str, path: str, headers: dict[str, str], params: dict[str, Any] | None, body: bytes
    ) -> tuple[int, bytes]:
        resp = await self.http.request(method, path, content=body or None, params=params, headers=headers)
        return resp.status_code, resp.content


class AsgiStoreClient(StoreClient):
    """Straight into an ASGI app in this process: one HTTP/1.1 request per call, as a server would pass it."""

    def __init__(self, app: ASGIApp, *, client: tuple[str, int] = ("10.0.0.1", 50000)) -> None:
        super().__init__()
        self.app = app
        self.client = client

    async def _request(
        self, method: str, path: str, headers: dict[str, str], params: dict[str, Any] | None, body: bytes
    ) -> tuple[int, bytes]:
        raw_headers = [(b"host", b"simulator"), (b"user-agent", b"store-simulator")]
        raw_headers += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        if body:
            raw_headers.append((b"content-length", str(len(body)).encode()))
        query = urlencode({k: v for k, v in params.items() if v is not None}) if params else ""
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": query.encode(),
            "headers": raw_headers,
            "client": self.client,
            "server": ("simulator", 80),
            "state": {},
        }
        sent = False
        status = 500
        chunks: list[bytes] = []

        async def receive() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)
