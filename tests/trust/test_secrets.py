"""Secrets and sessions: printer API keys encrypted at rest and never shown, argon2
passwords, tokens that expire and can be revoked, login limits, security headers."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import argon2
import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

import core.identity
from api.app import create_app
from api.security import ADDRESS_FAILURES, USERNAME_FAILURES
from core.clock import utcnow
from core.crypto import decrypt_secret
from core.db import Base
from core.errors import Invalid
from core.identity import ApiToken, Role, User
from core.runtime import Runtime
from printers.models import Printer
from printers.simulator.fleet import RunningSimulator, SimulatedFleet, serve_in_thread
from tests.factories import make_site, make_user
from tests.fixtures.database import make_settings
from tests.fixtures.services import RedisServer

PASSWORD = "password-123"
# Who may do what does not depend on the database: one backend is enough here.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def simulator() -> Iterator[RunningSimulator]:
    with serve_in_thread(SimulatedFleet(3, seed="secrets")) as running:
        yield running


def login(client: TestClient, username: str, password: str = PASSWORD) -> httpx.Response:
    return client.post("/api/v1/auth/token", json={"username": username, "password": password})


def bearer(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_a_printer_key_is_encrypted_at_rest_and_never_shown_or_logged(
    runtime: Runtime, simulator: RunningSimulator, capfd: pytest.CaptureFixture[str]
) -> None:
    with runtime.db.session() as session:
        site = make_site(session)
        operator = make_user(session, Role.OPERATOR, sites=(site,))
        auditor = make_user(session, Role.AUDITOR)
        admin = make_user(session, Role.ADMIN)
        names = operator.username, auditor.username, admin.username
        site_id = site.id
    good, wrong = simulator.address(1), simulator.address(2)
    with TestClient(create_app(runtime, background=False)) as client:
        as_operator, as_auditor, as_admin = (bearer(login(client, n)) for n in names)
        response = client.post(
            "/api/v1/printers",
            json={
                "site_id": str(site_id),
                "name": "MK3S",
                "driver": "simulator",
                "base_url": good.base_url,
                "api_key": good.api_key,
                "profile_key": "prusa-mk3s",
            },
            headers=as_operator,
        )
        assert response.status_code == 201, response.text
        printer_id = response.json()["id"]
        # A key the printer refuses: the error path logs, and must not log the key either.
        refused = client.post(
            "/api/v1/printers",
            json={
                "site_id": str(site_id),
                "name": "MK3S-2",
                "driver": "simulator",
                "base_url": good.base_url,
                "api_key": wrong.api_key,
                "profile_key": "prusa-mk3s",
            },
            headers=as_operator,
        )
        assert refused.status_code in (400, 422, 502, 503), refused.text
        assert wrong.api_key not in refused.text
        # Poll it (the key is decrypted and sent), then read everything an admin or an
        # auditor can read about it.
        from printers.tasks import poll_printers

        poll_printers.run()
        bodies = [
            client.get(path, headers=headers).text
            for path, headers in (
                ("/api/v1/printers", as_admin),
                (f"/api/v1/printers/{printer_id}", as_admin),
                ("/api/v1/audit", as_auditor),
                ("/api/v1/exports/audit", as_auditor),
                ("/api/v1/exports", as_auditor),
                ("/api/v1/openapi.json", {}),
            )
        ]
    for body in bodies:
        assert good.api_key not in body
    with runtime.db.session() as session:
        stored = session.scalars(select(Printer.api_key_encrypted)).one()
        dump = [
            json.dumps([list(map(str, row)) for row in session.execute(select(table)).all()])
            for table in Base.metadata.sorted_tables
        ]
    assert good.api_key not in stored
    assert decrypt_secret(stored, secret_key=runtime.secret_key) == good.api_key
    with pytest.raises(Invalid):
        decrypt_secret(stored, secret_key="another-secret-key-0123456789")
    # Nowhere in the database in clear: not in the audit trail, events or anything else.
    assert not [table for table in dump if good.api_key in table]
    captured = capfd.readouterr()
    assert good.api_key not in captured.out + captured.err
    assert wrong.api_key not in captured.out + captured.err


def test_passwords_are_argon2id_at_production_cost(runtime: Runtime) -> None:
    # The suite hashes with the cheapest argon2 (tests/conftest.py); the production hasher
    # is what hashed the module's dummy password at import.
    production = argon2.extract_parameters(core.identity._DUMMY_HASH)
    assert production.type is argon2.Type.ID
    assert production.memory_cost >= 64 * 1024  # KiB: OWASP's minimum is 19 MiB
    assert production.time_cost >= 2
    with runtime.db.session() as session:
        user = make_user(session, Role.COORDINATOR, password="a long passphrase")
        stored = session.scalars(select(User.password_hash).where(User.id == user.id)).one()
    assert stored.startswith("$argon2id$")
    assert "a long passphrase" not in stored


def test_tokens_expire_and_can_be_revoked(runtime: Runtime) -> None:
    with runtime.db.session() as session:
        name = make_user(session, Role.COORDINATOR).username
    with TestClient(create_app(runtime, background=False)) as client:
        first, second = bearer(login(client, name)), bearer(login(client, name))
        assert client.get("/api/v1/me", headers=first).status_code == 200
        # Revoked: the same token is refused from then on, the other one still works.
        assert client.delete("/api/v1/auth/token", headers=first).status_code == 204
        assert client.get("/api/v1/me", headers=first).status_code == 401
        assert client.get("/api/v1/me", headers=second).status_code == 200
        # Expired: moved into the past, it stops working at once.
        with runtime.db.session() as session:
            session.execute(update(ApiToken).values(expires_at=utcnow() - timedelta(seconds=1)))
            session.commit()
        answer = client.get("/api/v1/me", headers=second)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"
        # Tokens are kept as digests only: the database cannot hand one out.
        with runtime.db.session() as session:
            digests = list(session.scalars(select(ApiToken.token_hash)))
        token = second["Authorization"].removeprefix("Bearer ")
        assert token not in digests
        assert all(re.fullmatch(r"[0-9a-f]{64}", d) for d in digests)


def test_login_is_limited_per_username_and_per_address(runtime: Runtime) -> None:
    with runtime.db.session() as session:
        victim = make_user(session, Role.ADMIN).username
        bystander = make_user(session, Role.AUDITOR).username
    with TestClient(create_app(runtime, background=False)) as client:
        for _attempt in range(USERNAME_FAILURES):
            assert login(client, victim, "wrong-password").status_code == 401
        # Even the right password is refused now, before any hashing, with a delay to wait.
        blocked = login(client, victim)
        assert blocked.status_code == 429
        assert blocked.headers["content-type"] == "application/problem+json"
        assert int(blocked.headers["retry-after"]) > 0
        assert blocked.json()["type"].endswith("/too_many_attempts")
        # Usernames are counted case-insensitively: no way around by changing the case.
        assert login(client, victim.upper()).status_code == 429
        # The same address may still sign in someone else, until its own limit.
        assert login(client, bystander).status_code == 201
        for attempt in range(ADDRESS_FAILURES - USERNAME_FAILURES):
            assert login(client, f"nobody-{attempt}", "wrong-password").status_code == 401
        assert login(client, bystander).status_code == 429


def statements_of(answer: httpx.Response) -> str:
    """The database part of an answer's Server-Timing: ``db;dur=...;desc="N statements"``."""
    metrics = [m.strip() for m in answer.headers["server-timing"].split(",")]
    return next(m.split(";desc=")[1] for m in metrics if m.startswith("db;"))


