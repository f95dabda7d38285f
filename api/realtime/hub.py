"""Local sockets and the cross-process bus. Stub for wiring."""

from __future__ import annotations

from fastapi import FastAPI


async def run_hub(app: FastAPI) -> None:
    return None
