"""`dashboard.run` starts a real Streamlit server that serves the app on loopback."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import httpx
import pytest

from dashboard import run

STARTUP_SECONDS = 30


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_server_starts_on_loopback_and_serves_the_app(database_url: str, tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "STORE_ENVIRONMENT": "test",
        "STORE_DATABASE_URL": database_url,
        "STORE_DATA_DIR": str(tmp_path / "data"),
        "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none",
    }
    proc = run.start(port=port, env=env)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert proc.poll() is None, f"streamlit exited with {proc.returncode}"
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
                if health.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the dashboard did not start"
            time.sleep(0.2)
        assert health.text == "ok"
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert page.status_code == 200 and "<html" in page.text.lower()
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_command_is_headless_and_loopback_by_default() -> None:
    cmd = run.command(port=8600)
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4].endswith("dashboard/app.py")
    options = dict(zip(cmd[5::2], cmd[6::2], strict=True))
    assert options["--server.port"] == "8600"
    assert options["--server.address"] == "127.0.0.1"
    assert options["--server.headless"] == "true"
