"""The hand-off from a committed transaction to live delivery.

Services call `Uow.push(...)` inside their transaction; the pushes are held on the session and handed
to the relay only after the commit succeeded, so a client never hears of a change that rolled back.
The relay is attached to a bus once the app starts; until then (CLI, migrations, scripts) pushes are
dropped, which is right: nobody is connected to a process that serves no sockets."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class LivePush:
    """One server-to-client event. Exactly one of `user_ids` or `topic` says who gets it."""

    type: str
    data: dict[str, Any]
    user_ids: tuple[int, ...] = ()
    topic: str | None = None


class LiveSink(Protocol):
    def publish_batch(self, pushes: Iterable[LivePush]) -> None:
        """Thread-safe and non-blocking: called from request threads right after a commit."""


@dataclass
class LiveRelay:
    sink: LiveSink | None = None
    # Outbox events of each commit are offered to these (e.g. the `new_activity` feed); called
    # from the committing thread, so they must be cheap and non-blocking.
    event_listeners: list[Any] = field(default_factory=list)

    def attach(self, sink: LiveSink | None) -> None:
        self.sink = sink

    def send(self, pushes: list[LivePush], events: list[dict[str, Any]]) -> None:
        if self.sink is None:
            return
        if pushes:
            self.sink.publish_batch(pushes)
        for listener in self.event_listeners:
            listener(events)
