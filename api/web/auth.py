"""Sign in, sign out, the language switch and the landing page."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import func, select

from api.deps import DbSession, RuntimeDep
from api.web.forms import PostedForm
from api.web.routing import LANG_COOKIE, LANG_COOKIE_MAX_AGE_S, WebRoute
from api.web.session import current_user, load_session
from api.web.templating import home_for, render
from core.errors import NotFound, Unauthorized
from core.i18n import LANGUAGES, _, get_language, using_language
from core.identity import Actor, authenticate_password, issue_token, revoke_token
from printers.models import Printer, Site
from scheduler.models import Job, Need, NeedStatus

router = APIRouter(route_class=WebRoute, include_in_schema=False)


def safe_next(target: str | None) -> str | None:
    """Only a path on this site: ``next=//evil.example`` must not redirect away."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


@router.get("/")
def index(request: Request, session: DbSession) -> Response:
    """Signed in: the role's first page. Otherwise the network at a glance, counts only."""
    if current_user(request, session) is not None:
        return RedirectResponse(home_for(request.state.actor), status_code=303)
    counts = {
        "sites": session.scalar(select(func.count(Site.id))) or 0,
        "printers": session.scalar(select(func.count(Printer.id))) or 0,
        "open_needs": session.scalar(
            select(func.count(Need.id)).where(Need.status == NeedStatus.OPEN)
        )
        or 0,
        "jobs": session.scalar(select(func.count(Job.id))) or 0,
    }
    return render(request, "index.html", {"counts": counts})


@router.get("/login")
def login_page(request: Request, session: DbSession, next: str | None = None) -> Response:
    if current_user(request, session) is not None:
        return RedirectResponse(safe_next(next) or home_for(request.state.actor), status_code=303)
    return render(request, "login.html", {"next": safe_next(next) or "", "username": ""})


@router.post("/login")
def login(request: Request, form: PostedForm, session: DbSession, runtime: RuntimeDep) -> Response:
    username = form.text("username", max_length=64)
    password = form.text("password", max_length=256)
    target = safe_next(form.raw("next"))
    context = {"next": target or "", "username": username, "form": form}
    if not form.ok:
        return render(request, "login.html", context, status_code=422)
    try:
        user = authenticate_password(session, username, password)
    except Unauthorized:
        form.problem = _("Wrong username or password.")
        return render(request, "login.html", context, status_code=422)
    token, _row = issue_token(
        session, user, ttl=timedelta(hours=runtime.settings.token_ttl_hours), name="web session"
    )
    session.commit()
    load_session(request).sign_in(token)
    actor = Actor.of(user)
    response = RedirectResponse(target or home_for(actor), status_code=303)
    if user.language and not request.cookies.get(LANG_COOKIE):
        # The user's saved preference wins over the browser's, unless chosen on this device.
        response.set_cookie(
            LANG_COOKIE, user.language, max_age=LANG_COOKIE_MAX_AGE_S, samesite="lax"
        )
    return response


@router.post("/logout")
def logout(request: Request, session: DbSession) -> Response:
    web_session = load_session(request)
    if web_session.token:
        try:
            revoke_token(session, web_session.token)
            session.commit()
        except NotFound:
            session.rollback()  # an unknown token is as good as revoked
    web_session.sign_out()
    web_session.flash("info", _("You are signed out."))
    return RedirectResponse("/login", status_code=303)


@router.post("/language")
def choose_language(request: Request, form: PostedForm, session: DbSession) -> Response:
    """Remember the language on this device (cookie) and for the user (their preference)."""
    language = form.choice("lang", LANGUAGES) or get_language()
    back = safe_next(form.raw("next")) or "/"
    user = current_user(request, session)
    if user is not None and user.language != language:
        # A personal preference, not a record of the network: no audit entry.
        user.language = language
        session.commit()
    response = RedirectResponse(back, status_code=303)
    response.set_cookie(LANG_COOKIE, language, max_age=LANG_COOKIE_MAX_AGE_S, samesite="lax")
    with using_language(language):
        load_session(request).flash("info", _("Language changed."))
    return response