def test_server_timing_does_not_tell_which_usernames_exist(runtime: Runtime) -> None:
    """Every answer says how many statements it ran: a failed sign-in must run as many
    for an unknown username as for a known one with a wrong password."""
    with runtime.db.session() as session:
        known = make_user(session, Role.AUDITOR).username
    with TestClient(create_app(runtime, background=False)) as client:
        wrong_password = login(client, known, "wrong-password")
        unknown_user = login(client, "nobody-at-all", "wrong-password")
        assert wrong_password.status_code == unknown_user.status_code == 401
        assert statements_of(wrong_password) == statements_of(unknown_user)
        assert statements_of(login(client, known)) != statements_of(unknown_user)  # it counts


def test_a_success_clears_the_username_count(runtime: Runtime) -> None:
    with runtime.db.session() as session:
        name = make_user(session, Role.COORDINATOR).username
    with TestClient(create_app(runtime, background=False)) as client:
        for _round in range(3):
            for _attempt in range(USERNAME_FAILURES - 1):
                assert login(client, name, "wrong-password").status_code == 401
            assert login(client, name).status_code == 201


def test_the_sign_in_page_is_limited_too(runtime: Runtime) -> None:
    with runtime.db.session() as session:
        name = make_user(session, Role.COORDINATOR).username
    with TestClient(create_app(runtime, background=False)) as client:
        page = client.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf is not None

        def attempt(password: str) -> httpx.Response:
            return client.post(
                "/login",
                data={"username": name, "password": password, "csrf_token": csrf.group(1)},
                follow_redirects=False,
            )

        for _attempt in range(USERNAME_FAILURES):
            assert attempt("wrong-password").status_code == 422
        blocked = attempt(PASSWORD)
        assert blocked.status_code == 429
        assert blocked.headers["content-type"].startswith("text/html")
        assert "retry-after" in blocked.headers
        # The API and the page share the count: the API is closed for that username too.
        assert login(client, name).status_code == 429


