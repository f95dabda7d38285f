"""Drives the API as real clients do: sign up, log in, then call with a bearer token."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select, text

from api.auth import service as auth_service
from api.core.clock import ManualClock
from api.db.engine import Store
from api.outbox.models import Event
from api.outbox.service import Uow

PASSWORD = "correct horse battery"
_seq = itertools.count(1)


def data(resp: Response, status: int = 200) -> Any:
    """The envelope's data, after checking the status and the envelope's shape."""
    assert resp.status_code == status, f"{resp.status_code} != {status}: {resp.text}"
    body = resp.json()
    assert body["success"] is True, body
    assert set(body["meta"]) >= {"timestamp", "version", "requestId"}
    assert resp.headers["x-request-id"] == body["meta"]["requestId"]
    return body["data"]


def error(resp: Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The envelope's error, after checking the status, the shape and optionally the code."""
    assert resp.status_code == status, f"{resp.status_code} != {status}: {resp.text}"
    body = resp.json()
    assert body["success"] is False, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["meta"]["requestId"] == resp.headers["x-request-id"]
    if code is not None:
        assert body["error"]["code"] == code, body
    err: dict[str, Any] = body["error"]
    return err


@dataclass
class Actor:
    id: int
    email: str
    username: str
    role: str
    access_token: str
    refresh_token: str
    session_id: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


class Api:
    def __init__(self, client: TestClient, store: Store, clock: ManualClock) -> None:
        self.client = client
        self.store = store
        self.clock = clock

    # --- people -------------------------------------------------------------------------------
    def register(
        self,
        *,
        role: str = "buyer",
        email: str | None = None,
        username: str | None = None,
        password: str = PASSWORD,
    ) -> dict[str, Any]:
        n = next(_seq)
        body = {
            "email": email or f"user{n}@example.com",
            "username": username or f"user{n}",
            "password": password,
            "role": role if role in ("buyer", "seller") else "buyer",
        }
        user: dict[str, Any] = data(self.client.post("/api/auth/register", json=body), 201)
        if role not in ("buyer", "seller"):
            self.grant(user["id"], role)
            user["role"] = role
        return user

    def grant(self, user_id: int, role: str) -> None:
        with self.store.write() as db:
            auth_service.set_role(Uow(session=db, now=self.clock.now()), user_id, role)
            db.commit()

    def login(self, email: str, password: str = PASSWORD, **extra: Any) -> dict[str, Any]:
        tokens: dict[str, Any] = data(
            self.client.post("/api/auth/login", json={"email": email, "password": password, **extra})
        )
        return tokens

    def user(self, role: str = "buyer") -> Actor:
        u = self.register(role=role)
        t = self.login(u["email"])
        return Actor(
            id=u["id"],
            email=u["email"],
            username=u["username"],
            role=role,
            access_token=t["accessToken"],
            refresh_token=t["refreshToken"],
            session_id=t["sessionId"],
        )

    # --- catalogue ----------------------------------------------------------------------------
    def shop(self, owner: Actor, **fields: Any) -> dict[str, Any]:
        body = {"name": f"Shop {next(_seq)}", "deliveryAvailable": True, **fields}
        shop: dict[str, Any] = data(self.client.post("/api/shops", json=body, headers=owner.headers), 201)
        return shop

    def category(self, admin: Actor, name: str | None = None) -> dict[str, Any]:
        name = name or f"Category {next(_seq)}"
        cat: dict[str, Any] = data(
            self.client.post("/api/categories", json={"name": name}, headers=admin.headers), 201
        )
        return cat

    def product(self, owner: Actor, shop_id: int, **fields: Any) -> dict[str, Any]:
        body = {
            "name": f"Product {next(_seq)}",
            "description": "A fine thing",
            "price": "25.00",
            "currency": "USDT",
            "stock": 10,
            **fields,
        }
        product: dict[str, Any] = data(
            self.client.post(f"/api/shops/{shop_id}/products", json=body, headers=owner.headers), 201
        )
        return product

    # --- the store's own records ----------------------------------------------------------------
    def events(self, event_type: str | None = None) -> list[Event]:
        with self.store.read() as db:
            q = select(Event).order_by(Event.id)
            if event_type:
                q = q.where(Event.event_type == event_type)
            return list(db.execute(q).scalars())

    def count(self, table: str) -> int:
        with self.store.read() as db:
            return int(db.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())

    def event_count(self) -> int:
        with self.store.read() as db:
            return int(db.execute(select(func.count()).select_from(Event)).scalar_one())
