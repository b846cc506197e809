"""Settings from the environment (``DISTRIFAB_*``), an optional ``.env`` and an optional TOML file.

The embedded default needs nothing: SQLite and files under ``data/``, background
work in-process, a secret key generated once and kept in the data folder.
Distributed mode (``DISTRIFAB_REDIS_URL`` set) refuses to start without an
explicit secret key, since several processes must share it.
"""

from __future__ import annotations

import os
import secrets
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from core.errors import Invalid


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DISTRIFAB_", env_file=".env", extra="ignore", validate_default=True
    )

    data_dir: Path = Path("data")
    database_url: str = ""  # empty: SQLite file in data_dir
    redis_url: str | None = None  # None: embedded mode, background work in-process
    secret_key: SecretStr | None = None  # None: embedded mode generates and keeps one
    storage_dir: Path | None = (
        None  # model files and G-code by content hash; default data_dir/blobs
    )
    celery_queue: str = "distrifab"

    # Printers
    poll_interval_s: float = Field(default=5.0, gt=0)
    offline_after_misses: int = Field(default=3, ge=1)
    printer_timeout_s: float = Field(default=5.0, gt=0)
    poll_concurrency: int = Field(default=100, ge=1)
    # ``distrifab worker`` runs at this lower CPU priority: when the host is busy, people's
    # requests go first and the background work (polls, dispatches, slicing) takes the rest.
    worker_niceness: int = Field(default=5, ge=0, le=19)
    max_print_attempts: int = Field(default=3, ge=1)

    # Planning
    replan_debounce_s: float = Field(default=5.0, ge=0)
    replan_time_limit_s: float = Field(default=5.0, gt=0)
    # Distributed mode: at most one re-plan per interval; the requests made meanwhile
    # are served by one run at its end (a burst of posted needs makes one re-plan).
    replan_min_interval_s: float = Field(default=30.0, ge=0)
    # The solver and the explanation run at this lower CPU priority (0: as the caller).
    replan_niceness: int = Field(default=10, ge=0, le=19)
    # Time for the alternatives of the plan's explanation, after the solve.
    replan_explain_budget_s: float = Field(default=5.0, gt=0)
    planning_horizon_days: int = Field(default=14, ge=1)
    default_timezone: str = "Europe/Paris"

    # Uploads and accounts
    max_upload_bytes: int = Field(default=50_000_000, gt=0)
    token_ttl_hours: float = Field(default=24 * 30, gt=0)
    default_language: str = "fr"

    # Pages
    map_tiles_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    # Credit shown on the map; change it with the tiles (a territory's own tile server).
    map_tiles_attribution: str = "© OpenStreetMap contributors"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        config_file = os.environ.get("DISTRIFAB_CONFIG_FILE")
        if config_file:
            if not Path(config_file).is_file():
                raise Invalid(f"DISTRIFAB_CONFIG_FILE points to {config_file}, which is not a file")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Settings:
        if self.redis_url and self.secret_key is None:
            raise ValueError(
                "distributed mode (DISTRIFAB_REDIS_URL set) needs DISTRIFAB_SECRET_KEY, "
                "shared by every process"
            )
        if self.secret_key is not None and len(self.secret_key.get_secret_value()) < 16:
            raise ValueError("DISTRIFAB_SECRET_KEY must be at least 16 characters")
        return self

    @property
    def embedded(self) -> bool:
        return not self.redis_url

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'distrifab.db').resolve()}"

    @property
    def resolved_storage_dir(self) -> Path:
        return self.storage_dir if self.storage_dir is not None else self.data_dir / "blobs"

    def resolved_secret_key(self) -> str:
        """The configured key, or (embedded mode) one generated once and kept in the data folder."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        key_file = self.data_dir / "secret.key"
        if key_file.exists():
            return key_file.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        # Written with O_EXCL so two processes starting together agree on one key.
        try:
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return key_file.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        return key


@cache
def get_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)
