"""The coordinator's needs: the list with progress and forecast, posting one (with its
delivery point picked on a map or typed), importing many from CSV, one need's
detail and its delivery."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import DbSession
from api.web.csv_import import check_csv, remaining_text
from api.web.forms import FormInput, PostedForm
from api.web.labels import LABELS, label
from api.web.live import live_block, live_response
from api.web.places import locate
from api.web.queries import need_rows
from api.web.routing import PageActor, WebRoute
from api.web.session import load_session
from api.web.stats import progress_spec
from api.web.templating import render
from catalog import service as catalog
from catalog.models import DesignStatus, Part
from catalog.tasks import request_slicing
from core.clock import utcnow
from core.errors import DomainError
from core.i18n import _
from core.identity import Actor, Role, require_role
from quality import service as quality
from quality.models import Delivery
from scheduler import service as scheduler
from scheduler.models import NeedStatus

router = APIRouter(route_class=WebRoute, include_in_schema=False)

# Where a refusal of post_need belongs, by a word of its message.
NEED_FIELDS = {
    "deadline": "due_at",
    "quantity": "quantity",
    "priority": "priority",
    "design version": "part_id",
    "part": "part_id",
    "delivery point": "delivery_point_id",
    "material": "material_key",
}
POINT_FIELDS = {"named": "point_name", "name": "point_name", "latitude": "point_lat"}
STATUS_FILTERS = ("open", "delivered", "all")
MAX_CSV_BYTES = 2_000_000


def require_reader(actor: Actor) -> None:
    """Coordinators (and admins) act on needs; auditors read them; operators have their sites."""
    require_role(actor, Role.COORDINATOR, Role.AUDITOR)


def can_post(actor: Actor) -> bool:
    return actor.role in (Role.COORDINATOR, Role.ADMIN)


def _zone(request: Request) -> ZoneInfo:
    return ZoneInfo(request.app.state.runtime.settings.default_timezone)


def orderable_parts(session: Session) -> list[Part]:
    return [
        part
        for part in catalog.find_parts(session)
        if any(v.status is DesignStatus.APPROVED for v in part.versions)
    ]


def _needs_live(request: Request, session: Session, status: str) -> dict[str, Any]:
    chosen = None if status == "all" else NeedStatus(status)
    return {"rows": need_rows(session, status=chosen)}


@router.get("/needs")
def needs_page(
    request: Request, session: DbSession, actor: PageActor, status: str = "open"
) -> Response:
    require_reader(actor)
    status = status if status in STATUS_FILTERS else "open"
    live, _version = live_block(
        request,
        "needs/_table.html",
        _needs_live(request, session, status),
        element_id="needs-live",
        url="/needs/live",
        params={"status": status},
        every_s=5,
    )
    return render(
        request,
        "needs/list.html",
        {"live": live, "status": status, "can_post": can_post(actor)},
    )


@router.get("/needs/live")
def needs_live(
    request: Request, session: DbSession, actor: PageActor, status: str = "open"
) -> Response:
    require_reader(actor)
    status = status if status in STATUS_FILTERS else "open"
    return live_response(
        request,
        "needs/_table.html",
        _needs_live(request, session, status),
        element_id="needs-live",
        url="/needs/live",
        params={"status": status},
        every_s=5,
    )


def _need_form(
    request: Request, session: Session, form: FormInput | None, *, status_code: int = 200
) -> Response:
    zone = _zone(request)
    default_due = (
        (utcnow() + timedelta(days=2))
        .astimezone(zone)
        .replace(hour=18, minute=0, second=0, microsecond=0, tzinfo=None)
    )
    points = scheduler.find_delivery_points(session)
    context = {
        "form": form,
        "parts": [(str(p.id), p.name) for p in orderable_parts(session)],
        "points": [(str(p.id), p.name) for p in points],
        "materials": [(m.key, m.name) for m in catalog.find_materials(session)],
        "priorities": [(key, _(text)) for key, text in LABELS["priority"].items()],
        "default_due": default_due.isoformat(timespec="minutes"),
        "tiles_url": request.app.state.runtime.settings.map_tiles_url,
        "tiles_attribution": request.app.state.runtime.settings.map_tiles_attribution,
    }
    return render(request, "needs/new.html", context, status_code=status_code)


@router.get("/needs/new")
def new_need_page(request: Request, session: DbSession, actor: PageActor) -> Response:
    require_role(actor, Role.COORDINATOR)
    return _need_form(request, session, None)


@router.post("/needs/new")
def post_need(request: Request, form: PostedForm, session: DbSession, actor: PageActor) -> Response:
    require_role(actor, Role.COORDINATOR)
    zone = _zone(request)
    part_id = form.uuid("part_id")
    quantity = form.integer("quantity", minimum=1, maximum=scheduler.MAX_QUANTITY)
    due_at = form.local_datetime("due_at", zone)
    priority = form.integer("priority", minimum=1, maximum=5)
    materials = [m.key for m in catalog.find_materials(session)]
    material_key = form.choice("material_key", materials, required=False)
    note = form.text("note", required=False, max_length=4000)
    point_choice = form.choice("point_choice", ("existing", "new")) or "existing"
    point_id: UUID | None = None
    new_point: dict[str, Any] | None = None
    if point_choice == "existing":
        point_id = form.uuid("delivery_point_id")
    else:
        name = form.text("point_name")
        address = form.text("point_address", required=False, max_length=256)
        lat = form.number("point_lat", minimum=-90, maximum=90, required=False)
        lon = form.number("point_lon", minimum=-180, maximum=180, required=False)
        if (lat is None or lon is None) and "point_lat" not in form.errors:
            found = locate(session, address) if address else None
            if found is None:
                form.fail(
                    "point_address",
                    _(
                        "This address is not known offline: click the map to place it, "
                        "or type its coordinates as latitude, longitude."
                    ),
                )
            else:
                lat, lon = found.lat, found.lon
        new_point = {"name": name, "address": address, "lat": lat, "lon": lon}
    if not form.ok:
        return _need_form(request, session, form, status_code=422)
    if new_point is not None:
        try:
            point = scheduler.create_delivery_point(session, actor=actor, **new_point)
        except DomainError as error:
            session.rollback()
            form.place(error, POINT_FIELDS)
            return _need_form(request, session, form, status_code=422)
        # Created: a refusal below shows it as the chosen point, so it is not made twice.
        point_id = point.id
        form.values.update(point_choice="existing", delivery_point_id=str(point.id))
        form.lists["delivery_point_id"] = [str(point.id)]
    assert part_id
    assert quantity
    assert due_at
    assert priority
    assert point_id
    try:
        need = scheduler.post_need(
            session,
            part_id=part_id,
            quantity=quantity,
            due_at=due_at,
            delivery_point_id=point_id,
            priority=priority,
            material_key=material_key,
            note=note,
            actor=actor,
        )
    except DomainError as error:
        session.rollback()
        form.place(error, NEED_FIELDS)
        return _need_form(request, session, form, status_code=422)
    request_slicing()
    load_session(request).flash(
        "ok", _("Need posted: it is being sliced and planned; this page follows its progress.")
    )
    return RedirectResponse(f"/needs/{need.id}", status_code=303)


@router.get("/places")
def find_place(request: Request, session: DbSession, actor: PageActor, q: str = "") -> Response:
    """Coordinates of a typed address, from what distrifab knows offline."""
    require_role(actor, Role.COORDINATOR)
    found = locate(session, q[:256])
    if found is None:
        return JSONResponse(
            {
                "lat": None,
                "lon": None,
                "message": _(
                    "This address is not known offline: click the map to place it, "
                    "or type its coordinates as latitude, longitude."
                ),
            }
        )
    return JSONResponse(
        {
            "lat": found.lat,
            "lon": found.lon,
            "message": _("Placed at {place}; click the map to adjust.", place=found.source),
        }
    )


def _import_form(
    request: Request,
    form: FormInput | None,
    *,
    problems: list[tuple[int, str]] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "needs/import.html",
        {"form": form, "problems": problems or []},
        status_code=status_code,
    )


@router.get("/needs/import")
def import_page(request: Request, actor: PageActor) -> Response:
    require_role(actor, Role.COORDINATOR)
    return _import_form(request, None)


@router.post("/needs/import")
def import_needs(
    request: Request, form: PostedForm, session: DbSession, actor: PageActor
) -> Response:
    """Check the whole file, then post each need; nothing typed or uploaded is lost."""
    require_role(actor, Role.COORDINATOR)
    if "file" in form.files:
        _name, data = form.files["file"]
        if len(data) > MAX_CSV_BYTES:
            form.fail("file", _("At most {count} characters.", count=MAX_CSV_BYTES))
            return _import_form(request, form, status_code=422)
        try:
            form.values["csv"] = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            form.values["csv"] = data.decode("cp1252")  # older French spreadsheet exports
    text = form.values.get("csv", "")
    if not text.strip():
        form.fail("csv", _("Choose a CSV file or paste its content."))
        return _import_form(request, form, status_code=422)
    check = check_csv(
        text,
        parts=catalog.find_parts(session),
        points=scheduler.find_delivery_points(session),
        materials={m.key for m in catalog.find_materials(session)},
        zone=_zone(request),
    )
    if check.problems:
        form.fail("csv", _("Nothing was imported: correct the lines listed and send again."))
        return _import_form(request, form, problems=check.problems, status_code=422)
    posted = 0
    for line in check.lines:
        try:
            scheduler.post_need(
                session,
                part_id=line.part_id,
                quantity=line.quantity,
                due_at=line.due_at,
                delivery_point_id=line.delivery_point_id,
                priority=line.priority,
                material_key=line.material_key,
                note=line.note,
                actor=actor,
            )
        except DomainError as error:
            session.rollback()
            # The lines before are posted; give back the rest so none is posted twice.
            form.values["csv"] = remaining_text(check, line.row)
            form.fail(
                "csv",
                _(
                    "{count} needs were posted; the line below was refused and is left "
                    "here with the ones after it.",
                    count=posted,
                ),
            )
            return _import_form(request, form, problems=[(2, _(error.detail))], status_code=422)
        posted += 1
    request_slicing()
    load_session(request).flash("ok", _("{count} needs imported.", count=posted))
    return RedirectResponse("/needs", status_code=303)


def _need_jobs(session: Session, actor: Actor, need_id: UUID) -> dict[str, Any]:
    need = scheduler.get_need(session, need_id)
    return {
        "need": need,
        "progress": scheduler.need_progress(need),
        "jobs": scheduler.find_jobs(session, actor=actor, need_id=need.id),
    }


@router.get("/needs/{need_id}")
def need_page(request: Request, need_id: UUID, session: DbSession, actor: PageActor) -> Response:
    require_reader(actor)
    context = _need_jobs(session, actor, need_id)
    live, _version = live_block(
        request,
        "needs/_jobs.html",
        context,
        element_id="need-live",
        url=f"/needs/{need_id}/live",
    )
    deliveries = list(session.scalars(select(Delivery).where(Delivery.need_id == need_id)))
    return render(
        request,
        "needs/detail.html",
        {
            **context,
            "live": live,
            "can_deliver": can_post(actor) and context["progress"].passed > 0,
            "deliveries": deliveries,
            "is_auditor": actor.role in (Role.AUDITOR, Role.ADMIN),
        },
    )


@router.get("/needs/{need_id}/live")
def need_live(request: Request, need_id: UUID, session: DbSession, actor: PageActor) -> Response:
    require_reader(actor)
    return live_response(
        request,
        "needs/_jobs.html",
        _need_jobs(session, actor, need_id),
        element_id="need-live",
        url=f"/needs/{need_id}/live",
    )


@router.get("/needs/{need_id}/progress.json")
def need_progress_data(need_id: UUID, session: DbSession, actor: PageActor) -> Response:
    require_reader(actor)
    need = scheduler.get_need(session, need_id)
    return JSONResponse(progress_spec(session, [need], now=utcnow()))


@router.post("/needs/{need_id}/deliver")
def deliver(
    request: Request, need_id: UUID, form: PostedForm, session: DbSession, actor: PageActor
) -> Response:
    """Hand over every passed plate of the need as one batch (it gets a certificate)."""
    recipient = form.text("recipient", required=False, max_length=128)
    if not form.ok:
        load_session(request).flash("error", form.errors["recipient"])
        return RedirectResponse(f"/needs/{need_id}", status_code=303)
    delivery = quality.deliver_need(session, need_id=need_id, actor=actor, recipient=recipient)
    load_session(request).flash(
        "ok",
        _(
            "{count} copies recorded as delivered ({state}).",
            count=delivery.quantity,
            state=label("job", "delivered"),
        ),
    )
    return RedirectResponse(f"/needs/{need_id}", status_code=303)
