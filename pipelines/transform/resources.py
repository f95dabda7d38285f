"""dbt as a Dagster resource, pointed at the warehouse of the platform's one Settings object."""

from __future__ import annotations

import os
import shutil
import sys
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, OpExecutionContext
from dagster_dbt import DbtCliInvocation, DbtCliResource
from pydantic import Field

from api.core.settings import Settings
from pipelines.transform.project import DBT_PROJECT_DIR, dbt_env, dbt_executable, dbt_target
from warehouse.settings import warehouse_location

# Artifacts (run_results.json, logs) of this many dbt invocations are kept under <data_dir>/dbt/runs.
KEEP_RUNS = 20
# dbt's log lines as dagster-dbt echoes them, when not printed (dbt.log next to it is dbt's own, in JSON).
STDOUT_LOG = "stdout.log"


@contextmanager
def _environ(values: Mapping[str, str]) -> Iterator[None]:
    """`values` in os.environ for the duration: DbtCliResource hands the process environment to dbt,
    and the profile reads the warehouse from it."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class _ThreadStdout:
    """sys.stdout that sends one thread's writes to `sink` and everyone else's to the real stdout."""

    def __init__(self, real: Any, sink: Any) -> None:
        self._real, self._sink, self._thread = real, sink, threading.get_ident()

    def write(self, text: str) -> int:
        target = self._sink if threading.get_ident() == self._thread else self._real
        return int(target.write(text))

    def flush(self) -> None:
        self._sink.flush()
        self._real.flush()

    def __getattr__(self, name: str) -> Any:  # isatty, encoding, fileno: the terminal's
        return getattr(self._real, name)


def _quietly(events: Iterable[Any], log: Path) -> Iterator[Any]:
    """`events`, with what producing them prints (dagster-dbt echoes every dbt log line to stdout) going
    to `log` instead. Only while an event is being produced: Dagster's own output between events, and
    other threads (a progress bar), still reach the terminal."""
    iterator = iter(events)
    # dbt creates its target directory itself, possibly after the first event is asked for.
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as sink:
        while True:
            real = sys.stdout
            sys.stdout = _ThreadStdout(real, sink)
            try:
                event = next(iterator)
            except StopIteration:
                return
            finally:
                sys.stdout = real
            yield event


class DbtResource(DbtCliResource):
    """`DbtCliResource` with the warehouse it builds in, and its artifacts kept under the data dir."""

    warehouse_path: str = Field(description="DuckDB warehouse file (STORE_WAREHOUSE_PATH).")
    warehouse_url: str | None = Field(
        default=None, description="PostgreSQL warehouse (STORE_WAREHOUSE_URL); unset: the DuckDB file."
    )
    artifacts_dir: str = Field(description="Where each dbt invocation's target/ and logs go.")
    echo_logs: bool = Field(
        default=True,
        description="Print dbt's log lines (Dagster keeps them with the run). Off for a command line "
        "showing its own progress: they go to stdout.log in the invocation's artifacts directory.",
    )

    def relay(self, invocation: DbtCliInvocation) -> Iterator[Any]:
        """The invocation's Dagster events (materializations, test results as check results)."""
        events = invocation.stream()
        if self.echo_logs:
            yield from events
        else:
            yield from _quietly(events, invocation.target_path / STDOUT_LOG)

    def run_target_path(self, context: AssetExecutionContext | OpExecutionContext | None) -> Path:
        runs = Path(self.artifacts_dir)
        runs.mkdir(parents=True, exist_ok=True)
        old = sorted((p for p in runs.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
        for stale in old[: max(0, len(old) - KEEP_RUNS)]:
            shutil.rmtree(stale, ignore_errors=True)
        run = context.run.run_id[:8] if context is not None else "adhoc"
        return runs / f"{run}-{uuid.uuid4().hex[:7]}"

    def cli(
        self,
        args: Sequence[str],
        *,
        context: AssetExecutionContext | OpExecutionContext | None = None,
        **kwargs: Any,
    ) -> DbtCliInvocation:
        kwargs.setdefault("target_path", self.run_target_path(context))
        with _environ(dbt_env(self.warehouse_path, self.warehouse_url)):
            return super().cli(args, context=context, **kwargs)


def build_resources(settings: Settings, *, echo_logs: bool = True) -> dict[str, object]:
    return {
        "dbt": DbtResource(
            project_dir=os.fspath(DBT_PROJECT_DIR),
            profiles_dir=os.fspath(DBT_PROJECT_DIR),
            target=dbt_target(settings),
            dbt_executable=dbt_executable(),
            global_config_flags=["--no-use-colors"],
            warehouse_path=str(warehouse_location(settings).path),
            warehouse_url=settings.warehouse_url,
            artifacts_dir=str((settings.data_dir / "dbt" / "runs").resolve()),
            echo_logs=echo_logs,
        )
    }
