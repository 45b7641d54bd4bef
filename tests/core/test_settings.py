"""Settings: prefix, URLs, refusal of unsafe values."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from reelscale.core.settings import Settings


def test_reads_prefixed_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REELSCALE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("REELSCALE_DATABASE_URL", "postgresql+asyncpg://db/reelscale")
    monkeypatch.setenv("REELSCALE_PORT", "9001")
    settings = Settings()
    assert settings.data_dir == tmp_path
    assert settings.resolved_database_url == "postgresql+asyncpg://db/reelscale"
    assert settings.port == 9001


def test_embedded_defaults_live_in_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path / 'reelscale.db'}"


def test_access_tokens_cannot_outlive_15_minutes() -> None:
    with pytest.raises(ValidationError, match="at most 900"):
        Settings(access_token_ttl_s=3600)


def test_production_refuses_a_missing_or_weak_secret() -> None:
    with pytest.raises(ValidationError, match="must be set"):
        Settings(env="production")
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(env="production", secret_key="short")


def test_generated_secret_is_kept_and_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = settings.resolved_secret_key()
    assert first == Settings(data_dir=tmp_path).resolved_secret_key()
    assert (tmp_path / "secret.key").stat().st_mode & 0o077 == 0
    assert len(first) >= 32


def test_the_account_limit_cannot_exceed_asvs() -> None:
    with pytest.raises(ValidationError):
        Settings(login_failures_per_account_hour=500)


def test_production_refuses_weak_argon2() -> None:
    strong = "s" * 40
    with pytest.raises(ValidationError, match="OWASP"):
        Settings(env="production", secret_key=strong, argon2_memory_kib=1024)
    assert Settings(env="production", secret_key=strong).argon2_memory_kib >= 19 * 1024
