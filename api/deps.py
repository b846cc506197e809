"""Request-scoped dependencies: the runtime, a database session, the acting user."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from core.errors import Unauthorized
from core.identity import Actor, authenticate_actor
from core.runtime import Runtime

bearer = HTTPBearer(auto_error=False, description="An API token from POST /api/v1/auth/token")


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    with runtime.db.session() as session:  # closing rolls back what was not committed
        yield session


DbSession = Annotated[Session, Depends(get_session)]


def get_actor(
    request: Request,
    session: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Actor:
    token = credentials.credentials if credentials else None
    if token is None:
        token = request.state.session_token if hasattr(request.state, "session_token") else None
    if not token:
        raise Unauthorized("send an API token: Authorization: Bearer <token>")
    return authenticate_actor(session, token)


CurrentActor = Annotated[Actor, Depends(get_actor)]
