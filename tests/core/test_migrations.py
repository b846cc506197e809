"""The Alembic revisions build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from core.db import load_models
from core.migrate import current_revision, upgrade
from core.runtime import Runtime


def test_migrations_match_the_models(runtime: Runtime) -> None:
    with runtime.db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), load_models())
    assert differences == []


def test_upgrade_is_idempotent(runtime: Runtime) -> None:
    before = current_revision(runtime.db.engine)
    upgrade(runtime.db.engine)
    assert current_revision(runtime.db.engine) == before is not None
