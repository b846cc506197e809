"""An API client on a real database with one token per role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.identity import Role, issue_token
from core.runtime import Runtime
from printers.models import Site
from tests.factories import make_site, make_user


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
