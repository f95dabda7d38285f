"""Where the warehouse lives, derived from the platform's one Settings object
(`STORE_WAREHOUSE_PATH`, default `<data_dir>/warehouse.duckdb`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from api.core.settings import Settings

# Readers open this copy, published atomically after each committed load (see warehouse.duckdb).
SNAPSHOT_SUFFIX = ".read"


@dataclass(frozen=True)
class WarehouseLocation:
    """The file the pipelines write and the read snapshot that everyone else opens."""

    path: Path

    @property
    def snapshot(self) -> Path:
        return self.path.with_name(f"{self.path.stem}{SNAPSHOT_SUFFIX}{self.path.suffix}")


def warehouse_location(settings: Settings) -> WarehouseLocation:
    # Settings resolves the default in its validator; None only if a caller bypassed validation.
    assert settings.warehouse_path is not None
    # Absolute, so a resource config or a published path means the same file from any working directory.
    return WarehouseLocation(settings.warehouse_path.resolve())
