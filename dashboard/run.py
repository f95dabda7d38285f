"""Starts the dashboard's Streamlit server, for the `store dashboard` command.

The server is a child process (`python -m streamlit run dashboard/app.py ...`): Streamlit owns its
process's event loop and signal handlers. The child inherits the environment, so it reads the same
STORE_* settings as the caller."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"
ROOT = APP.parent.parent
DEFAULT_PORT = 8501
DEFAULT_ADDRESS = "127.0.0.1"
THEMES: dict[str, dict[str, str]] = {
    "light": {"primaryColor": "#F7931A", "backgroundColor": "#FFFFFF", "textColor": "#1F2430"},
    "dark": {"primaryColor": "#F7931A", "backgroundColor": "#0E1117", "textColor": "#FAFAFA"},
}


def command(*, port: int = DEFAULT_PORT, address: str = DEFAULT_ADDRESS) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.port",
        str(port),
        "--server.address",
        address,
        "--server.headless",
        "true",
        # No usage statistics sent to Streamlit's servers from a dashboard of business numbers.
        "--browser.gatherUsageStats",
        "false",
        # A light and a dark theme: the viewer picks one (or follows the system) in the app's menu,
        # Settings > Theme; charts follow it.
        *(
            token
            for mode, options in THEMES.items()
            for option, value in options.items()
            for token in (f"--theme.{mode}.{option}", value)
        ),
    ]


def start(
    *, port: int = DEFAULT_PORT, address: str = DEFAULT_ADDRESS, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """The server, started; the caller waits for or stops it."""
    child_env = dict(os.environ if env is None else env)
    # The app imports `api` and `dashboard` from the repository; the working directory stays the
    # caller's, so relative STORE_* paths (data/) mean what they mean to the API.
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), child_env.get("PYTHONPATH", "")) if p)
    return subprocess.Popen(command(port=port, address=address), env=child_env)  # noqa: S603


def serve(*, port: int = DEFAULT_PORT, address: str = DEFAULT_ADDRESS) -> int:
    """Runs the server until it exits or Ctrl-C; returns its exit code."""
    proc = start(port=port, address=address)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        return proc.wait()
