"""Jinja2 for the pages: translation, dates and numbers in the reader's language, the
CSRF token and the navigation of the signed-in role."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime, format_timedelta
from babel.numbers import format_decimal
from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from api.web.labels import label
from api.web.session import CSRF_FIELD, load_session
from core.clock import as_utc, utcnow
from core.i18n import LANGUAGES, _, get_language
from core.identity import Actor, Role

TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates"
STATIC_DIR = Path(__file__).resolve().parents[1] / "static"


@dataclass(frozen=True, slots=True)
class NavItem:
    href: str
    label: str


def navigation(actor: Actor | None) -> list[NavItem]:
    """The menu of a role: admins see every role's entries."""
    if actor is None:
        return []
    items: list[NavItem] = []
    role = actor.role
    if role in (Role.COORDINATOR, Role.ADMIN):
        items += [
            NavItem("/needs", _("Needs")),
            NavItem("/plan", _("Plan")),
            NavItem("/map", _("Map")),
            NavItem("/stats", _("Statistics")),
            NavItem("/admin/catalog", _("Catalogue")),
        ]
    if role in (Role.OPERATOR, Role.ADMIN, Role.COORDINATOR):
        items.append(NavItem("/sites", _("My sites") if role is Role.OPERATOR else _("Sites")))
    if role in (Role.AUDITOR, Role.ADMIN):
        items += [
            NavItem("/audit", _("Traceability")),
            NavItem("/audit/non-conformities", _("Non-conformities")),
            NavItem("/audit/waste", _("Waste")),
            NavItem("/audit/chain", _("Audit trail")),
        ]
    if role is Role.ADMIN:
        items.append(NavItem("/admin", _("Administration")))
    return items


def home_for(actor: Actor) -> str:
    return {
        Role.COORDINATOR: "/needs",
        Role.OPERATOR: "/sites",
        Role.AUDITOR: "/audit",
        Role.ADMIN: "/admin",
    }[actor.role]


@cache
def static_version() -> str:
    """A digest of the stylesheet and script, so browsers refetch them after an upgrade."""
    digest = hashlib.sha256()
    for name in ("css/distrifab.css", "js/distrifab.js"):
        digest.update((STATIC_DIR / name).read_bytes())
    return digest.hexdigest()[:12]


def _zone(request: Request) -> ZoneInfo:
    return ZoneInfo(request.app.state.runtime.settings.default_timezone)


def _context(request: Request) -> dict[str, Any]:
    web_session = load_session(request)
    actor: Actor | None = getattr(request.state, "actor", None)
    return {
        "actor": actor,
        "nav": navigation(actor),
        "csrf_token": web_session.csrf,
        "csrf_field": CSRF_FIELD,
        # A callable: only the full page pops them, so a live fragment never swallows one.
        "flashes": web_session.pop_flashes,
        "languages": LANGUAGES,
        "path": request.url.path,
        "static_version": static_version(),
        "zone": _zone(request),
    }


templates = Jinja2Templates(directory=TEMPLATES_DIR, context_processors=[_context])
templates.env.globals["_"] = _
templates.env.globals["language"] = get_language
templates.env.globals["now"] = utcnow
templates.env.globals["label"] = label
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True


def _when(value: datetime | None, zone: ZoneInfo, style: str = "short") -> str:
    if value is None:
        return "—"
    return format_datetime(as_utc(value), style, tzinfo=zone, locale=get_language())


def _iso_when(value: str | None, zone: ZoneInfo, style: str = "short") -> str:
    """An ISO 8601 instant from a JSON document (traceability chains), shown like ``when``."""
    return _when(datetime.fromisoformat(value), zone, style) if value else "—"


def _hour(value: datetime, zone: ZoneInfo) -> str:
    """A short day-and-hour label for time axes."""
    return format_datetime(as_utc(value), "EEE HH:mm", tzinfo=zone, locale=get_language())


def _relative(value: datetime | None) -> str:
    if value is None:
        return "—"
    return format_timedelta(
        as_utc(value) - utcnow(), add_direction=True, threshold=1.5, locale=get_language()
    )


def _number(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, format=pattern, locale=get_language())


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return format_timedelta(
        timedelta(seconds=seconds), threshold=1.5, format="short", locale=get_language()
    )


templates.env.filters["when"] = _when
templates.env.filters["relative"] = _relative
templates.env.filters["hour"] = _hour
templates.env.filters["iso_when"] = _iso_when
templates.env.filters["number"] = _number
templates.env.filters["duration"] = _duration


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    return templates.TemplateResponse(
        request, name, context or {}, status_code=status_code, headers=headers
    )


def render_text(request: Request, name: str, context: dict[str, Any]) -> str:
    """A template's HTML as text (for live fragments, which hash it to skip unchanged swaps)."""
    full = {"request": request, **_context(request), **context}
    return templates.get_template(name).render(full)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"
