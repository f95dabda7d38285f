"""Durable delivery of notifications to email, webhook and Telegram. Stub for wiring."""

from __future__ import annotations

from fastapi import FastAPI


async def run_delivery_worker(app: FastAPI) -> None:
    return None
