from __future__ import annotations

from pathlib import Path

import pytest

from api.core.settings import Environment, Settings
from tests.conftest import TEST_SECRET
from warehouse.settings import warehouse_location


def _settings(tmp_path: Path, warehouse_path: Path | None) -> Settings:
    return Settings(
        environment=Environment.test,
        data_dir=tmp_path / "data",
        warehouse_path=warehouse_path,
        jwt_secret=TEST_SECRET,
        _env_file=None,
    )


def test_the_warehouse_lives_in_the_data_dir_unless_moved(tmp_path: Path) -> None:
    default = warehouse_location(_settings(tmp_path, warehouse_path=None))
    assert default.path == (tmp_path / "data" / "warehouse.duckdb").resolve()
    assert default.snapshot == default.path.with_name("warehouse.read.duckdb")

    moved = warehouse_location(_settings(tmp_path, warehouse_path=tmp_path / "elsewhere" / "wh.duckdb"))
    assert moved.path == tmp_path / "elsewhere" / "wh.duckdb"
    assert moved.snapshot == tmp_path / "elsewhere" / "wh.read.duckdb"


def test_a_relative_warehouse_path_is_pinned_to_the_working_directory_it_was_read_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    location = warehouse_location(_settings(tmp_path, warehouse_path=Path("wh") / "w.duckdb"))
    assert location.path == tmp_path / "wh" / "w.duckdb"
    assert location.path.is_absolute() and location.snapshot.is_absolute()
