"""Alembic environment: runs on the connection or URL that ``core.migrate`` hands over."""

from __future__ import annotations

from alembic import context

from core.db import load_models, make_engine

config = context.config
target_metadata = load_models()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]  # Alembic types this loosely
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters tables by copy; named constraints make it work
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline SQL generation is not supported; run `distrifab db upgrade`")
run_migrations_online()
