"""Recording the inspection of a printed plate: the sample to draw is shown (which copy
of which plate), each sampled part's results are entered, the verdict is computed.

The page only reads what was typed. What to draw, whether a result conforms, how
many parts are defective and the verdict all come from ``quality.inspections``
(``inspection_plan``, ``evaluate``, ``lot_accepted``, ``record_inspection``), so the
verdict shown while typing is the one that gets recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from api.deps import DbSession
from api.web.forms import FormInput, PostedForm
from api.web.labels import label
from api.web.routing import PageActor, WebRoute
from api.web.session import load_session
from api.web.templating import render
from core.errors import DomainError
from core.i18n import _
from core.identity import Actor
from quality import inspections
from quality.lots import LotPlan
from quality.plans import CheckKind
from quality.sampling import lot_accepted
from scheduler import service as scheduler
from scheduler.models import Job, JobState

router = APIRouter(route_class=WebRoute, include_in_schema=False)

# Without a quality plan, each sampled part is judged by eye: one pass/fail result.
VISUAL_KEY = "visual"


@dataclass(frozen=True, slots=True)
class Column:
    """One result to enter per sampled part."""

    key: str
    label: str
    kind: str  # "value" (mm), "text" (the version found) or "defect" (a box to tick)
    hint: str = ""


def columns(plan: LotPlan) -> list[Column]:
    if not plan.checks:
        return [Column(VISUAL_KEY, _("Conforms (visual check)"), "defect")]
    found: list[Column] = []
    for check in plan.checks:
        if check.kind is CheckKind.DIMENSIONAL:
            hint = f"{check.nominal_mm} ± {check.tolerance_mm} mm"
            found.append(Column(check.key, check.label, "value", hint))
        elif check.kind is CheckKind.IFU:
            found.append(Column(check.key, check.label, "text", check.expected))
        else:
            found.append(Column(check.key, check.label, "defect", check.expected))
    return found


def field_name(sample: int, key: str) -> str:
    return f"s{sample}-{key}"


def measurements_of(
    form: FormInput, plan: LotPlan, *, strict: bool
) -> list[inspections.Measurement]:
    """What was entered, as the domain's measurements; ``strict`` reports each missing or
    unreadable value next to its field (on submission, not while typing)."""
    entered: list[inspections.Measurement] = []
    for sample in range(1, plan.sampling.sample_size + 1):
        for column in columns(plan):
            name = field_name(sample, column.key)
            if column.kind == "value":
                value = form.number(name, minimum=-100_000, maximum=100_000, required=strict)
                if value is not None:
                    entered.append(inspections.Measurement(sample, column.key, value=value))
            elif column.kind == "text":
                text = form.text(name, required=strict, max_length=256)
                if text:
                    entered.append(inspections.Measurement(sample, column.key, text=text))
            else:
                # The box says "defective": a part left unticked conforms.
                entered.append(inspections.Measurement(sample, column.key, ok=not form.flag(name)))
    return entered


def verdict(plan: LotPlan, entered: list[inspections.Measurement]) -> dict[str, Any]:
    """The domain's count and verdict for what is entered so far; incomplete while a
    check of the plan still lacks a result."""
    try:
        _stored, defective = inspections.evaluate(
            plan.checks, plan.sampling.sample_size, entered, None
        )
    except DomainError as missing:
        return {"complete": False, "missing": _(missing.detail)}
    return {
        "complete": True,
        "defective": defective,
        "passes": lot_accepted(plan.sampling, defective),
        "accept_number": plan.sampling.accept_number,
    }


def _plan(session: Session, actor: Actor, job: Job) -> LotPlan:
    return inspections.inspection_plan(session, job_ids=[job.id], actor=actor)


def _context(session: Session, actor: Actor, job: Job, form: FormInput | None) -> dict[str, Any]:
    recorded = inspections.find_inspections(session, job_id=job.id)
    context: dict[str, Any] = {"job": job, "form": form, "inspections": recorded}
    if job.state is not JobState.PRINTED:
        context["can_record"] = False
        return context
    plan = _plan(session, actor, job)
    plates = {plate.id: plate for plate in plan.jobs}
    context.update(
        can_record=True,
        plan=plan,
        columns=columns(plan),
        samples=[(item, plates[item.job_id]) for item in plan.sample],
        verdict=verdict(plan, measurements_of(form or FormInput(), plan, strict=False)),
    )
    return context


@router.get("/jobs/{job_id}/inspect")
def inspect_page(request: Request, job_id: UUID, session: DbSession, actor: PageActor) -> Response:
    job = scheduler.visible_job(session, job_id, actor)
    return render(request, "jobs/inspect.html", _context(session, actor, job, None))


@router.post("/jobs/{job_id}/inspect/verdict")
def verdict_preview(
    request: Request, job_id: UUID, form: PostedForm, session: DbSession, actor: PageActor
) -> Response:
    job = scheduler.visible_job(session, job_id, actor)
    plan = _plan(session, actor, job)
    result = verdict(plan, measurements_of(form, plan, strict=False))
    return render(request, "jobs/_verdict.html", {"verdict": result})


@router.post("/jobs/{job_id}/inspect")
def record_inspection(
    request: Request, job_id: UUID, form: PostedForm, session: DbSession, actor: PageActor
) -> Response:
    job = scheduler.visible_job(session, job_id, actor)
    site_id = job.site_id
    plan = _plan(session, actor, job)
    entered = measurements_of(form, plan, strict=True)
    note = form.text("note", required=False, max_length=4000)
    cause = form.text("cause", required=False, max_length=4000)
    if not form.ok:
        context = _context(session, actor, job, form)
        return render(request, "jobs/inspect.html", context, status_code=422)
    try:
        inspection = inspections.record_inspection(
            session,
            job_ids=[job.id],
            measurements=entered,
            note=note,
            cause=cause,
            actor=actor,
        )
    except DomainError as error:
        session.rollback()
        form.place(error, {})
        context = _context(session, actor, job, form)
        return render(request, "jobs/inspect.html", context, status_code=422)
    load_session(request).flash(
        "ok" if inspection.verdict.value == "passed" else "warn",
        _(
            "Inspection recorded: {verdict} ({defective} defective in a sample of {sample}).",
            verdict=label("verdict", inspection.verdict.value),
            defective=inspection.defective_count,
            sample=inspection.sample_size,
        ),
    )
    return RedirectResponse(f"/sites/{site_id}", status_code=303)
