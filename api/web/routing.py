"""The route class of every page: session cookie, CSRF check, errors as HTML, headers.

Doing this in one route class rather than in each page means a new page cannot
forget the CSRF check, and a domain error raised anywhere under a page becomes an
HTML answer in the reader's language with the status of ``api.errors`` (the one
class-to-status table), not problem+json.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

import structlog
from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm.exc import StaleDataError

from api.deps import DbSession
from api.errors import TITLES, status_for
from api.web.session import CSRF_FIELD, CSRF_HEADER, current_user, load_session, save_session
from api.web.templating import is_htmx, render
from core.errors import DomainError
from core.i18n import N_, _, normalise_language
from core.identity import Actor

log = structlog.get_logger()

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LANG_COOKIE = "lang"
LANG_COOKIE_MAX_AGE_S = 365 * 24 * 3600

CSRF_REFUSED = N_(
    "This form has expired or did not come from distrifab. Reload the page and try again."
)


class LoginRequired(Exception):
    """A page that needs a signed-in user was asked for without one."""


class CsrfRefused(Exception):
    pass


def page_actor(request: Request, session: DbSession) -> Actor:
    """The signed-in user's Actor; anyone else is sent to the login page."""
    if current_user(request, session) is None:
        raise LoginRequired
    actor: Actor = request.state.actor
    return actor


PageActor = Annotated[Actor, Depends(page_actor)]


def tile_origin(tiles_url: str) -> str:
    """The origin a Content-Security-Policy must allow for map tiles ({s} becomes *)."""
    parts = urlsplit(tiles_url.replace("{s}", "subdomain"))
    if not parts.scheme or not parts.netloc:
        return ""
    host = parts.netloc.replace("subdomain", "*")
    return f"{parts.scheme}://{host}"


def security_headers(request: Request, response: Response) -> None:
    tiles = tile_origin(request.app.state.runtime.settings.map_tiles_url)
    # Everything the pages use is served from here: a CDN request would be refused.
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src 'self' data: {tiles}; connect-src 'self'; font-src 'self'; "
        "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    ).replace("  ", " ")
    # Pages show operational data, often on shared fablab computers: never from cache.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Vary"] = "Cookie, Accept-Language, HX-Request"


async def check_csrf(request: Request) -> None:
    """Refuse a state-changing request without this session's token or from another origin."""
    origin = request.headers.get("origin")
    if origin and origin != "null":
        host = request.headers.get("host", "")
        if urlsplit(origin).netloc != host:
            raise CsrfRefused
    web_session = load_session(request)
    candidate = request.headers.get(CSRF_HEADER)
    if not candidate:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()  # cached: the page reads the same parsed form
            value = form.get(CSRF_FIELD)
            candidate = value if isinstance(value, str) else None
    if not web_session.csrf_matches(candidate):
        raise CsrfRefused


def error_page(request: Request, *, status: int, title: str, detail: str) -> Response:
    template = "_error_fragment.html" if is_htmx(request) else "error.html"
    headers: dict[str, str] = {}
    if is_htmx(request):
        # Show it in the page's message area rather than in place of the live region.
        headers = {"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"}
    return render(
        request,
        template,
        {"status": status, "title": title, "detail": detail},
        status_code=status,
        headers=headers,
    )


def domain_error_page(request: Request, error: DomainError) -> Response:
    status = status_for(error)
    title = _(TITLES.get(error.code, TITLES["bad_request"]))
    return error_page(request, status=status, title=title, detail=_(error.detail))


def login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = "/login?next=" + quote(target, safe="/")
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


class WebRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            response = await _guarded(handler, request)
            save_session(request, response)
            security_headers(request, response)
            language = normalise_language(request.query_params.get("lang"))
            if language:
                response.set_cookie(
                    LANG_COOKIE, language, max_age=LANG_COOKIE_MAX_AGE_S, samesite="lax"
                )
            return response

        return page


async def _guarded(
    handler: Callable[[Request], Coroutine[Any, Any, Response]], request: Request
) -> Response:
    load_session(request)
    try:
        if request.method not in SAFE_METHODS:
            await check_csrf(request)
        return await handler(request)
    except LoginRequired:
        return login_redirect(request)
    except CsrfRefused:
        log.warning("csrf_refused", path=request.url.path)
        return error_page(request, status=403, title=_("Not allowed"), detail=_(CSRF_REFUSED))
    except DomainError as error:
        return domain_error_page(request, error)
    except RequestValidationError:
        # Path and query parameters of a page (ids in URLs): an edited URL is a missing page.
        return error_page(
            request,
            status=404,
            title=_("Not found"),
            detail=_("This page does not exist, or is not visible to you."),
        )
    except StaleDataError:
        return error_page(
            request,
            status=409,
            title=_("Changed by someone else meanwhile"),
            detail=_("Reload the page and try again."),
        )
    except OperationalError as error:
        log.error("database_unavailable", error=str(error.orig))
        return error_page(
            request,
            status=503,
            title=_("Temporarily unavailable"),
            detail=_("The database cannot be reached right now; nothing was changed."),
        )
