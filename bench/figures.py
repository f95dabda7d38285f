"""The benchmarks' result files: each run's figures merged into bench/results/<name>.json."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from rich.console import Console

ROOT = Path(__file__).resolve().parent.parent


def save(path: Path, results: dict[str, Any], console: Console) -> None:
    """Merges `results` into the file's top-level keys, so runs of one backend keep the other's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    existing: dict[str, Any] = {}
    if path.exists():
        with contextlib.suppress(ValueError):
            existing = json.loads(path.read_text())
    existing.update(results)
    path.write_text(json.dumps(existing, indent=2, default=str) + "\n")
    console.print(f"figures written to {path.relative_to(ROOT)}")
