"""The process's wiring: settings, database, file store. Built once at the edge."""

from __future__ import annotations

from dataclasses import dataclass

from core.db import Database, load_models
from core.settings import Settings, get_settings
from core.storage import BlobStore


@dataclass
class Runtime:
    settings: Settings
    db: Database
    store: BlobStore
    secret_key: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        load_models()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store_dir = settings.resolved_storage_dir
        store_dir.mkdir(parents=True, exist_ok=True)
        return cls(
            settings=settings,
            db=Database(settings.resolved_database_url),
            store=BlobStore(store_dir),
            secret_key=settings.resolved_secret_key(),
        )


_runtime: Runtime | None = None


def get_runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        _runtime = Runtime.from_settings(get_settings())
    return _runtime


def set_runtime(runtime: Runtime | None) -> None:
    """Install the wiring for this process (the app factory, the worker, tests)."""
    global _runtime
    _runtime = runtime
