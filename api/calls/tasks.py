"""The missed-call timer. Stub for wiring."""

from __future__ import annotations

from fastapi import FastAPI


async def run_missed_call_timer(app: FastAPI) -> None:
    return None
