"""The app the benchmark serves: the real store API plus one bare JSON route, in the same process.

    uvicorn --factory bench.server:create_app

Settings come from the environment (`STORE_*`), exactly as in production. `GET /__bare` returns a small
constant dict through the same middleware and the same sync-handler path (a thread-pool hop, like every
store handler) but touches no database and builds no envelope: it is the ceiling the listing endpoint's
throughput is compared with.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from api.core.settings import Settings

BARE_PATH = "/__bare"
BARE_BODY: dict[str, Any] = {"status": "ok", "service": "bench", "items": [1, 2, 3]}


def create_app() -> FastAPI:
    from api.main import create_app as create_store_app

    app = create_store_app(Settings())

    @app.get(BARE_PATH, include_in_schema=False)
    def bare() -> dict[str, Any]:
        return BARE_BODY

    return app
