import pytest
from pydantic import ValidationError

from api.core.settings import Environment, Settings


def test_defaults_use_a_sqlite_file_under_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = Settings(_env_file=None)
    assert s.database_url == "sqlite:///data/store.db"
    assert s.environment is Environment.development
    assert s.auto_migrate is True
    assert s.redis_url is None


def test_development_secret_is_generated_once_and_persisted(tmp_path):
    first = Settings(data_dir=tmp_path, _env_file=None).secret
    second = Settings(data_dir=tmp_path, _env_file=None).secret
    assert first == second and len(first) >= 48
    assert (tmp_path / "jwt_secret.dev").stat().st_mode & 0o077 == 0


def test_production_refuses_to_start_without_a_real_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("STORE_ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="STORE_JWT_SECRET is required"):
        Settings(data_dir=tmp_path, _env_file=None)
    monkeypatch.setenv("STORE_JWT_SECRET", "short")
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(data_dir=tmp_path, _env_file=None)
    monkeypatch.setenv("STORE_JWT_SECRET", "p" * 40)
    s = Settings(data_dir=tmp_path, _env_file=None)
    assert s.auto_migrate is False
    assert not (tmp_path / "jwt_secret.dev").exists()


def test_production_refuses_password_hashing_below_owasp_and_development_allows_it(tmp_path, monkeypatch):
    monkeypatch.setenv("STORE_ENVIRONMENT", "production")
    monkeypatch.setenv("STORE_JWT_SECRET", "p" * 40)
    monkeypatch.setenv("STORE_PASSWORD_HASH_MEMORY_KIB", "256")
    with pytest.raises(ValidationError, match="OWASP"):
        Settings(data_dir=tmp_path, _env_file=None)
    monkeypatch.setenv("STORE_ENVIRONMENT", "development")
    cheap = Settings(data_dir=tmp_path, _env_file=None)
    assert cheap.password_hash_memory_kib == 256


def test_hashes_made_at_any_cost_verify_and_carry_their_cost():
    from api.core.security import hash_password, verify_password

    cheap = hash_password("correct horse", time_cost=1, memory_kib=256)
    strong = hash_password("correct horse")
    assert "m=256,t=1" in cheap and "m=19456,t=2" in strong
    assert verify_password(cheap, "correct horse") and verify_password(strong, "correct horse")
    assert not verify_password(cheap, "wrong horse")


def test_the_warehouse_defaults_to_the_data_dir_and_follows_store_warehouse_path(tmp_path, monkeypatch):
    monkeypatch.delenv("STORE_WAREHOUSE_PATH", raising=False)
    assert Settings(data_dir=tmp_path, _env_file=None).warehouse_path == tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("STORE_WAREHOUSE_PATH", str(tmp_path / "elsewhere" / "wh.duckdb"))
    assert Settings(data_dir=tmp_path, _env_file=None).warehouse_path == tmp_path / "elsewhere" / "wh.duckdb"


def test_environment_variables_and_env_file(tmp_path, monkeypatch):
    env = tmp_path / ".env"
    env.write_text("STORE_ACCESS_TOKEN_MINUTES=5\nSTORE_CORS_ORIGINS=https://a.example, https://b.example\n")
    monkeypatch.setenv("STORE_REDIS_URL", "redis://127.0.0.1:6379/0")
    s = Settings(data_dir=tmp_path, _env_file=env)
    assert s.access_token_minutes == 5
    assert s.cors_origins == ["https://a.example", "https://b.example"]
    assert s.redis_url == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize(
    ("field", "value"), [("access_token_minutes", 0), ("jwt_algorithm", "none"), ("environment", "staging")]
)
def test_invalid_values_are_refused(tmp_path, field, value):
    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path, _env_file=None, **{field: value})
