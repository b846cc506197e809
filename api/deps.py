"""Request-scoped dependencies: the runtime, a database session, the acting user."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from core.errors import Unauthorized
from core.identity import Actor, authenticate_actor
from core.runtime import Runtime

bearer = HTTPBearer(auto_error=False, description="An API token from POST /api/v1/auth/token")


# Async where nothing blocks: FastAPI runs each sync dependency in the thread pool, and
# the hops cost CPU on every request.
async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[Session]:
    session = runtime.db.sessions()  # connects at its first query, in the endpoint's thread
    try:
        yield session
    finally:
        # Closing rolls back what was not committed: database I/O, so in a thread.
        await run_in_threadpool(session.close)


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
