"""Model registry on a directory: each trained model saved with its manifest, the newest good one loaded,
and a cheap check for hot reload.

Layout: `<root>/<name>/<version>/model.joblib` + `manifest.json` (version, name, created_at, training
window, features, metrics, data version, the artifact's sha256, `good`). A version directory appears
whole or not at all: it is written under a temporary name and renamed into place. `<root>/<name>/LATEST`
names the newest version (rewritten atomically after the rename): reading that one small file is the
hot-reload check. Loading walks versions newest first and skips any whose manifest or artifact is
missing, unreadable, or does not match its checksum, or that was saved as not good: a bad artifact
leaves the previous model serving.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib

ARTIFACT = "model.joblib"
MANIFEST = "manifest.json"
LATEST = "LATEST"


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    model: Any
    manifest: dict[str, Any] = field(default_factory=dict)


def new_version(now: datetime | None = None) -> str:
    """Sortable by time: 20260105T120000123456Z-1a2b3c."""
    t = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{t.strftime('%Y%m%dT%H%M%S%fZ')}-{uuid.uuid4().hex[:6]}"


def save_model(
    root: Path,
    name: str,
    model: Any,
    *,
    training_window: tuple[datetime, datetime] | None = None,
    features: list[str] | tuple[str, ...] = (),
    metrics: dict[str, Any] | None = None,
    data_version: str = "",
    good: bool = True,
    version: str | None = None,
    now: datetime | None = None,
) -> str:
    """Writes a new version of `name` and points LATEST at it; returns the version. `good=False` keeps
    the artifact for inspection but never serves it (e.g. a model that did not beat its baseline)."""
    version = version or new_version(now)
    home = Path(root) / name
    home.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=home))
    try:
        artifact = tmp / ARTIFACT
        joblib.dump(model, artifact)
        manifest = {
            "name": name,
            "version": version,
            "created_at": (now or datetime.now(UTC)).astimezone(UTC).isoformat(),
            "training_window": [t.astimezone(UTC).isoformat() for t in training_window]
            if training_window
            else None,
            "features": list(features),
            "metrics": _jsonable(metrics or {}),
            "data_version": data_version,
            "good": bool(good),
            "artifact_sha256": _sha256(artifact),
        }
        _write_synced(tmp / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())
        _fsync_file(artifact)
        os.rename(tmp, home / version)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(home)
    if good:
        _point_latest(home, version)
    return version


def versions(root: Path, name: str) -> list[str]:
    """Every complete version of `name`, newest first."""
    home = Path(root) / name
    if not home.is_dir():
        return []
    return sorted((p.name for p in home.iterdir() if p.is_dir() and not p.name.startswith(".")), reverse=True)


def read_manifest(root: Path, name: str, version: str) -> dict[str, Any] | None:
    try:
        data = json.loads((Path(root) / name / version / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def load_model(root: Path, name: str, version: str) -> LoadedModel:
    """One version, checked: raises if its manifest or artifact is missing, corrupt or not good."""
    manifest = read_manifest(root, name, version)
    if manifest is None:
        raise FileNotFoundError(f"{name} {version}: no readable manifest")
    if not manifest.get("good", False):
        raise ValueError(f"{name} {version} was saved as not good")
    artifact = Path(root) / name / version / ARTIFACT
    if _sha256(artifact) != manifest.get("artifact_sha256"):
        raise ValueError(f"{name} {version}: artifact does not match its checksum")
    return LoadedModel(name, version, joblib.load(artifact), manifest)


def load_latest(root: Path, name: str) -> LoadedModel | None:
    """The newest good version that loads, or None."""
    for version in versions(root, name):
        try:
            return load_model(root, name, version)
        except Exception:  # noqa: S112 - a broken version is skipped for the previous one
            continue
    return None


def latest_version(root: Path, name: str) -> str | None:
    """What LATEST names: one small read, cheap enough to call on every request."""
    try:
        value = (Path(root) / name / LATEST).read_text().strip()
    except OSError:
        return None
    return value or None


def has_newer(root: Path, name: str, current: str | None) -> bool:
    latest = latest_version(root, name)
    return latest is not None and latest != current


class ModelHolder:
    """Holds the serving model of one name and swaps in a newer good one when it lands.

    `get()` checks LATEST at most every `check_seconds`; when it names another version, that version
    is loaded and checked first, and a bad one keeps the current model serving (and is not retried
    until LATEST changes again). Thread-safe; the load happens outside the request path's lock."""

    def __init__(self, root: Path, name: str, *, check_seconds: float = 5.0) -> None:
        self.root, self.name, self.check_seconds = Path(root), name, check_seconds
        self._current: LoadedModel | None = None
        self._checked = 0.0
        self._rejected: str | None = None
        self._lock = threading.Lock()
        self.reload()

    @property
    def current(self) -> LoadedModel | None:
        return self._current

    def get(self) -> LoadedModel | None:
        now = time.monotonic()
        if now - self._checked >= self.check_seconds:
            self._checked = now
            latest = latest_version(self.root, self.name)
            current = self._current.version if self._current else None
            if latest is not None and latest not in (current, self._rejected):
                self.reload(latest)
        return self._current

    def reload(self, version: str | None = None) -> bool:
        """Loads `version` (default: the newest good one); True when the serving model changed."""
        try:
            loaded = (
                load_model(self.root, self.name, version) if version else load_latest(self.root, self.name)
            )
        except Exception:
            self._rejected = version
            return False
        if loaded is None:
            return False
        with self._lock:
            changed = self._current is None or loaded.version != self._current.version
            self._current = loaded
        return changed


# --- files ---------------------------------------------------------------------------------------
def _point_latest(home: Path, version: str) -> None:
    tmp = home / f".{LATEST}.{uuid.uuid4().hex}"
    _write_synced(tmp, version.encode())
    os.replace(tmp, home / LATEST)
    _fsync_dir(home)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _jsonable(value: Any) -> Any:
    """Metrics as JSON: numpy scalars become numbers, timestamps and Decimals strings."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if hasattr(value, "item"):
        return _jsonable(value.item())
    return str(value)
