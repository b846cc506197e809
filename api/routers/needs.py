"""Delivery points, needs, jobs and plans."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from fastapi import APIRouter, Query, status

from api.deps import CurrentActor, DbSession, RuntimeDep
from api.schemas.common import PROBLEM_RESPONSES
from api.schemas.resources import (
    CancelRequest,
    DeliveryPointCreate,
    DeliveryPointRead,
    JobRead,
    NeedCreate,
    NeedProgressRead,
    NeedRead,
    NeedUpdate,
    PlanRead,
    RefuseRequest,
)
from catalog.tasks import request_slicing
from core.celery_app import enqueue
from core.errors import NotFound
from core.identity import Role, require_role
from printers import control
from printers import service as printers
from printers.control import job_progress
from printers.dispatch import printer_is_free
from printers.tasks import dispatch_job
from scheduler import service
from scheduler.jobs import ON_PRINTER
from scheduler.jobs import get_job as get_job_row
from scheduler.models import Job, JobState, Need, NeedStatus
from scheduler.tasks import replan, request_replan

router = APIRouter(tags=["needs and jobs"], responses=PROBLEM_RESPONSES)


def job_reads(session: DbSession, jobs: list[Job]) -> list[JobRead]:
    # Only a job on its printer has a print in flight: a queue of planned jobs (what
    # operators refresh every few seconds) needs no second query.
    on_printer = [j.id for j in jobs if j.state in ON_PRINTER]
    progress = job_progress(session, on_printer) if on_printer else {}
    reads = []
    for job in jobs:
        read = JobRead.model_validate(job)
        read.progress_pct = progress.get(job.id)
        reads.append(read)
    return reads


def need_read(need: Need, progress: service.NeedProgress | None = None) -> NeedRead:
    read = NeedRead.model_validate(need)
    progress = progress or service.need_progress(need)
    read.progress = NeedProgressRead(
        **{f: getattr(progress, f) for f in NeedProgressRead.model_fields}
    )
    return read


@router.get("/delivery-points", response_model=list[DeliveryPointRead])
def list_delivery_points(session: DbSession, actor: CurrentActor) -> list[DeliveryPointRead]:
    return [DeliveryPointRead.model_validate(p) for p in service.find_delivery_points(session)]


@router.post(
    "/delivery-points", response_model=DeliveryPointRead, status_code=status.HTTP_201_CREATED
)
def create_delivery_point(
    body: DeliveryPointCreate, session: DbSession, actor: CurrentActor
) -> DeliveryPointRead:
    return DeliveryPointRead.model_validate(
        service.create_delivery_point(session, actor=actor, **body.model_dump())
    )


@router.get("/needs", response_model=list[NeedRead])
def list_needs(
    session: DbSession,
    actor: CurrentActor,
    status_filter: NeedStatus | None = Query(None, alias="status"),
) -> list[NeedRead]:
    needs = service.find_needs(session, status=status_filter)
    progress = service.needs_progress(session, needs)
    return [need_read(n, progress[n.id]) for n in needs]


@router.post("/needs", response_model=NeedRead, status_code=status.HTTP_201_CREATED)
def post_need(
    body: NeedCreate, session: DbSession, actor: CurrentActor, runtime: RuntimeDep
) -> NeedRead:
    """Post a production need; it is split into plates, sliced and planned in the background."""
    need = service.post_need(session, actor=actor, **body.model_dump())
    request_slicing()
    return need_read(need, service.needs_progress(session, [need])[need.id])


@router.get("/needs/{need_id}", response_model=NeedRead)
def get_need(need_id: UUID, session: DbSession, actor: CurrentActor) -> NeedRead:
    return need_read(service.get_need(session, need_id))


@router.patch("/needs/{need_id}", response_model=NeedRead)
def update_need(
    need_id: UUID, body: NeedUpdate, session: DbSession, actor: CurrentActor
) -> NeedRead:
    """Move the deadline or change the priority; the plan follows."""
    need = service.update_need(session, need_id=need_id, actor=actor, **body.model_dump())
    request_replan("need_changed")
    return need_read(need)


@router.get("/jobs", response_model=list[JobRead])
def list_jobs(
    session: DbSession,
    actor: CurrentActor,
    site_id: UUID | None = None,
    need_id: UUID | None = None,
    state: list[JobState] = Query(default_factory=list),
) -> list[JobRead]:
    """Jobs; an operator sees only those planned on its sites (its queue)."""
    jobs = service.find_jobs(
        session, actor=actor, site_id=site_id, states=tuple(state), need_id=need_id
    )
    return job_reads(session, jobs)


@router.get("/jobs/{job_id}", response_model=JobRead)
def get_job(job_id: UUID, session: DbSession, actor: CurrentActor) -> JobRead:
    return job_reads(session, [service.visible_job(session, job_id, actor)])[0]


@router.post("/jobs/{job_id}/pause", response_model=JobRead)
def pause_job(
    job_id: UUID, session: DbSession, actor: CurrentActor, runtime: RuntimeDep
) -> JobRead:
    """Pause the job's print on its printer (the site's operator)."""
    return _command(control.pause_job, job_id, session, actor, runtime)


@router.post("/jobs/{job_id}/resume", response_model=JobRead)
def resume_job(
    job_id: UUID, session: DbSession, actor: CurrentActor, runtime: RuntimeDep
) -> JobRead:
    """Resume a paused print."""
    return _command(control.resume_job, job_id, session, actor, runtime)


def _command(
    command: Callable[..., None],
    job_id: UUID,
    session: DbSession,
    actor: CurrentActor,
    runtime: RuntimeDep,
) -> JobRead:
    service.visible_job(session, job_id, actor)
    # The command opens its own sessions; on SQLite this one's transaction (BEGIN
    # IMMEDIATE) would hold the write lock and make them wait 30 s, then fail with 503.
    session.rollback()
    command(
        runtime.db,
        job_id=job_id,
        actor=actor,
        secret_key=runtime.secret_key,
        timeout_s=runtime.settings.printer_timeout_s,
    )
    return get_job(job_id, session, actor)


@router.post("/jobs/{job_id}/cancel", response_model=JobRead)
def cancel_job(
    job_id: UUID, body: CancelRequest, session: DbSession, actor: CurrentActor, runtime: RuntimeDep
) -> JobRead:
    """Stop the print: its plastic is recorded as waste and the job goes back to the queue."""
    service.visible_job(session, job_id, actor)
    session.rollback()  # control opens its own sessions: SQLite's write lock must be free
    control.cancel_job(
        runtime.db,
        job_id=job_id,
        actor=actor,
        secret_key=runtime.secret_key,
        timeout_s=runtime.settings.printer_timeout_s,
        reason=body.reason,
        max_attempts=runtime.settings.max_print_attempts,
    )
    request_replan("cancelled")
    session.expire_all()
    # Not get_job: the cancelled job went back to the queue, off the operator's site, and
    # the operator who just cancelled it would be told it does not exist.
    return job_reads(session, [get_job_row(session, job_id)])[0]


@router.post("/jobs/{job_id}/accept", response_model=JobRead)
def accept_job(job_id: UUID, session: DbSession, actor: CurrentActor) -> JobRead:
    """The site's operator takes the job; it is sent to the printer when the printer is free."""
    service.visible_job(session, job_id, actor)
    job = printers.accept_job(session, job_id=job_id, actor=actor)
    # Most jobs are accepted while their printer still prints an earlier one: a task for
    # each (5 a second on the load benchmark) only kept the worker from polling.
    if job.printer_id is not None and printer_is_free(
        session, printer_id=job.printer_id, job_id=job.id
    ):
        enqueue(dispatch_job, str(job.id))
    return JobRead.model_validate(job)


@router.post("/jobs/{job_id}/refuse", response_model=JobRead)
def refuse_job(
    job_id: UUID, body: RefuseRequest, session: DbSession, actor: CurrentActor
) -> JobRead:
    """The site's operator declines; the job is re-planned elsewhere."""
    service.visible_job(session, job_id, actor)
    job = printers.refuse_job(session, job_id=job_id, actor=actor, reason=body.reason)
    request_replan("refusal")
    return JobRead.model_validate(job)


@router.post("/plans", status_code=status.HTTP_202_ACCEPTED)
def request_plan(session: DbSession, actor: CurrentActor) -> dict[str, str]:
    """Re-plan now (coordinators); the new plan appears under GET /plans/latest."""
    require_role(actor, Role.COORDINATOR)
    enqueue(replan, "manual")
    return {"status": "queued"}


@router.get("/plans/latest", response_model=PlanRead)
def latest_plan(session: DbSession, actor: CurrentActor) -> PlanRead:
    record = service.latest_plan(session)
    if record is None:
        raise NotFound("no plan has been made yet")
    return PlanRead.model_validate(record)
