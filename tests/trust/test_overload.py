"""Overload answers 503 with Retry-After, not 500: every pooled database connection busy."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

from api.app import create_app
from core.identity import Role, issue_token
from core.runtime import Runtime
from tests.factories import make_user

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)


def test_an_exhausted_connection_pool_is_503_not_500(runtime: Runtime) -> None:
    from datetime import timedelta

    with runtime.db.session() as session:
        user = make_user(session, Role.COORDINATOR)
        token, _row = issue_token(session, user, ttl=timedelta(hours=1))
        session.commit()
    # One connection, no overflow, and a short wait for it: what a crowd does to the pool.
    engine = create_engine(
        runtime.db.url.replace("postgresql://", "postgresql+psycopg://"),
        pool_size=1,
        max_overflow=0,
        pool_timeout=0.5,
    )
    runtime.db.engine.dispose()
    runtime.db.engine = engine
    runtime.db.sessions = sessionmaker(engine, expire_on_commit=False)
    with TestClient(create_app(runtime, background=False)) as client, engine.connect() as held:
        held.execute(text("SELECT 1"))  # the only connection, kept busy
        answer = client.get("/api/v1/needs", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "5"
    assert answer.json()["type"].endswith("/unavailable")
    engine.dispose()
