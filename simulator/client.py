"""A thin client over the store API's envelope: an httpx.AsyncClient on the in-process app or a server."""

from __future__ import annotations

from typing import Any

import httpx


class ApiFailed(Exception):
    def __init__(self, method: str, path: str, status: int, error: Any) -> None:
        super().__init__(f"{method} {path} -> {status}: {error}")
        self.status = status
        self.error = error


class StoreClient:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.requests = 0
        self.failures = 0  # answers outside 2xx, expected ones (fraudsters' failed logins) included

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
            h["Authorization"] = f"Bearer {token}"
        self.requests += 1
        resp = await self.http.request(method, path, json=json, params=params, headers=h)
        body = resp.json()
        if resp.is_success:
            return resp.status_code, body["data"]
        self.failures += 1
        return resp.status_code, body.get("error", body)

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The envelope's data; raises ApiFailed on any error answer."""
        status, data = await self.send(method, path, **kwargs)
        if status >= 400:
            raise ApiFailed(method, path, status, data)
        return data
