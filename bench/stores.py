"""The bench stores: one SQLite file or one PostgreSQL database per benchmark, recreated on demand."""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_ADMIN_URL = os.environ.get("STORE_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


class Backend(StrEnum):
    sqlite = "sqlite"
    postgres = "postgres"
    both = "both"


@dataclass(frozen=True)
class BenchStore:
    sqlite_path: Path
    pg_database: str

    def url(self, backend: Backend) -> str:
        if backend is Backend.sqlite:
            return f"sqlite:///{self.sqlite_path.as_posix()}"
        return make_url(PG_ADMIN_URL).set(database=self.pg_database).render_as_string(hide_password=False)

    def recreate(self, backend: Backend) -> None:
        """An empty database: the SQLite file and its companions removed, or the PG database re-created."""
        if backend is Backend.sqlite:
            self.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
            for suffix in ("", "-wal", "-shm", "-journal", ".fingerprint"):
                Path(f"{self.sqlite_path}{suffix}").unlink(missing_ok=True)
            return
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self.pg_database}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{self.pg_database}"'))
        finally:
            admin.dispose()
