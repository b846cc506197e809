"""The operator's site forms that are not about the queue: registering a printer (its
server is asked first, as the API does) and weighing waste."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from api.deps import DbSession, RuntimeDep
from api.web.forms import FormInput, PostedForm
from api.web.labels import label
from api.web.operator import acts_on, visible_site
from api.web.routing import PageActor, WebRoute
from api.web.session import load_session
from api.web.templating import render
from catalog import service as catalog
from catalog.tasks import request_slicing
from core.errors import DomainError
from core.i18n import _
from core.identity import Actor
from printers import service as printers
from printers.models import DriverKind, Site
from quality import service as quality
from quality.models import WasteKind

router = APIRouter(route_class=WebRoute, include_in_schema=False)

PRINTER_FIELDS = {
    "api key": "api_key",
    "address": "base_url",
    "url": "base_url",
    "printer named": "name",
    "name": "name",
    "profile": "profile_key",
}


def _printer_form(
    request: Request,
    session: Session,
    site: Site,
    form: FormInput | None,
    *,
    status_code: int = 200,
) -> Response:
    context = {
        "site": site,
        "form": form,
        "profiles": [(p.key, p.name) for p in catalog.find_profiles(session)],
        "drivers": [
            (DriverKind.OCTOPRINT.value, "OctoPrint"),
            (DriverKind.SIMULATOR.value, _("simulator")),
        ],
    }
    return render(request, "sites/printer_new.html", context, status_code=status_code)


@router.get("/sites/{site_id}/printers/new")
def new_printer_page(
    request: Request, site_id: UUID, session: DbSession, actor: PageActor
) -> Response:
    site = visible_site(session, actor, site_id)
    return _printer_form(request, session, site, None)


@router.post("/sites/{site_id}/printers/new")
def register_printer(
    request: Request,
    site_id: UUID,
    form: PostedForm,
    session: DbSession,
    actor: PageActor,
    runtime: RuntimeDep,
) -> Response:
    """The printer's server is asked first (reachable, key accepted), as the API does."""
    site = visible_site(session, actor, site_id)
    name = form.text("name")
    driver = form.choice("driver", [d.value for d in DriverKind])
    base_url = form.text("base_url", max_length=512)
    if base_url and not base_url.startswith(("http://", "https://")):
        form.fail("base_url", _("The address starts with http:// or https://."))
    api_key = form.text("api_key", max_length=256)
    profile_key = form.choice("profile_key", [p.key for p in catalog.find_profiles(session)])
    if not form.ok or driver is None or profile_key is None:
        return _printer_form(request, session, site, form, status_code=422)
    try:
        info = printers.check_printer(
            DriverKind(driver), base_url, api_key, timeout_s=runtime.settings.printer_timeout_s
        )
        printer = printers.register_printer(
            session,
            site_id=site.id,
            name=name,
            driver=DriverKind(driver),
            base_url=base_url,
            api_key=api_key,
            profile_key=profile_key,
            actor=actor,
            secret_key=runtime.secret_key,
            info=info,
        )
    except DomainError as error:
        session.rollback()
        form.place(error, PRINTER_FIELDS)
        if not form.errors and form.problem:
            # Unreachable, timed out, refused: about the address and key together.
            form.fail("base_url", form.problem)
            form.problem = ""
        return _printer_form(request, session, site, form, status_code=422)
    request_slicing()
    load_session(request).flash(
        "ok", _("{printer} registered: it is polled from now on.", printer=printer.name)
    )
    return RedirectResponse(f"/sites/{site.id}", status_code=303)


def _waste_form(
    request: Request,
    session: Session,
    actor: Actor,
    site: Site,
    form: FormInput | None,
    *,
    status_code: int = 200,
) -> Response:
    context = {
        "site": site,
        "form": form,
        "materials": [(m.key, m.key) for m in catalog.find_materials(session)],
        "kinds": [(k.value, label("waste", k.value)) for k in WasteKind],
        "printers": [
            (str(p.id), p.name)
            for p in printers.find_printers(session, actor=actor, site_id=site.id)
        ],
        "entries": quality.find_waste(session, actor=actor, site_id=site.id)[:20],
        "can_act": acts_on(actor, site.id),
    }
    return render(request, "sites/waste.html", context, status_code=status_code)


@router.get("/sites/{site_id}/waste")
def waste_page(request: Request, site_id: UUID, session: DbSession, actor: PageActor) -> Response:
    site = visible_site(session, actor, site_id)
    return _waste_form(request, session, actor, site, None)


@router.post("/sites/{site_id}/waste")
def record_waste(
    request: Request, site_id: UUID, form: PostedForm, session: DbSession, actor: PageActor
) -> Response:
    site = visible_site(session, actor, site_id)
    material_key = form.choice("material_key", [m.key for m in catalog.find_materials(session)])
    kind = form.choice("kind", [k.value for k in WasteKind])
    mass_g = form.number("mass_g", minimum=0, maximum=999_999)
    site_printers = printers.find_printers(session, actor=actor, site_id=site.id)
    printer_choice = form.choice("printer_id", [str(p.id) for p in site_printers], required=False)
    printer_id = UUID(printer_choice) if printer_choice else None
    note = form.text("note", required=False, max_length=1000)
    if not form.ok or material_key is None or kind is None or mass_g is None:
        return _waste_form(request, session, actor, site, form, status_code=422)
    try:
        quality.record_waste(
            session,
            material_key=material_key,
            mass_g=mass_g,
            kind=WasteKind(kind),
            site_id=site.id,
            printer_id=printer_id,
            note=note,
            actor=actor,
        )
    except DomainError as error:
        session.rollback()
        form.place(error, {"mass": "mass_g", "material": "material_key"})
        return _waste_form(request, session, actor, site, form, status_code=422)
    load_session(request).flash("ok", _("{grams} g of waste recorded.", grams=round(mass_g, 1)))
    return RedirectResponse(f"/sites/{site.id}/waste", status_code=303)
