"""Tokens and users."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from fastapi import APIRouter, Request, status

from api.deps import CurrentActor, DbSession, RuntimeDep
from api.schemas.common import PROBLEM_RESPONSES
from api.schemas.resources import TokenRead, TokenRequest, UserCreate, UserRead
from core import audit
from core.errors import NotFound
from core.identity import (
    Role,
    User,
    authenticate_password,
    create_user,
    find_users,
    issue_token,
    require_role,
    revoke_token,
)
from printers.models import Site

router = APIRouter(tags=["auth"], responses=PROBLEM_RESPONSES)


def user_read(user: User) -> UserRead:
    return UserRead(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        language=user.language,
        active=user.active,
        site_ids=[s.id for s in user.sites],
    )


@router.post("/auth/token", response_model=TokenRead, status_code=status.HTTP_201_CREATED)
def create_token(body: TokenRequest, session: DbSession, runtime: RuntimeDep) -> TokenRead:
    """Exchange a username and password for an API token (Bearer)."""
    user = authenticate_password(session, body.username, body.password)
    token, row = issue_token(
        session, user, ttl=timedelta(hours=runtime.settings.token_ttl_hours), name=body.name
    )
    session.commit()
    return TokenRead(access_token=token, expires_at=row.expires_at)


@router.delete("/auth/token", status_code=status.HTTP_204_NO_CONTENT)
def delete_token(request: Request, session: DbSession, actor: CurrentActor) -> None:
    """Revoke the token this request was made with."""
    header = request.headers.get("authorization", "")
    revoke_token(session, header.removeprefix("Bearer ").strip())
    session.commit()


@router.get("/me", response_model=UserRead)
def me(session: DbSession, actor: CurrentActor) -> UserRead:
    assert actor.user_id is not None
    user = session.get(User, actor.user_id)
    assert user is not None
    return user_read(user)


@router.get("/users", response_model=list[UserRead])
def list_users(session: DbSession, actor: CurrentActor) -> list[UserRead]:
    require_role(actor, Role.ADMIN)
    return [user_read(u) for u in find_users(session)]


@router.post("/users", response_model=UserRead, status_code=status.HTTP_201_CREATED)
def add_user(body: UserCreate, session: DbSession, actor: CurrentActor) -> UserRead:
    require_role(actor, Role.ADMIN)
    sites = []
    for site_id in body.site_ids:
        site = session.get(Site, site_id)
        if site is None:
            raise NotFound(f"no site {site_id}")
        sites.append(site)
    user = create_user(
        session,
        username=body.username,
        password=body.password,
        role=body.role,
        display_name=body.display_name,
        language=body.language,
        sites=sites,
    )
    audit.record(
        session,
        actor=actor,
        action="user.created",
        entity_type="user",
        entity_id=user.id,
        data={"username": user.username, "role": user.role, "site_ids": [s.id for s in sites]},
    )
    session.commit()
    return user_read(user)


@router.get("/users/{user_id}", response_model=UserRead)
def get_user(user_id: UUID, session: DbSession, actor: CurrentActor) -> UserRead:
    require_role(actor, Role.ADMIN)
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    return user_read(user)
