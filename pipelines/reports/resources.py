"""The scheduled reports' resource: where the definitions are, the warehouse the reports read and the
SMTP server they are sent through, all from the platform's one Settings object."""

from __future__ import annotations

import os
from pathlib import Path

from dagster import ConfigurableResource, EnvVar
from pydantic import Field, SecretStr

from api.core.settings import Settings
from pipelines.reports.definitions import ReportDefinition, ReportsConfig, load
from warehouse.settings import warehouse_location

_PASSWORD_ENV = "STORE_SMTP_PASSWORD"


class ReportsResource(ConfigurableResource["ReportsResource"]):
    reports_file: str = Field(description="The report definitions (STORE_REPORTS_FILE).")
    database_url: str = Field(description="SQLAlchemy URL of the store (STORE_DATABASE_URL).")
    data_dir: str = Field(description="The data dir (STORE_DATA_DIR).")
    warehouse_path: str = Field(description="The DuckDB warehouse file (STORE_WAREHOUSE_PATH).")
    warehouse_url: str | None = Field(default=None, description="PostgreSQL warehouse (STORE_WAREHOUSE_URL).")
    models_dir: str = Field(description="The model registry (STORE_MODELS_DIR).")
    smtp_host: str | None = Field(default=None, description="STORE_SMTP_HOST; unset: reports cannot be sent.")
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = Field(default=None, description="STORE_SMTP_PASSWORD")
    smtp_starttls: bool = False
    smtp_from: str = Field(description="STORE_SMTP_FROM")
    smtp_timeout_seconds: float = Field(default=5.0, gt=0)

    def definitions(self) -> ReportsConfig:
        """Read at each run, so a run sends what the file says now (the schedules come from the file
        as the code location loaded it)."""
        return load(Path(self.reports_file))

    def definition(self, name: str) -> ReportDefinition:
        return self.definitions().get(name)

    def settings(self) -> Settings:
        """Settings for the report builder and the email channel. Constructed, not validated: the job
        needs no JWT secret and must not read the environment again (the resource is its config)."""
        return Settings.model_construct(
            data_dir=Path(self.data_dir),
            database_url=self.database_url,
            warehouse_path=Path(self.warehouse_path),
            warehouse_url=self.warehouse_url,
            models_dir=Path(self.models_dir),
            attachments_dir=Path(self.data_dir) / "attachments",
            reports_file=Path(self.reports_file),
            smtp_host=self.smtp_host,
            smtp_port=self.smtp_port,
            smtp_username=self.smtp_username,
            smtp_password=SecretStr(self.smtp_password) if self.smtp_password else None,
            smtp_starttls=self.smtp_starttls,
            smtp_from=self.smtp_from,
            # The email channel's connection timeout (api.notifications.channels.email).
            webhook_timeout_seconds=self.smtp_timeout_seconds,
        )


def _password(settings: Settings) -> str | None:
    """The SMTP password, as an EnvVar when the environment holds it: Dagster then shows the variable's
    name, never the value, in its UI."""
    if settings.smtp_password is None:
        return None
    value = settings.smtp_password.get_secret_value()
    if os.environ.get(_PASSWORD_ENV) == value:
        return EnvVar(_PASSWORD_ENV)
    return value


def build_resources(settings: Settings) -> dict[str, object]:
    assert settings.models_dir is not None  # Settings fills the default in its validator
    return {
        "reports": ReportsResource(
            reports_file=str(settings.reports_file.resolve()),
            database_url=settings.database_url,
            data_dir=str(settings.data_dir.resolve()),
            warehouse_path=str(warehouse_location(settings).path.resolve()),
            warehouse_url=settings.warehouse_url,
            models_dir=str(settings.models_dir.resolve()),
            smtp_host=settings.smtp_host,
            smtp_port=settings.smtp_port,
            smtp_username=settings.smtp_username,
            smtp_password=_password(settings),
            smtp_starttls=settings.smtp_starttls,
            smtp_from=settings.smtp_from,
            smtp_timeout_seconds=settings.webhook_timeout_seconds,
        )
    }
