"""Pages on a real database: one signed-in browser-like client per role."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from core.identity import Role
from core.runtime import Runtime
from printers.models import PrinterStatusValue, Site
from scheduler import service as scheduler
from scheduler.models import Job, JobState
from tests.factories import (
    make_delivery_point,
    make_need,
    make_part,
    make_printer,
    make_site,
    make_user,
)
from tests.web.browser import browser, people, playwright_session, running_app  # noqa: F401  # fixtures

PASSWORD = "password-123"
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF_INPUT.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


@dataclass
class Pages:
    """The app with a site, a second site and one user per role (usernames by role)."""

    runtime: Runtime
    app: object
    site: Site
    other_site: Site
    usernames: dict[str, str]
    clients: list[TestClient] = field(default_factory=list)

    def client(self, *, language: str = "en") -> TestClient:
        client = TestClient(self.app, headers={"Accept-Language": language})  # type: ignore[arg-type]
        client.__enter__()
        self.clients.append(client)
        return client

    def signed_in(self, who: str, *, language: str = "en") -> TestClient:
        client = self.client(language=language)
        token = csrf_of(client.get("/login").text)
        response = client.post(
            "/login",
            data={"username": self.usernames[who], "password": PASSWORD, "csrf_token": token},
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text
        return client


def post_form(client: TestClient, page: str, action: str, data: dict[str, str], **kwargs: object):  # type: ignore[no-untyped-def]
    """Post ``data`` to ``action`` with the CSRF token of ``page``, as a browser would."""
    token = csrf_of(client.get(page).text)
    return client.post(action, data={**data, "csrf_token": token}, follow_redirects=False, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def pages(runtime: Runtime) -> Iterator[Pages]:
    with runtime.db.session() as session:
        site = make_site(session, name="Fablab UTC", lat=49.4015, lon=2.8005)
        other = make_site(session, name="Atelier Venette", lat=49.417, lon=2.794)
        users = {
            "admin": make_user(session, Role.ADMIN, password=PASSWORD),
            "coordinator": make_user(session, Role.COORDINATOR, password=PASSWORD),
            "operator": make_user(session, Role.OPERATOR, sites=(site,), password=PASSWORD),
            "other_operator": make_user(session, Role.OPERATOR, sites=(other,), password=PASSWORD),
            "auditor": make_user(session, Role.AUDITOR, password=PASSWORD),
        }
        usernames = {who: user.username for who, user in users.items()}
    app = create_app(runtime, background=False)
    result = Pages(runtime=runtime, app=app, site=site, other_site=other, usernames=usernames)
    try:
        yield result
    finally:
        for client in result.clients:
            client.__exit__(None, None, None)


def planned_job(pages: Pages, site: Site) -> Job:
    """A one-plate need planned on a printer of ``site`` (sliced and planned for real)."""
    from catalog.demo_parts import face_shield_headband

    runtime = pages.runtime
    with runtime.db.session() as session:
        printer = make_printer(
            runtime, session, site, base_url="http://127.0.0.1:9", api_key="not-used-here"
        )
        # Never polled here: say it answered, so that the planner may use it.
        printer.status = PrinterStatusValue.OPERATIONAL
        session.commit()
        part, _version = make_part(runtime, session, face_shield_headband(height_mm=0.6))
        point = make_delivery_point(session)
        need = make_need(session, part, point, quantity=1)
        need_id = need.id
    scheduler.slice_open_needs(runtime.db, runtime.store)
    scheduler.replan(runtime.db, trigger="test", time_limit_s=1.0, horizon_days=14)
    with runtime.db.session() as session:
        job = session.scalars(select(Job).where(Job.need_id == need_id)).one()
        assert job.state is JobState.PLANNED, job.state
        assert job.site_id == site.id
        return job
