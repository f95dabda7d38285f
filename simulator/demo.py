"""The main job in one command: a store with 90 days of history, the pipeline run over it, then the API,
the Dagster UI and the dashboard up with live traffic flowing, until Ctrl-C stops everything.

Each step is a plain function here; `store demo` (api/cli.py) shows them with rich progress. A second
run reuses the store and its ground truth instead of simulating again, unless asked to reset.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from api.core.settings import Settings
from dashboard.run import command as dashboard_command
from pipelines.run import dagster_home
from simulator.truth import TRUTH_FILE, read_truth

ROOT = Path(__file__).resolve().parent.parent


class DemoFailed(RuntimeError):
    """A step of the demo could not be done; the message says which and why."""


@dataclass(frozen=True)
class Ports:
    api: int = 8000
    dagster: int = 3000
    dashboard: int = 8501


def store_state(settings: Settings) -> tuple[int, bool]:
    """(users in the store, whether a ground truth sits next to it): what a second run can reuse."""
    engine = create_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            users = int(conn.execute(text("SELECT count(*) FROM users")).scalar_one())
    except Exception:  # no schema yet
        users = 0
    finally:
        engine.dispose()
    return users, read_truth(settings.data_dir) is not None


def reset_store(settings: Settings) -> None:
    """Removes the store's data (SQLite file or PostgreSQL tables), the ground truth and the warehouse."""
    from api.db.migrate import downgrade

    if settings.is_sqlite:
        db = Path(settings.database_url.split("///", 1)[1])
        for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            path.unlink(missing_ok=True)
    else:
        downgrade(settings.database_url, "base")
    for name in (TRUTH_FILE, "live_truth.jsonl", "warehouse.duckdb", "warehouse.duckdb.wal"):
        (settings.data_dir / name).unlink(missing_ok=True)
    shutil.rmtree(settings.data_dir / "attachments", ignore_errors=True)


@dataclass
class Service:
    name: str
    url: str
    health: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass
class Services:
    """Child processes in their own process groups, so Ctrl-C here stops all of them and their children."""

    items: list[Service] = field(default_factory=list)

    def start(
        self, name: str, cmd: Sequence[str], *, port: int, health: str, logs: Path, env: dict[str, str]
    ) -> None:
        """Starts `cmd`, served on loopback at `port`; `health` is the path that answers once it is up."""
        url = f"http://127.0.0.1:{port}"
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / f"{name.lower().replace(' ', '-')}.log"
        with log.open("ab") as out:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(  # noqa: S603 - our own commands
                list(cmd), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.items.append(Service(name, url, url + health, proc, log))

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Until every service answers its health URL; a service that exits or stays silent fails."""
        deadline = time.monotonic() + timeout
        pending = list(self.items)
        while pending:
            for svc in list(pending):
                if svc.process.poll() is not None:
                    tail = svc.log.read_text(errors="replace")[-2000:]
                    raise DemoFailed(
                        f"{svc.name} exited with code {svc.process.returncode}; its log:\n{tail}"
                    )
                try:
                    if httpx.get(svc.health, timeout=2.0).status_code < 500:
                        pending.remove(svc)
                except httpx.HTTPError:
                    pass
            if pending and time.monotonic() > deadline:
                names = ", ".join(s.name for s in pending)
                raise DemoFailed(
                    f"{names} did not answer within {timeout:.0f} s (logs in {pending[0].log.parent})"
                )
            if pending:
                time.sleep(0.5)

    def stop(self, grace: float = 10.0) -> None:
        for svc in self.items:
            if svc.process.poll() is None:
                os.killpg(svc.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for svc in self.items:
            try:
                svc.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(svc.process.pid, signal.SIGKILL)
                svc.process.wait()


def start_services(settings: Settings, ports: Ports) -> Services:
    """The API, the Dagster UI and the dashboard as child processes sharing this process's settings."""
    env = {
        **os.environ,
        "STORE_DATA_DIR": str(settings.data_dir.resolve()),
        "STORE_DATABASE_URL": settings.database_url,
    }
    if settings.redis_url:
        env["STORE_REDIS_URL"] = settings.redis_url
    # Where the API answers, for links in emails and for the dashboard reading the API's /metrics.
    env.setdefault("STORE_PUBLIC_BASE_URL", f"http://127.0.0.1:{ports.api}")
    logs = settings.data_dir / "logs"
    services = Services()
    bin_dir = Path(sys.executable).parent
    services.start(
        "API",
        [str(bin_dir / "store"), "api", "--host", "127.0.0.1", "--port", str(ports.api)],
        port=ports.api,
        health="/health",
        logs=logs,
        env=env,
    )
    dagster = [str(bin_dir / "dagster"), "dev", "-m", "pipelines.definitions", "-h", "127.0.0.1"]
    services.start(
        "Dagster UI",
        [*dagster, "-p", str(ports.dagster)],
        port=ports.dagster,
        health="/server_info",
        logs=logs,
        env={**env, "DAGSTER_HOME": str(dagster_home(settings))},
    )
    services.start(
        "Dashboard",
        dashboard_command(port=ports.dashboard),
        port=ports.dashboard,
        health="/_stcore/health",
        logs=logs,
        env=env,
    )
    return services
