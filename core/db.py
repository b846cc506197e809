"""Declarative base, column types and the engine/session factory for SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, DateTime, Engine, MetaData, Numeric, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

from core.clock import as_utc

# Alembic needs named constraints to alter tables on SQLite (batch mode).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Timestamps stored with their zone and always read back as aware UTC.

    SQLite has no zone-aware type and returns naive values; without this the
    same model would compare differently on the two databases."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a timestamp column; use core.clock.utcnow()")
        return as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012  # SQLAlchemy reads it as a class constant
        datetime: UtcDateTime(),
        Decimal: Numeric(14, 4),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


def _sqlite_pragmas(dbapi_connection: Any, connection_record: ConnectionPoolEntry) -> None:
    # pysqlite's own BEGIN handling is switched off so that we can say BEGIN
    # IMMEDIATE: a deferred transaction that reads and then writes fails with
    # "database is locked" when another writer committed in between, which the
    # in-process poller and API requests would hit constantly.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str, *, echo: bool = False, pool_size: int = 10) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30}
        )
        event.listen(engine, "connect", _sqlite_pragmas)

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # Last in, first out: under load the same few connections serve one request after
    # another, and the rest age in the pool (where ``ping_idle_connections`` checks them).
    engine = create_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=pool_size * 2, pool_use_lifo=True
    )
    ping_idle_connections(engine)
    return engine


# A connection back in use within this long after its last use is not pinged: it was
# alive a moment ago, and a server gone since fails its statement like any other fault.
PING_AFTER_IDLE_S = 1.0


def ping_idle_connections(engine: Engine, *, after_idle_s: float = PING_AFTER_IDLE_S) -> None:
    """Check a pooled connection at checkout only when it has been idle a while.

    SQLAlchemy's ``pool_pre_ping`` adds a round trip to the server before every request
    (7 % of an API process's time on the load benchmark, and a network round trip each
    when PostgreSQL is on another host). A connection that sat in the pool can have been
    cut (a server restarted, a firewall's idle timeout): that one is pinged, and a dead
    one is replaced before anyone uses it."""
    dialect = engine.dialect

    def touch(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    def check(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is not None and time.monotonic() - idle_since < after_idle_s:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                # The pool drops this connection and checks out another (or a new one).
                raise DisconnectionError(str(error)) from error
            raise

    event.listen(engine, "connect", touch)
    event.listen(engine, "checkin", touch)
    event.listen(engine, "checkout", check)


class Database:
    """An engine and its session factory. Sessions do not expire objects on commit
    so that a use case can return what it wrote."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10) -> None:
        self.url = url
        self.engine = make_engine(url, echo=echo, pool_size=pool_size)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session for one unit of work; what is not committed is rolled back on exit."""
        with self.sessions() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


# Every module that defines tables, by name: the Celery worker, Alembic and the
# app load them all so that string relationships resolve, without core
# importing the domain packages at import time.
MODEL_MODULES = (
    "core.identity",
    "core.audit",
    "catalog.models",
    "printers.models",
    "scheduler.models",
    "quality.models",
)


def load_models() -> MetaData:
    import importlib

    for name in MODEL_MODULES:
        importlib.import_module(name)
    return Base.metadata
