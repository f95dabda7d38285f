"""Where the dbt project is, how dbt reaches the warehouse of a Settings object, and the manifest
Dagster builds its assets from.

The manifest is made by `dbt parse` when the definitions load, keyed by a hash of the project's files
and the target: a clean clone (CI) has none, an edited model must not leave a stale one behind, and
parallel loaders (tests, `dagster dev` workers) must never read one half written."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy.engine import make_url

from api.core.settings import Settings
from warehouse.settings import warehouse_location

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
PROFILE = "cryptostore"
DUCKDB_TARGET = "duckdb"
POSTGRES_TARGET = "postgres"
# Parsed manifests, one directory per (project content, target); dbt's own target/ is git-ignored.
MANIFESTS_DIR = "target/dagster_manifests"
KEEP_MANIFESTS = 8
_NOT_PROJECT_FILES = frozenset({"target", "logs", "dbt_packages", ".user.yml"})
PARSE_TIMEOUT_SECONDS = 300


class DbtParseFailed(RuntimeError):
    """`dbt parse` failed: the message holds dbt's own output."""


def dbt_executable() -> str:
    """The dbt next to this interpreter: `dagster dev` started from .venv/bin does not put that
    directory on PATH."""
    local = Path(sys.executable).parent / "dbt"
    return str(local) if local.exists() else "dbt"


def dbt_target(settings: Settings) -> str:
    return POSTGRES_TARGET if settings.warehouse_url else DUCKDB_TARGET


def dbt_env(warehouse_path: str, warehouse_url: str | None) -> dict[str, str]:
    """The variables the project's profiles.yml reads, for one warehouse."""
    env = {"STORE_WAREHOUSE_PATH": warehouse_path}
    if warehouse_url:
        url = make_url(warehouse_url)
        env.update(
            STORE_DBT_TARGET=POSTGRES_TARGET,
            STORE_WAREHOUSE_PG_HOST=url.host or "127.0.0.1",
            STORE_WAREHOUSE_PG_PORT=str(url.port or 5432),
            STORE_WAREHOUSE_PG_USER=url.username or "postgres",
            STORE_WAREHOUSE_PG_PASSWORD=url.password or "",
            STORE_WAREHOUSE_PG_DBNAME=url.database or "warehouse",
        )
    else:
        env["STORE_DBT_TARGET"] = DUCKDB_TARGET
    return env


def settings_dbt_env(settings: Settings) -> dict[str, str]:
    return dbt_env(str(warehouse_location(settings).path), settings.warehouse_url)


def project_fingerprint(project_dir: Path = DBT_PROJECT_DIR) -> str:
    """A hash of every source file of the project (models, macros, tests, yml), not of its outputs."""
    digest = hashlib.sha256()
    for path in sorted(project_dir.rglob("*")):
        relative = path.relative_to(project_dir)
        if relative.parts[0] in _NOT_PROJECT_FILES or not path.is_file():
            continue
        digest.update(str(relative).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def dbt_command(args: list[str], *, project_dir: Path, target: str, target_path: Path) -> list[str]:
    return [
        dbt_executable(),
        *args,
        "--project-dir",
        str(project_dir),
        "--profiles-dir",
        str(project_dir),
        "--target",
        target,
        "--target-path",
        str(target_path),
    ]


def prepare_manifest(target: str, env: Mapping[str, str], *, project_dir: Path = DBT_PROJECT_DIR) -> Path:
    """The path of a manifest.json of the project as it is now, parsing it first if needed."""
    manifests = project_dir / MANIFESTS_DIR
    final = manifests / f"{target}-{project_fingerprint(project_dir)}"
    manifest = final / "manifest.json"
    if manifest.exists():
        return manifest
    manifests.mkdir(parents=True, exist_ok=True)
    tmp = manifests / f".parsing-{uuid.uuid4().hex}"
    run_env = {
        **os.environ,
        **env,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_LOG_PATH": str(tmp),
        "DBT_LOG_FORMAT": "text",
    }
    command = dbt_command(["parse", "--quiet"], project_dir=project_dir, target=target, target_path=tmp)
    try:
        done = subprocess.run(  # noqa: S603 (our own dbt, our own arguments)
            command,
            env=run_env,
            cwd=project_dir,
            capture_output=True,
            text=True,
            timeout=PARSE_TIMEOUT_SECONDS,
            check=False,
        )
        if done.returncode != 0 or not (tmp / "manifest.json").exists():
            output = (done.stdout + done.stderr).strip()
            raise DbtParseFailed(f"dbt parse of {project_dir} failed:\n{output[-4000:]}")
        try:
            # A directory appears whole under its final name; a loader that raced us already did.
            tmp.rename(final)
        except OSError:
            if not manifest.exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _prune(manifests, keep=final)
    return manifest


def _prune(manifests: Path, *, keep: Path) -> None:
    """Drops the oldest parsed manifests (a project under edit leaves one per change), and what a
    parse killed midway left behind."""
    stale = time.time() - 2 * PARSE_TIMEOUT_SECONDS
    for leftover in manifests.glob(".parsing-*"):
        if leftover.stat().st_mtime < stale:
            shutil.rmtree(leftover, ignore_errors=True)
    parsed = sorted(
        (p for p in manifests.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in parsed[KEEP_MANIFESTS:]:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)
