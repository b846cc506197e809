"""Administration: users and roles, sites, the catalogue (parts, design versions and
their approval, materials, printer profiles)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from api.deps import DbSession, RuntimeDep
from api.web.forms import FormInput, PostedForm
from api.web.labels import label
from api.web.routing import PageActor, WebRoute
from api.web.session import load_session
from api.web.templating import render
from catalog import service as catalog
from catalog.tasks import request_slicing
from core import audit
from core.errors import DomainError
from core.i18n import LANGUAGES, _
from core.identity import Actor, Role, create_user, find_users, require_role
from printers import service as printers
from printers.models import SiteKind

router = APIRouter(route_class=WebRoute, include_in_schema=False)

USER_FIELDS = {"username": "username", "password": "password", "site": "site_ids"}
SITE_FIELDS = {"named": "name", "name": "name", "latitude": "lat", "hours": "name"}


@router.get("/admin")
def admin_home(request: Request, session: DbSession, actor: PageActor) -> Response:
    require_role(actor, Role.ADMIN)
    return render(
        request,
        "admin/home.html",
        {
            "users": len(find_users(session)),
            "sites": len(printers.find_sites(session)),
            "parts": len(catalog.find_parts(session)),
        },
    )


def _users_page(
    request: Request, session: Session, form: FormInput | None, *, status_code: int = 200
) -> Response:
    sites = printers.find_sites(session)
    context = {
        "users": find_users(session),
        "form": form,
        "roles": [(r.value, label("role", r.value)) for r in Role],
        "sites": [(str(s.id), s.name) for s in sites],
        "languages": [("", _("the browser's"))] + [(code, code.upper()) for code in LANGUAGES],
    }
    return render(request, "admin/users.html", context, status_code=status_code)


@router.get("/admin/users")
def users_page(request: Request, session: DbSession, actor: PageActor) -> Response:
    require_role(actor, Role.ADMIN)
    return _users_page(request, session, None)


@router.post("/admin/users")
def add_user(request: Request, form: PostedForm, session: DbSession, actor: PageActor) -> Response:
    """Create a user: the same composition as ``POST /api/v1/users`` (user + audit entry)."""
    require_role(actor, Role.ADMIN)
    username = form.text("username", max_length=64)
    display_name = form.text("display_name", required=False, max_length=128)
    password = form.text("password", max_length=256)
    role = form.choice("role", [r.value for r in Role])
    language = form.choice("language", LANGUAGES, required=False)
    site_ids = form.uuids("site_ids")
    known = {site.id: site for site in printers.find_sites(session)}
    if any(site_id not in known for site_id in site_ids):
        form.fail("site_ids", _("Choose among the proposed values."))
    sites = [known[site_id] for site_id in site_ids if site_id in known]
    if not form.ok or role is None:
        return _users_page(request, session, form, status_code=422)
    try:
        user = create_user(
            session,
            username=username,
            password=password,
            role=Role(role),
            display_name=display_name,
            language=language,
            sites=sites,
        )
        audit.record(
            session,
            actor=actor,
            action="user.created",
            entity_type="user",
            entity_id=user.id,
            data={"username": user.username, "role": user.role, "site_ids": site_ids},
        )
        session.commit()
    except DomainError as error:
        session.rollback()
        form.place(error, USER_FIELDS)
        return _users_page(request, session, form, status_code=422)
    load_session(request).flash("ok", _("User {name} created.", name=username))
    return RedirectResponse("/admin/users", status_code=303)


def _sites_page(
    request: Request, session: Session, form: FormInput | None, *, status_code: int = 200
) -> Response:
    context = {
        "sites": printers.find_sites(session),
        "form": form,
        "kinds": [(k.value, label("site", k.value)) for k in SiteKind],
    }
    return render(request, "admin/sites.html", context, status_code=status_code)


@router.get("/admin/sites")
def sites_page(request: Request, session: DbSession, actor: PageActor) -> Response:
    require_role(actor, Role.ADMIN)
    return _sites_page(request, session, None)


@router.post("/admin/sites")
def add_site(request: Request, form: PostedForm, session: DbSession, actor: PageActor) -> Response:
    require_role(actor, Role.ADMIN)
    name = form.text("name")
    kind = form.choice("kind", [k.value for k in SiteKind])
    address = form.text("address", required=False, max_length=256)
    lat = form.number("lat", minimum=-90, maximum=90)
    lon = form.number("lon", minimum=-180, maximum=180)
    contact = form.text("contact", required=False, max_length=256)
    if not form.ok or kind is None or lat is None or lon is None:
        return _sites_page(request, session, form, status_code=422)
    try:
        printers.create_site(
            session,
            name=name,
            kind=SiteKind(kind),
            address=address,
            lat=lat,
            lon=lon,
            contact=contact,
            actor=actor,
        )
    except DomainError as error:
        session.rollback()
        form.place(error, SITE_FIELDS)
        return _sites_page(request, session, form, status_code=422)
    load_session(request).flash("ok", _("Site {name} created.", name=name))
    return RedirectResponse("/admin/sites", status_code=303)


def _catalog_page(
    request: Request,
    session: Session,
    actor: Actor,
    form: FormInput | None,
    *,
    status_code: int = 200,
) -> Response:
    parts = catalog.find_parts(session)
    context: dict[str, Any] = {
        "parts": parts,
        "part_options": [(str(p.id), p.name) for p in parts],
        "materials": catalog.find_materials(session),
        "profiles": catalog.find_profiles(session),
        "form": form,
        "can_approve": actor.role is Role.ADMIN,
    }
    return render(request, "admin/catalog.html", context, status_code=status_code)


@router.get("/admin/catalog")
def catalog_page(request: Request, session: DbSession, actor: PageActor) -> Response:
    require_role(actor, Role.COORDINATOR)
    return _catalog_page(request, session, actor, None)


@router.post("/admin/catalog/versions")
def upload_version(
    request: Request,
    form: PostedForm,
    session: DbSession,
    actor: PageActor,
    runtime: RuntimeDep,
) -> Response:
    """A new draft design version of a part (checked before anything is stored)."""
    require_role(actor, Role.COORDINATOR)
    part_id = form.uuid("part_id")
    licence = form.text("licence", required=False, max_length=64)
    change_note = form.text("change_note", required=False, max_length=4000)
    upload = form.files.get("model")
    if upload is None:
        form.fail("model", _("Choose a model file (STL, 3MF or OBJ)."))
    if not form.ok or part_id is None or upload is None:
        return _catalog_page(request, session, actor, form, status_code=422)
    file_name, data = upload
    try:
        version = catalog.add_design_version(
            session,
            runtime.store,
            part_id=part_id,
            model=data,
            file_name=file_name,
            actor=actor,
            max_upload_bytes=runtime.settings.max_upload_bytes,
            licence=licence,
            change_note=change_note,
        )
    except DomainError as error:
        session.rollback()
        form.place(error, {"part": "part_id"})
        if form.problem:
            form.fail("model", form.problem)
            form.problem = ""
        return _catalog_page(request, session, actor, form, status_code=422)
    load_session(request).flash(
        "ok",
        _("Version {number} uploaded as a draft; an admin approves it.", number=version.number),
    )
    return RedirectResponse("/admin/catalog", status_code=303)


@router.post("/admin/catalog/versions/{version_id}/approve")
def approve(request: Request, version_id: UUID, session: DbSession, actor: PageActor) -> Response:
    version = catalog.approve_version(session, version_id=version_id, actor=actor)
    request_slicing()
    load_session(request).flash(
        "ok",
        _("{part} version {number} approved.", part=version.part.name, number=version.number),
    )
    return RedirectResponse("/admin/catalog", status_code=303)
