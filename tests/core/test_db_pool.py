"""Pooled PostgreSQL connections: pinged only after sitting idle, replaced when dead."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from core.db import make_engine, ping_idle_connections
from tests.fixtures.database import POSTGRES_ADMIN_URL

IDLE_S = 0.3


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = create_engine(POSTGRES_ADMIN_URL, pool_size=1, max_overflow=0)
    ping_idle_connections(engine, after_idle_s=IDLE_S)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the pings the engine sends (the real ping still runs)."""
    calls: list[int] = []
    real = engine.dialect.do_ping

    def counted(dbapi_connection: object) -> bool:
        calls.append(1)
        return real(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return calls


def backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
    assert isinstance(pid, int)
    return pid


def terminate(pid: int) -> None:
    admin = create_engine(POSTGRES_ADMIN_URL)
    try:
        with admin.connect() as connection:
            assert connection.execute(
                text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}
            ).scalar_one()
            # The backend is gone once it no longer shows in the activity view.
            for _ in range(100):
                alive = connection.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
                ).scalar_one()
                connection.commit()
                if not alive:
                    return
                time.sleep(0.05)
        raise AssertionError(f"backend {pid} did not end")
    finally:
        admin.dispose()


def test_a_connection_used_again_at_once_is_not_pinged(engine: Engine, pings: list[int]) -> None:
    first = backend_pid(engine)
    assert backend_pid(engine) == first  # one pooled connection, reused
    assert pings == []


def test_an_idle_connection_is_pinged_before_use(engine: Engine, pings: list[int]) -> None:
    first = backend_pid(engine)
    time.sleep(IDLE_S * 2)
    assert backend_pid(engine) == first
    assert pings == [1]


def test_an_idle_connection_the_server_dropped_is_replaced_before_anyone_uses_it(
    engine: Engine, pings: list[int]
) -> None:
    first = backend_pid(engine)
    terminate(first)  # a server restart or a firewall's idle timeout, as the pool sees it
    time.sleep(IDLE_S * 2)
    second = backend_pid(engine)  # no error: the dead one was found by the ping
    assert second != first
    assert pings == [1]


def test_a_connection_dropped_while_just_used_fails_once_then_the_pool_recovers(
    engine: Engine, pings: list[int]
) -> None:
    """The price of not pinging every checkout: a connection cut within the idle
    threshold fails the statement it carries (an API request answers 503); the pool
    then replaces it, and the next one works."""
    first = backend_pid(engine)
    terminate(first)
    with pytest.raises(DBAPIError) as raised:
        backend_pid(engine)
    assert raised.value.connection_invalidated
    assert backend_pid(engine) != first
    assert pings == []


def test_the_engines_distrifab_makes_ping_idle_connections() -> None:
    engine = make_engine(POSTGRES_ADMIN_URL)
    try:
        first = backend_pid(engine)
        terminate(first)
        time.sleep(1.5)  # beyond PING_AFTER_IDLE_S
        assert backend_pid(engine) != first
    finally:
        engine.dispose()
