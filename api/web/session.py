"""Cookie sessions for the pages, and their CSRF tokens.

The cookie is signed (itsdangerous, keyed by the deployment's secret key), HttpOnly
and SameSite=Lax. It holds the API token issued at login (``core.identity.issue_token``),
so that a page is authorised exactly like an API call and a logout revokes the
token server-side: a copied cookie is worthless afterwards. It also holds a random
CSRF secret, created with the session and renewed at login, that every
state-changing request must send back (form field or ``X-CSRF-Token`` header).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from core.errors import Unauthorized
from core.identity import Actor, User, authenticate_token
from core.runtime import Runtime

COOKIE = "distrifab_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_SALT = "distrifab.web.session.v1"


@dataclass
class WebSession:
    token: str | None = None
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    flashes: list[tuple[str, str]] = field(default_factory=list)  # (level, translated text)
    changed: bool = False

    def flash(self, level: str, message: str) -> None:
        """Show ``message`` (already translated) on the next page rendered."""
        self.flashes.append((level, message))
        self.changed = True

    def pop_flashes(self) -> list[tuple[str, str]]:
        shown, self.flashes = self.flashes, []
        if shown:
            self.changed = True
        return shown

    def sign_in(self, token: str) -> None:
        # A new CSRF secret at login: a token planted before login (fixation) stops working.
        self.token = token
        self.csrf = secrets.token_urlsafe(32)
        self.changed = True

    def sign_out(self) -> None:
        self.token = None
        self.csrf = secrets.token_urlsafe(32)
        self.changed = True

    def csrf_matches(self, candidate: str | None) -> bool:
        return bool(candidate) and hmac.compare_digest(self.csrf, str(candidate))


def _serializer(runtime: Runtime) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(runtime.secret_key, salt=_SALT)


def _max_age_s(runtime: Runtime) -> int:
    return int(runtime.settings.token_ttl_hours * 3600)


def load_session(request: Request) -> WebSession:
    """The request's session (a fresh, unsaved one when the cookie is absent or forged)."""
    existing: WebSession | None = getattr(request.state, "web_session", None)
    if existing is not None:
        return existing
    runtime: Runtime = request.app.state.runtime
    raw = request.cookies.get(COOKIE)
    web_session = WebSession(changed=True)
    if raw:
        try:
            payload: dict[str, Any] = _serializer(runtime).loads(raw, max_age=_max_age_s(runtime))
            web_session = WebSession(
                token=payload.get("t"),
                csrf=str(payload["c"]),
                flashes=[(str(level), str(text)) for level, text in payload.get("f", [])],
            )
        except (BadSignature, KeyError, TypeError, ValueError):
            pass  # expired, forged or from another deployment: start afresh
    request.state.web_session = web_session
    return web_session


def save_session(request: Request, response: Response) -> None:
    web_session: WebSession | None = getattr(request.state, "web_session", None)
    if web_session is None or not web_session.changed:
        return
    runtime: Runtime = request.app.state.runtime
    payload = {"t": web_session.token, "c": web_session.csrf, "f": web_session.flashes}
    response.set_cookie(
        COOKIE,
        _serializer(runtime).dumps(payload),
        max_age=_max_age_s(runtime),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def current_user(request: Request, session: Session) -> User | None:
    """The signed-in user, or None; a revoked or expired token signs the session out."""
    web_session = load_session(request)
    if not web_session.token:
        return None
    try:
        user = authenticate_token(session, web_session.token)
    except Unauthorized:
        web_session.sign_out()
        return None
    request.state.actor = Actor.of(user)
    request.state.user = user
    return user
