"""`store pipeline`: the command line runs the chosen job over the configured store and says how it went."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from api.cli import app
from api.core.settings import Settings, get_settings
from tests.helpers import Api
from warehouse.duckdb import read_connection
from warehouse.settings import warehouse_location


@pytest.fixture
def configured(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The command reads the environment, as it would in a shell: point it at the test's store."""
    monkeypatch.setenv("STORE_ENVIRONMENT", "test")
    monkeypatch.setenv("STORE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("STORE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv(
        "STORE_JWT_SECRET", settings.jwt_secret.get_secret_value() if settings.jwt_secret else ""
    )
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_ingest_job_loads_the_store_and_builds_no_marts(api: Api, configured: Settings) -> None:
    seller = api.user("seller")
    shop = api.shop(seller)

    result = CliRunner().invoke(app, ["pipeline", "--job", "ingest"])

    assert result.exit_code == 0, result.output
    assert "Pipeline done" in result.output
    with read_connection(warehouse_location(configured)) as conn:
        assert conn.execute("SELECT count(*) FROM raw.shops WHERE id = ?", [shop["id"]]).fetchall() == [(1,)]
        assert conn.execute("SELECT count(*) FROM raw.events").fetchall()[0][0] == api.event_count()
        schemas = {
            r[0] for r in conn.execute("SELECT schema_name FROM information_schema.schemata").fetchall()
        }
    assert "raw" in schemas and "marts" not in schemas


def test_an_unknown_job_is_refused_with_the_choices() -> None:
    result = CliRunner().invoke(app, ["pipeline", "--job", "everything"])
    assert result.exit_code == 2
    assert "refresh" in result.output and "ingest" in result.output
