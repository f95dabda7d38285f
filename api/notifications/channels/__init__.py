"""External delivery channels. Each one sends an `Outgoing` or raises `DeliveryError`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from api.core.settings import Settings

MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class Outgoing:
    """A claimed delivery with everything needed to send it (no database access while sending)."""

    id: int
    notification_id: int | None
    user_id: int
    username: str
    channel: str
    target: str
    type: str
    title: str
    body: str
    data: dict[str, Any]
    created_at: datetime
    attempts: int  # including the one being made
    webhook_secret: str | None = None


@dataclass(frozen=True)
class SendContext:
    settings: Settings
    http: httpx.AsyncClient
    now: datetime


class DeliveryError(Exception):
    """A failed attempt. `permanent` failures (missing configuration, a forbidden target) are not
    retried: they go to the dead letters at once, with the reason in last_error."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message[:MAX_ERROR_CHARS])
        self.permanent = permanent


Sender = Callable[[Outgoing, SendContext], Awaitable[None]]


def describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
