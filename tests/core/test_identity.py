"""Passwords, tokens and the role and site rules."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest

from core.clock import utcnow
from core.errors import Conflict, Forbidden, Invalid, Unauthorized
from core.identity import (
    Actor,
    ApiToken,
    Role,
    authenticate_password,
    authenticate_token,
    hash_password,
    issue_token,
    require_role,
    require_site,
    revoke_token,
    verify_password,
)
from core.runtime import Runtime
from tests.factories import make_site, make_user


def test_password_hash_is_argon2_and_verifies() -> None:
    digest = hash_password("correct horse")
    assert digest.startswith("$argon2id$")
    assert verify_password(digest, "correct horse")
    assert not verify_password(digest, "wrong horse")
    with pytest.raises(Invalid):
        hash_password("short")


def test_login_and_token_lifecycle(runtime: Runtime) -> None:
    with runtime.db.session() as session:
        user = make_user(session, Role.COORDINATOR, password="good-password")
        with pytest.raises(Unauthorized):
            authenticate_password(session, user.username, "bad-password")
        with pytest.raises(Unauthorized):
            authenticate_password(session, "nobody", "good-password")
        assert authenticate_password(session, user.username, "good-password").id == user.id
        token, row = issue_token(session, user, ttl=timedelta(hours=1))
        session.commit()
        assert row.token_hash != token
        assert token not in row.token_hash
        assert authenticate_token(session, token).id == user.id
        revoke_token(session, token)
        session.commit()
        with pytest.raises(Unauthorized):
            authenticate_token(session, token)


def test_expired_token_is_refused(runtime: Runtime) -> None:
    with runtime.db.session() as session:
        user = make_user(session, Role.AUDITOR)
        token, row = issue_token(session, user, ttl=timedelta(hours=1))
        row.expires_at = utcnow() - timedelta(seconds=1)
        session.commit()
        with pytest.raises(Unauthorized):
            authenticate_token(session, token)
        assert session.get(ApiToken, row.id) is not None


def test_duplicate_username_is_a_conflict(runtime: Runtime) -> None:
    from core.identity import create_user

    with runtime.db.session() as session:
        user = make_user(session, Role.ADMIN)
        with pytest.raises(Conflict):
            create_user(session, username=user.username, password="password-123", role=Role.ADMIN)


def test_operators_act_on_their_own_sites_only(runtime: Runtime) -> None:
    with runtime.db.session() as session:
        site, other = make_site(session), make_site(session)
        actor = Actor.of(make_user(session, Role.OPERATOR, sites=(site,)))
    require_site(actor, site.id)
    with pytest.raises(Forbidden):
        require_site(actor, other.id)
    with pytest.raises(Forbidden):
        require_role(actor, Role.COORDINATOR)
    auditor = Actor(user_id=uuid4(), username="a", role=Role.AUDITOR)
    with pytest.raises(Forbidden):
        require_site(auditor, site.id)
    admin = Actor(user_id=uuid4(), username="root", role=Role.ADMIN)
    require_site(admin, other.id)
    require_role(admin, Role.COORDINATOR)
