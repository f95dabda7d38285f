"""`store demo` end to end, as a user runs it: history, pipeline, three services up, live traffic,
Ctrl-C stops everything; a second run reuses the data. On SQLite, and on PostgreSQL with Redis."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ml.registry import versions
from pipelines.ml.assets import MODEL_NAMES
from tests.conftest import PG_ADMIN_URL, REDIS_URL, service_missing

STORE = str(Path(sys.executable).parent / "store")
READY = "Ctrl-C stops everything"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Demo:
    def __init__(self, env: dict[str, str], ports: tuple[int, int, int]) -> None:
        self.env, self.ports = env, ports
        self.lines: list[str] = []

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        api, dagster, dashboard = self.ports
        cmd = [STORE, "demo", "--profile", "small", "--days", "2", "--rate", "300", *args]
        cmd += ["--api-port", str(api), "--dagster-port", str(dagster), "--dashboard-port", str(dashboard)]
        self.lines = []
        return subprocess.Popen(cmd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def wait_for(self, proc: subprocess.Popen[bytes], marker: str, timeout: float = 300) -> None:
        assert proc.stdout is not None
        deadline = time.monotonic() + timeout
        buf = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                buf += chunk
                if marker.encode() in buf:
                    self.lines = buf.decode(errors="replace").splitlines()
                    return
        self.lines = buf.decode(errors="replace").splitlines()
        raise AssertionError(f"{marker!r} never came; output:\n" + "\n".join(self.lines[-60:]))

    def stop(self, proc: subprocess.Popen[bytes]) -> int:
        proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()


def _events(url: str, event_type: str = "product.viewed") -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            sql = text("SELECT count(*) FROM events WHERE event_type = :t")
            return int(conn.execute(sql, {"t": event_type}).scalar_one())
    finally:
        engine.dispose()


def _models(runner: Demo) -> dict[str, str]:
    """Registry name -> newest trained version (good or not), in the demo's data dir."""
    root = Path(runner.env["STORE_DATA_DIR"]) / "models"
    return {name: found[0] for name in MODEL_NAMES if (found := versions(root, name))}


@pytest.fixture(params=["sqlite", "postgres+redis"])
def demo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Demo, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STORE_", "DAGSTER_"))}
    env["STORE_DATA_DIR"] = str(tmp_path / "data")
    dropped: str | None = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'data' / 'store.db'}"
    else:
        name = f"store_demo_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception as exc:
            service_missing("PostgreSQL", str(exc).splitlines()[0])
        finally:
            admin.dispose()
        dropped = name
        url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        try:
            import redis

            redis.Redis.from_url(REDIS_URL).ping()
        except Exception as exc:
            service_missing("Redis", str(exc))
        env["STORE_REDIS_URL"] = REDIS_URL
        env["STORE_LIVE_CHANNEL"] = f"demo-test-{uuid.uuid4().hex[:8]}"
    env["STORE_DATABASE_URL"] = url
    yield Demo(env, (_free_port(), _free_port(), _free_port())), url
    if dropped:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{dropped}" WITH (FORCE)'))
        admin.dispose()


def test_demo_brings_the_platform_up_and_ctrl_c_stops_it(demo: tuple[Demo, str]) -> None:
    runner, url = demo
    api, dagster, dashboard = runner.ports
    proc = runner.start()
    try:
        runner.wait_for(proc, READY)
        out = "\n".join(runner.lines)
        assert "2 days simulated" in out and "Pipeline done" in out, out
        # The models were trained (two days are too few to forecast, enough for the others).
        assert set(_models(runner)) >= {"price", "segments", "recommender", "fraud"}, out
        for port in runner.ports:
            assert f"http://127.0.0.1:{port}" in out
        assert httpx.get(f"http://127.0.0.1:{api}/health", timeout=5).json()["data"]["status"] == "ok"
        assert httpx.get(f"http://127.0.0.1:{dagster}/server_info", timeout=5).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{dashboard}/_stcore/health", timeout=5).text == "ok"
        # The live trickle views products while the demo runs.
        before = _events(url)
        deadline = time.monotonic() + 30
        while _events(url) <= before:
            assert time.monotonic() < deadline, "no live traffic reached the store"
            time.sleep(0.5)
    finally:
        code = runner.stop(proc)
    assert code == 0
    for port in runner.ports:  # every service it started is gone
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open"


def test_a_second_run_reuses_the_data(demo: tuple[Demo, str]) -> None:
    runner, url = demo
    proc = runner.start("--no-live")
    try:
        runner.wait_for(proc, READY)
    finally:
        runner.stop(proc)
    first, models = _events(url, "user.registered"), _models(runner)
    proc = runner.start("--no-live")
    try:
        runner.wait_for(proc, READY)
        out = "\n".join(runner.lines)
    finally:
        runner.stop(proc)
    assert "Reusing the store" in out and "days simulated" not in out, out
    assert _events(url, "user.registered") == first  # nobody signed up again: nothing re-simulated
    assert _models(runner) == models  # the trained models were kept, not trained again