@pytest.mark.redis
def test_distributed_api_processes_share_the_limits_in_redis(
    runtime: Runtime, private_redis: RedisServer, tmp_path: Any
) -> None:
    with runtime.db.session() as session:
        name = make_user(session, Role.COORDINATOR).username
    settings = make_settings(
        tmp_path,
        runtime.settings.resolved_database_url,
        redis_url=private_redis.url,
        celery_queue=f"limits-{name}",
    )
    shared = Runtime(
        settings=settings, db=runtime.db, store=runtime.store, secret_key=runtime.secret_key
    )
    # Two apps: as two API processes behind one load balancer.
    first, second = (create_app(shared, background=False) for _ in range(2))
    with TestClient(first) as one, TestClient(second) as two:
        for index in range(USERNAME_FAILURES):
            client = one if index % 2 else two
            assert login(client, name, "wrong-password").status_code == 401
        assert login(one, name).status_code == 429
        assert login(two, name).status_code == 429
        # Redis gone: each process keeps limiting on its own rather than letting all through.
        private_redis.stop()
        try:
            other = "someone-else"
            for _attempt in range(USERNAME_FAILURES):
                assert login(one, other, "wrong-password").status_code == 401
            assert login(one, other, "wrong-password").status_code == 429
        finally:
            private_redis.start()


def test_security_headers_on_answers_and_pages(runtime: Runtime) -> None:
    with TestClient(create_app(runtime, background=False)) as client:
        api = client.get("/api/v1/me")
        page = client.get("/login")
        docs = client.get("/api/v1/docs")
        with TestClient(
            create_app(runtime, background=False), base_url="https://testserver"
        ) as secure:
            over_https = secure.get("/healthz")
    for answer in (api, page, docs, over_https):
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["referrer-policy"] == "same-origin"
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert "unsafe-inline" not in answer.headers["content-security-policy"]
        assert "unsafe-eval" not in answer.headers["content-security-policy"]
    assert api.headers["content-security-policy"].startswith("default-src 'none'")
    assert api.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "strict-transport-security" not in api.headers  # plain http: HSTS means nothing
    assert over_https.headers["strict-transport-security"].startswith("max-age=")
    # The docs page (Swagger UI) runs because its one inline script is allowed by hash.
    inline = re.findall(r"<script>(.*?)</script>", docs.text, re.S)
    assert inline
    import base64
    import hashlib

    for script in inline:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in docs.headers["content-security-policy"]
