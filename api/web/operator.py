"""The operator's console: its sites' printers with live state, the queue of jobs
proposed to it (accept, refuse, start), clearing the bed, loading a spool,
registering a printer and weighing waste.

Every site-scoped page goes through ``visible_site``/``visible_job``/``get_printer``
with the signed-in Actor: an operator editing a URL to another site's id gets the
same 404 as for an id that does not exist.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from api.deps import DbSession
from api.web.forms import FormInput, PostedForm
from api.web.labels import label
from api.web.live import live_block, live_response
from api.web.routing import PageActor, WebRoute
from api.web.session import load_session
from api.web.templating import is_htmx, render
from catalog import service as catalog
from core.celery_app import enqueue
from core.errors import DomainError, NotFound
from core.i18n import _
from core.identity import Actor, Role, can_see_site
from printers import service as printers
from printers.dispatch import print_file_name
from printers.models import Printer, Site
from printers.tasks import dispatch_job, dispatch_sweep
from scheduler import service as scheduler
from scheduler.models import Job, JobState
from scheduler.tasks import request_replan

router = APIRouter(route_class=WebRoute, include_in_schema=False)

QUEUE_STATES = (
    JobState.PLANNED,
    JobState.ACCEPTED,
    JobState.DISPATCHED,
    JobState.PRINTING,
    JobState.PRINTED,
)
ON_PRINTER = (JobState.DISPATCHED, JobState.PRINTING)


def visible_site(session: Session, actor: Actor, site_id: UUID) -> Site:
    site = printers.get_site(session, site_id)
    if not can_see_site(actor, site.id):
        raise NotFound(f"no site {site_id}")  # the same answer as a missing site
    return site


def acts_on(actor: Actor, site_id: UUID) -> bool:
    """Operators of the site and admins act; coordinators and auditors only look."""
    return actor.role is Role.ADMIN or (actor.role is Role.OPERATOR and site_id in actor.site_ids)


def job_progress_pct(job: Job) -> float | None:
    """The printer's progress when it is printing this job's file."""
    printer = job.printer
    if job.state not in ON_PRINTER or printer is None or job.gcode_hash is None:
        return None
    if printer.current_file != print_file_name(job):
        return None
    return printer.progress_pct


def _site_live(session: Session, actor: Actor, site: Site) -> dict[str, Any]:
    jobs = scheduler.find_jobs(session, actor=actor, site_id=site.id, states=QUEUE_STATES)
    on_printer = {job.printer_id: job for job in jobs if job.state in ON_PRINTER}
    return {
        "site": site,
        "printers": printers.find_printers(session, actor=actor, site_id=site.id),
        "on_printer": on_printer,
        "jobs": jobs,
        "progress": {job.id: job_progress_pct(job) for job in jobs},
        "can_act": acts_on(actor, site.id),
    }


def _live(
    request: Request,
    session: Session,
    actor: Actor,
    site: Site,
    *,
    notice: tuple[str, str] | None = None,
) -> Response:
    return live_response(
        request,
        "sites/_live.html",
        _site_live(session, actor, site),
        element_id="site-live",
        url=f"/sites/{site.id}/live",
        notice=notice,
    )


def _done(request: Request, session: Session, actor: Actor, site: Site, message: str) -> Response:
    """After an action: the refreshed live region for htmx, else back to the site's page."""
    if is_htmx(request):
        session.expire_all()  # read what the use case (and the poller) committed
        return _live(request, session, actor, site, notice=("ok", message))
    load_session(request).flash("ok", message)
    return RedirectResponse(f"/sites/{site.id}", status_code=303)


@router.get("/sites")
def sites_page(request: Request, session: DbSession, actor: PageActor) -> Response:
    visible = [s for s in printers.find_sites(session) if can_see_site(actor, s.id)]
    if actor.role is Role.OPERATOR and len(visible) == 1:
        return RedirectResponse(f"/sites/{visible[0].id}", status_code=303)
    counts: dict[UUID, int] = {}
    for printer in printers.find_printers(session, actor=actor):
        counts[printer.site_id] = counts.get(printer.site_id, 0) + 1
    return render(request, "sites/list.html", {"sites": visible, "counts": counts})


@router.get("/sites/{site_id}")
def site_page(request: Request, site_id: UUID, session: DbSession, actor: PageActor) -> Response:
    site = visible_site(session, actor, site_id)
    live, _version = live_block(
        request,
        "sites/_live.html",
        _site_live(session, actor, site),
        element_id="site-live",
        url=f"/sites/{site.id}/live",
    )
    mine = [s for s in printers.find_sites(session) if s.id in actor.site_ids]
    return render(
        request,
        "sites/console.html",
        {"site": site, "live": live, "can_act": acts_on(actor, site.id), "my_sites": mine},
    )


@router.get("/sites/{site_id}/live")
def site_live(request: Request, site_id: UUID, session: DbSession, actor: PageActor) -> Response:
    return _live(request, session, actor, visible_site(session, actor, site_id))


