"""An API client on a real database with one token per role."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.identity import Role, issue_token
from core.runtime import Runtime
from printers.models import Site
from tests.factories import make_site, make_user
from tests.fixtures.database import TEST_SECRET, postgres_url
from tests.fixtures.services import distrifab_env


@dataclass
class Api:
    client: TestClient
    runtime: Runtime
    site: Site
    other_site: Site
    headers: dict[str, dict[str, str]]

    def as_(self, who: str) -> dict[str, str]:
        return self.headers[who]


@pytest.fixture
def api(runtime: Runtime) -> Iterator[Api]:
    with runtime.db.session() as session:
        site = make_site(session, name="Fablab UTC", lat=49.4, lon=2.8)
        other = make_site(session, name="PME Venette", lat=49.41, lon=2.79)
        users = {
            "admin": make_user(session, Role.ADMIN),
            "coordinator": make_user(session, Role.COORDINATOR),
            "operator": make_user(session, Role.OPERATOR, sites=(site,)),
            "other_operator": make_user(session, Role.OPERATOR, sites=(other,)),
            "auditor": make_user(session, Role.AUDITOR),
        }
        headers = {}
        for who, user in users.items():
            token, _row = issue_token(session, user, ttl=timedelta(hours=1))
            # English messages: the assertions read them (French is the default).
            headers[who] = {"Authorization": f"Bearer {token}", "Accept-Language": "en"}
        headers["anonymous"] = {"Accept-Language": "en"}
        session.commit()
    app = create_app(runtime, background=False)
    with TestClient(app) as client:
        yield Api(client=client, runtime=runtime, site=site, other_site=other, headers=headers)


@pytest.fixture
def process_env(postgres_schema: str, tmp_path: Path) -> Callable[..., dict[str, str]]:
    """The environment of distrifab processes in distributed mode on the test PostgreSQL
    schema and the local Redis (a queue of their own), with extra settings."""

    def env(**settings: object) -> dict[str, str]:
        return distrifab_env(
            database_url=postgres_url(postgres_schema),
            data_dir=tmp_path / "data",
            secret_key=TEST_SECRET,
            redis_url="redis://127.0.0.1:6379/0",
            queue=f"distrifab-test-{uuid.uuid4().hex[:8]}",
            **settings,
        )

    return env
