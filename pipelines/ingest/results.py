"""What a load reports, and the points where tests stop one (crash injection), for every target."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

Hook = Callable[[], None]
Progress = Callable[[int], None]


@dataclass(frozen=True)
class LoadHooks:
    """Called at fixed points of a load, inside its warehouse transaction. Tests kill the process or
    raise there; production passes none."""

    before_copy: Hook | None = None  # mark read, nothing written yet
    after_copy: Hook | None = None  # rows written, mark not yet moved / snapshot not yet swapped
    before_commit: Hook | None = None  # everything written, COMMIT next

    @staticmethod
    def call(hook: Hook | None) -> None:
        if hook is not None:
            hook()


NO_HOOKS = LoadHooks()


class RowCounter:
    """Rows read so far by the (possibly parallel) reads of one load, passed on to a progress callback
    as a running total."""

    def __init__(self, progress: Progress | None) -> None:
        self.done = 0
        self._progress = progress
        self._lock = threading.Lock()  # parallel reads report from DuckDB's threads

    def __call__(self, rows: int) -> None:
        with self._lock:
            self.done += rows
            done = self.done
        if self._progress is not None:
            self._progress(done)


@dataclass(frozen=True)
class EventLoad:
    rows_loaded: int
    rows_read: int
    previous_mark: int
    high_water_mark: int
    source_count: int
    rows_total: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class SnapshotLoad:
    table: str
    rows: int
    seconds: float