@router.post("/jobs/{job_id}/accept")
def accept(request: Request, job_id: UUID, session: DbSession, actor: PageActor) -> Response:
    job = scheduler.visible_job(session, job_id, actor)
    job = printers.accept_job(session, job_id=job.id, actor=actor)
    enqueue(dispatch_job, str(job.id))
    assert job.site_id is not None  # accept_job refuses unplanned jobs
    site = printers.get_site(session, job.site_id)
    return _done(
        request, session, actor, site, _("Job accepted: it starts when the printer is free.")
    )


@router.post("/jobs/{job_id}/start")
def start(request: Request, job_id: UUID, session: DbSession, actor: PageActor) -> Response:
    """Send an accepted job to its printer now (the sweep would, within seconds)."""
    job = scheduler.visible_job(session, job_id, actor)
    assert job.site_id is not None
    site = visible_site(session, actor, job.site_id)
    if not acts_on(actor, site.id):
        raise NotFound(f"no job {job_id}")
    if job.state is JobState.ACCEPTED:
        enqueue(dispatch_job, str(job.id))
        message = _("Sent to the printer; it starts as soon as the bed is clear.")
    else:
        message = _("This job is {state}: nothing to start.", state=label("job", job.state))
    return _done(request, session, actor, site, message)


def _refuse_form(
    request: Request, job: Job, form: FormInput | None, *, status_code: int = 200
) -> Response:
    return render(request, "jobs/refuse.html", {"job": job, "form": form}, status_code=status_code)


@router.get("/jobs/{job_id}/refuse")
def refuse_page(request: Request, job_id: UUID, session: DbSession, actor: PageActor) -> Response:
    return _refuse_form(request, scheduler.visible_job(session, job_id, actor), None)


@router.post("/jobs/{job_id}/refuse")
def refuse(
    request: Request, job_id: UUID, form: PostedForm, session: DbSession, actor: PageActor
) -> Response:
    job = scheduler.visible_job(session, job_id, actor)
    site_id = job.site_id
    reason = form.text("reason", max_length=1000)
    if not form.ok:
        return _refuse_form(request, job, form, status_code=422)
    try:
        printers.refuse_job(session, job_id=job.id, actor=actor, reason=reason)
    except DomainError as error:
        session.rollback()
        form.place(error, {"why": "reason", "reason": "reason"})
        return _refuse_form(request, job, form, status_code=422)
    request_replan("refusal")
    load_session(request).flash("ok", _("Job refused: the coordinator's plan will move it."))
    return RedirectResponse(f"/sites/{site_id}", status_code=303)


@router.post("/printers/{printer_id}/cleared")
def cleared(request: Request, printer_id: UUID, session: DbSession, actor: PageActor) -> Response:
    printer = printers.mark_removed(session, printer_id=printer_id, actor=actor)
    enqueue(dispatch_sweep)
    return _done(
        request,
        session,
        actor,
        printer.site,
        _("{printer}: bed marked clear; the next job may start.", printer=printer.name),
    )


def _spool_form(
    request: Request,
    session: Session,
    printer: Printer,
    form: FormInput | None,
    *,
    status_code: int = 200,
) -> Response:
    context = {
        "printer": printer,
        "form": form,
        "materials": [(m.key, f"{m.key} · {m.name}") for m in catalog.find_materials(session)],
    }
    return render(request, "sites/spool.html", context, status_code=status_code)


@router.get("/printers/{printer_id}/spool")
def spool_page(
    request: Request, printer_id: UUID, session: DbSession, actor: PageActor
) -> Response:
    printer = printers.get_printer(session, printer_id, actor=actor)
    return _spool_form(request, session, printer, None)


@router.post("/printers/{printer_id}/spool")
def load_spool(
    request: Request, printer_id: UUID, form: PostedForm, session: DbSession, actor: PageActor
) -> Response:
    printer = printers.get_printer(session, printer_id, actor=actor)
    keys = [m.key for m in catalog.find_materials(session)]
    material_key = form.choice("material_key", keys)
    colour = form.text("colour", required=False, max_length=32)
    remaining_g = form.number("remaining_g", minimum=0, maximum=100_000)
    if not form.ok or material_key is None or remaining_g is None:
        return _spool_form(request, session, printer, form, status_code=422)
    try:
        printers.load_material(
            session,
            printer_id=printer.id,
            material_key=material_key,
            colour=colour,
            remaining_g=remaining_g,
            actor=actor,
        )
    except DomainError as error:
        session.rollback()
        form.place(error, {"mass": "remaining_g", "material": "material_key"})
        return _spool_form(request, session, printer, form, status_code=422)
    request_replan("material_loaded")
    load_session(request).flash(
        "ok", _("{printer}: {material} loaded.", printer=printer.name, material=material_key)
    )
    return RedirectResponse(f"/sites/{printer.site_id}", status_code=303)
