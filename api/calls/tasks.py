"""The missed-call timer: calls nobody answered within `call_ring_timeout_seconds` become missed.

It keeps no state of its own: each sweep asks the database which calls are still unanswered past
their timeout (by `created_at` against the app's clock), so calls that were ringing when a process
stopped are marked missed by whichever process sweeps next. Several processes may sweep at once: the
conditional UPDATE in the service lets only one of them mark each call (one event, one notification).
"""

from __future__ import annotations

import asyncio

import structlog
from fastapi import FastAPI

from api.calls.service import expire_unanswered
from api.core.settings import Settings

log = structlog.get_logger("calls")


async def run_missed_call_timer(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    if not settings.call_sweep_seconds:
        return  # turned off
    while True:
        try:
            n = await asyncio.to_thread(expire_unanswered, app.state.store, settings, app.state.clock.now())
            if n:
                log.info("calls_missed", count=n)
        except Exception:  # the timer must outlive a database hiccup
            log.exception("missed_call_sweep_failed")
        await asyncio.sleep(settings.call_sweep_seconds)
