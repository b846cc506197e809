"""Settings from the environment, a TOML file, and refusal of unsafe combinations."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from core.errors import Invalid
from core.settings import Settings


def test_embedded_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings(data_dir=tmp_path / "data")
    assert settings.embedded
    assert (
        settings.resolved_database_url
        == f"sqlite:///{(tmp_path / 'data' / 'distrifab.db').resolve()}"
    )
    assert settings.resolved_storage_dir == tmp_path / "data" / "blobs"
    key = settings.resolved_secret_key()
    assert len(key) > 40
    assert settings.resolved_secret_key() == key  # kept, not regenerated
    assert (tmp_path / "data" / "secret.key").stat().st_mode & 0o777 == 0o600


def test_environment_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DISTRIFAB_POLL_INTERVAL_S", "2.5")
    monkeypatch.setenv("DISTRIFAB_DATABASE_URL", "postgresql+psycopg://db/x")
    settings = Settings(data_dir=tmp_path)
    assert settings.poll_interval_s == 2.5
    assert settings.resolved_database_url == "postgresql+psycopg://db/x"


def test_toml_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "distrifab.toml"
    config.write_text('offline_after_misses = 7\ndefault_language = "en"\n')
    monkeypatch.setenv("DISTRIFAB_CONFIG_FILE", str(config))
    settings = Settings(data_dir=tmp_path)
    assert settings.offline_after_misses == 7
    assert settings.default_language == "en"


def test_missing_toml_file_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DISTRIFAB_CONFIG_FILE", str(tmp_path / "nope.toml"))
    with pytest.raises(Invalid, match="not a file"):
        Settings(data_dir=tmp_path)


def test_distributed_mode_needs_a_shared_secret(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="DISTRIFAB_SECRET_KEY"):
        Settings(data_dir=tmp_path, redis_url="redis://127.0.0.1:6379/0")
    with pytest.raises(ValidationError, match="at least 16"):
        Settings(data_dir=tmp_path, secret_key="short")
    assert not Settings(data_dir=tmp_path, redis_url="redis://x", secret_key="x" * 32).embedded


def test_bad_values_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path, poll_interval_s=0)
