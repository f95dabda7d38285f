"""The one settings object of the platform, read from `STORE_*` environment variables and `.env`."""

from __future__ import annotations

import secrets
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DATA_DIR = Path("data")
# The scheduled reports' definitions (pipelines/reports): the repository's reports.yml by default.
REPORTS_FILE = Path(__file__).resolve().parents[2] / "reports.yml"
_DEV_SECRET_FILE = "jwt_secret.dev"
OWASP_ARGON2_TIME_COST = 2
OWASP_ARGON2_MEMORY_KIB = 19_456


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="STORE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    environment: Environment = Environment.development
    data_dir: Path = DATA_DIR
    database_url: str = ""
    redis_url: str | None = None
    jwt_secret: SecretStr | None = None
    jwt_algorithm: str = "HS256"
    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    refresh_token_days: int = Field(default=14, ge=1, le=365)
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    # How stale a session's last_activity may get before a request writes it again: saves a write per request.
    session_touch_seconds: int = Field(default=60, ge=0, le=3600)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    password_min_length: int = Field(default=8, ge=8)
    # argon2id cost of new password hashes (verification reads the cost from each hash). The default
    # is OWASP's minimum, which production enforces; the simulator's backfill lowers it for its
    # accounts, which share one published password anyway.
    password_hash_time_cost: int = Field(default=2, ge=1, le=10)
    password_hash_memory_kib: int = Field(default=19_456, ge=64, le=1_048_576)
    # About the thread pool's size, so concurrent requests do not open and close overflow connections.
    db_pool_size: int = Field(default=30, ge=1)
    db_echo: bool = False
    log_level: str = "INFO"
    log_json: bool = False
    # Apply pending migrations at start-up; off in production, where deploys migrate explicitly.
    auto_migrate: bool | None = None
    session_sweep_seconds: int = Field(default=60, ge=0)
    # Listing and search pages (and totals) stay in the read cache this long (0 turns it off): in Redis
    # when configured, else in this process; commits invalidate what they change before they return.
    read_cache_seconds: float = Field(default=2.0, ge=0, le=300)

    # search.performed events are written in batches this often (0: one transaction per search,
    # after its response).
    search_event_flush_seconds: float = Field(default=0.2, ge=0, le=10)

    # --- live delivery over /ws (issue 3) ---
    # Browser Origins allowed to open /ws; empty means the CORS origins. A request without an Origin
    # header (native apps, bots) is allowed: Origin is a browser's defence, not authentication.
    ws_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    ws_max_message_bytes: int = Field(default=65_536, ge=1024)
    ws_rate_per_second: float = Field(default=20.0, gt=0)
    ws_rate_burst: int = Field(default=60, ge=1)
    # Frames waiting for a slow client; past this the socket is closed rather than slowing others.
    ws_send_queue: int = Field(default=1000, ge=10)
    metrics_update_seconds: float = Field(default=5.0, gt=0)
    # The Redis pub/sub channel of live fan-out: pub/sub ignores database numbers, so deployments
    # (and parallel test runs) sharing one Redis keep apart by name.
    live_channel: str = Field(default="store:live", min_length=1, max_length=100)

    # --- calls ---
    call_ring_timeout_seconds: float = Field(default=30.0, gt=0)
    call_sweep_seconds: float = Field(default=1.0, ge=0)

    # --- attachments ---
    attachments_dir: Path | None = None  # default: <data_dir>/attachments
    attachment_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    attachment_types: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [
            "image/png",
            "image/jpeg",
            "image/gif",
            "image/webp",
            "application/pdf",
            "text/plain",
        ]
    )

    # --- notification delivery (email, webhook, Telegram) ---
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_from: str = "Crypto Store <no-reply@localhost>"
    # Webhook targets on private, loopback or link-local addresses are refused unless allowed here.
    webhook_allow_private: bool = False
    webhook_timeout_seconds: float = Field(default=5.0, gt=0)
    telegram_api_base: str = "https://api.telegram.org"
    telegram_bot_token: SecretStr | None = None
    delivery_max_attempts: int = Field(default=5, ge=1)
    delivery_backoff_seconds: float = Field(default=2.0, ge=0)
    delivery_poll_seconds: float = Field(default=1.0, ge=0)  # 0 turns the in-app worker off
    public_base_url: str = "http://127.0.0.1:8000"

    # --- cache of product, shop, listing and search reads ---
    cache_detail_seconds: float = Field(default=30.0, ge=0, le=3600)

    # --- system metrics: GET /metrics (Prometheus text) for the scraper ---
    metrics_enabled: bool = True
    metrics_token: SecretStr | None = None  # when set, /metrics needs `Authorization: Bearer <token>`

    # --- analytics warehouse (pipelines/, warehouse/) ---
    # The DuckDB file the pipelines write; readers open its published copy next to it.
    warehouse_path: Path | None = None  # default: <data_dir>/warehouse.duckdb
    # The production target: a PostgreSQL database (e.g. postgresql://user@host/warehouse) holding the
    # same raw, staging, intermediate and marts schemas. Unset: the DuckDB file above.
    warehouse_url: str | None = None

    # --- ML models (ml/, pipelines/ml/) ---
    # The model registry: <models_dir>/<name>/<version>/ (ml.registry). The pipelines write it, the API
    # loads the newest good version and checks for a newer one every `model_reload_seconds`.
    models_dir: Path | None = None  # default: <data_dir>/models
    model_reload_seconds: float = Field(default=5.0, ge=0, le=3600)

    # --- scheduled reports (pipelines/reports) ---
    # The YAML file of report definitions (what, to whom, when). The default file may be missing (no
    # reports); one named here (STORE_REPORTS_FILE) must exist.
    reports_file: Path = REPORTS_FILE

    @field_validator("cors_origins", "ws_origins", "attachment_types", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    @field_validator("reports_file")
    @classmethod
    def _reports_file(cls, value: Path) -> Path:
        value = value.expanduser()
        if value.is_dir():
            raise ValueError(f"reports_file must be a YAML file, not the directory {value}")
        return value

    @field_validator("jwt_algorithm")
    @classmethod
    def _pinned_algorithm(cls, value: str) -> str:
        if value not in {"HS256", "HS384", "HS512"}:
            raise ValueError("jwt_algorithm must be one of HS256, HS384, HS512")
        return value

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'store.db').as_posix()}"
        if self.attachments_dir is None:
            self.attachments_dir = self.data_dir / "attachments"
        if self.warehouse_path is None:
            self.warehouse_path = self.data_dir / "warehouse.duckdb"
        if self.models_dir is None:
            self.models_dir = self.data_dir / "models"
        if self.auto_migrate is None:
            self.auto_migrate = self.environment is not Environment.production
        if self.jwt_secret is None:
            if self.environment is Environment.production:
                raise ValueError("STORE_JWT_SECRET is required in production")
            self.jwt_secret = SecretStr(_dev_secret(self.data_dir))
        elif self.environment is Environment.production and len(self.jwt_secret.get_secret_value()) < 32:
            raise ValueError("STORE_JWT_SECRET must be at least 32 characters in production")
        if self.environment is Environment.production and (
            self.password_hash_time_cost < OWASP_ARGON2_TIME_COST
            or self.password_hash_memory_kib < OWASP_ARGON2_MEMORY_KIB
        ):
            raise ValueError("password hashing below OWASP's argon2id minimum (t=2, 19 MiB) in production")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def secret(self) -> str:
        assert self.jwt_secret is not None
        return self.jwt_secret.get_secret_value()


def _dev_secret(data_dir: Path) -> str:
    """A random secret persisted under data/, so development tokens survive restarts."""
    path = data_dir / _DEV_SECRET_FILE
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    path.write_text(value)
    path.chmod(0o600)
    return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
