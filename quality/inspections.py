"""Recording the inspection of a printed lot: the sample drawn, each measurement, and the
verdict computed from the sampling plan (never typed in)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.errors import Conflict, Invalid, NotFound
from core.identity import Actor, Role, ensure_can_act, require_role, require_site
from printers.models import Site
from quality.lots import (
    LotPlan,
    existing_inspection,
    finished_run,
    lot_jobs,
    plan_lot,
    require_printed,
    stream_state,
)
from quality.models import (
    Disposition,
    Inspection,
    InspectionJob,
    NonConformity,
    SamplingResumption,
    Verdict,
)
from quality.nonconformities import apply_disposition, open_non_conformity
from quality.plans import Check
from quality.sampling import Severity, lot_accepted
from scheduler import jobs as transitions
from scheduler.models import Job

MAX_MEASUREMENTS = 20_000


@dataclass(frozen=True, slots=True)
class Measurement:
    sample: int
    check: str
    value: float | None = None
    ok: bool | None = None
    text: str | None = None
    note: str = ""


def evaluate(
    checks: Sequence[Check],
    sample_size: int,
    measurements: Sequence[Measurement],
    defective_count: int | None,
) -> tuple[list[dict[str, Any]], int]:
    """The stored measurements, with each one's conformity computed, and the number of
    defective parts in the sample. With a plan's checks every sampled part needs a
    result for every check; without a plan the count is given (and at least the parts
    marked not ok). Raises ``Invalid`` naming what is wrong."""
    if len(measurements) > MAX_MEASUREMENTS:
        raise Invalid(f"at most {MAX_MEASUREMENTS} measurements per inspection")
    by_key = {check.key: check for check in checks}
    stored: list[dict[str, Any]] = []
    seen: set[tuple[int, str]] = set()
    failed: set[int] = set()
    for m in measurements:
        if not 1 <= m.sample <= sample_size:
            raise Invalid(f"sample numbers go from 1 to {sample_size}; got {m.sample}")
        if (m.sample, m.check) in seen:
            raise Invalid(f"sample {m.sample} has two results for {m.check}")
        seen.add((m.sample, m.check))
        row: dict[str, Any] = {"sample": m.sample, "check": m.check}
        if m.value is not None:
            row["value"] = m.value
        if m.text is not None:
            row["text"] = m.text
        if m.note:
            row["note"] = m.note
        if by_key:
            check = by_key.get(m.check)
            if check is None:
                raise Invalid(f"the plan has no check {m.check}; its checks: {', '.join(by_key)}")
            ok = check.conforms(value=m.value, ok=m.ok, text=m.text)
        else:
            ok = m.ok if m.ok is not None else True
        row["ok"] = ok
        if not ok:
            failed.add(m.sample)
        stored.append(row)
    stored.sort(key=lambda r: (r["sample"], r["check"]))
    if by_key:
        missing = [
            (number, key)
            for number in range(1, sample_size + 1)
            for key in by_key
            if (number, key) not in seen
        ]
        if missing:
            number, key = missing[0]
            raise Invalid(
                f"sample {number} has no result for check {key} "
                f"({len(missing)} results missing of {sample_size * len(by_key)})"
            )
        if defective_count is not None and defective_count != len(failed):
            raise Invalid(
                f"the measurements show {len(failed)} defective parts, not {defective_count}"
            )
        return stored, len(failed)
    if defective_count is None:
        return stored, len(failed)
    if defective_count < len(failed):
        raise Invalid(f"{len(failed)} sampled parts are marked not ok, more than {defective_count}")
    return stored, defective_count


def inspection_plan(session: Session, *, job_ids: Sequence[UUID], actor: Actor) -> LotPlan:
    """What to draw and check for this lot now (read-only)."""
    jobs = lot_jobs(session, job_ids, actor=actor)
    return plan_lot(session, jobs)


def record_inspection(
    session: Session,
    *,
    job_ids: Sequence[UUID],
    actor: Actor,
    measurements: Sequence[Measurement] = (),
    defective_count: int | None = None,
    note: str = "",
    cause: str = "",
    disposition: Disposition = Disposition.REPRINT,
    idempotency_key: str | None = None,
) -> Inspection:
    """Inspect a printed lot (one plate or several of one design from one site).

    The verdict comes from the sampling plan (ISO 2859-1 level II, at the severity the
    switching rules give) and the defective parts found. A rejected lot opens a
    non-conformity and gets ``disposition`` (reprint by default: waste ledger and a
    new attempt queued). Idempotent: the same lot submitted again, or the same
    ``idempotency_key``, returns the first inspection. Raises ``NotFound``,
    ``Forbidden``, ``Invalid``, or ``Conflict`` (not printed, partly inspected,
    sampling discontinued)."""
    ensure_can_act(actor)
    if idempotency_key:
        earlier = session.scalar(
            select(Inspection).where(Inspection.idempotency_key == idempotency_key)
        )
        if earlier is not None:
            lot = {row.job_id for row in lot_rows(session, earlier.id)}
            if lot != set(job_ids):
                raise Conflict("this idempotency key was used for another lot")
            return earlier
    jobs = lot_jobs(session, job_ids, actor=actor, for_update=True)
    existing = existing_inspection(session, jobs)
    if existing is not None:
        return existing  # a repeated submission
    require_printed(jobs)
    plan = plan_lot(session, jobs, for_update=True)
    require_site(actor, plan.site_id)
    stored, defective = evaluate(
        plan.checks, plan.sampling.sample_size, measurements, defective_count
    )
    accepted = lot_accepted(plan.sampling, defective)
    inspection = _write(
        session,
        plan=plan,
        actor=actor,
        measurements=stored,
        defective=defective,
        accepted=accepted,
        note=note,
        idempotency_key=idempotency_key,
    )
    if accepted:
        for job in jobs:
            transitions.pass_inspection(session, job, actor=actor, inspection_id=inspection.id)
    else:
        nc = open_non_conformity(session, inspection=inspection, cause=cause or note, actor=actor)
        if disposition is not Disposition.PENDING:
            apply_disposition(session, nc, disposition, actor=actor)
    session.commit()
    return inspection


def _write(
    session: Session,
    *,
    plan: LotPlan,
    actor: Actor,
    measurements: list[dict[str, Any]],
    defective: int,
    accepted: bool,
    note: str,
    idempotency_key: str | None,
) -> Inspection:
    sampling = plan.sampling
    lead = plan.jobs[0]
    inspection = Inspection(
        job_id=lead.id,
        attempt=lead.attempt,
        quality_plan_id=plan.quality_plan.id if plan.quality_plan else None,
        design_version_id=plan.design_version_id,
        site_id=plan.site_id,
        severity=sampling.severity.value,
        aql=sampling.aql,
        lot_size=sampling.lot_size,
        code_letter=sampling.code_letter,
        sample_size=sampling.sample_size,
        accept_number=sampling.accept_number,
        reject_number=sampling.reject_number,
        defective_count=defective,
        sample=[item.as_dict() for item in plan.sample],
        measurements=measurements,
        verdict=Verdict.PASSED if accepted else Verdict.REJECTED,
        inspector_id=actor.user_id,
        note=note,
        idempotency_key=idempotency_key,
    )
    session.add(inspection)
    session.flush()
    for job in plan.jobs:
        run = finished_run(session, job.id, job.attempt)
        session.add(
            InspectionJob(
                inspection_id=inspection.id,
                job_id=job.id,
                attempt=job.attempt,
                copies=job.copies,
                print_run_id=run.id if run else None,
            )
        )
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="inspection.recorded",
        entity_type="inspection",
        entity_id=inspection.id,
        data=inspection_facts(inspection, plan.jobs),
    )
    return inspection


def inspection_facts(inspection: Inspection, jobs: Sequence[Job]) -> dict[str, Any]:
    """What the audit trail keeps of an inspection, and what the integrity check compares."""
    return {
        "job_id": inspection.job_id,
        "jobs": sorted(str(job.id) for job in jobs),
        "site_id": inspection.site_id,
        "plan_id": inspection.quality_plan_id,
        "severity": inspection.severity,
        "aql": inspection.aql,
        "lot_size": inspection.lot_size,
        "code_letter": inspection.code_letter,
        "sample_size": inspection.sample_size,
        "accept_number": inspection.accept_number,
        "reject_number": inspection.reject_number,
        "defective": inspection.defective_count,
        "verdict": inspection.verdict,
        "measurements": len(inspection.measurements),
    }


def lot_rows(session: Session, inspection_id: UUID) -> list[InspectionJob]:
    return list(
        session.scalars(
            select(InspectionJob)
            .where(InspectionJob.inspection_id == inspection_id)
            .order_by(InspectionJob.job_id)
        )
    )


def get_inspection(session: Session, inspection_id: UUID, *, actor: Actor) -> Inspection:
    inspection = session.get(Inspection, inspection_id)
    if inspection is None or not (
        actor.sees_all_sites()
        or (inspection.site_id is not None and inspection.site_id in actor.site_ids)
    ):
        raise NotFound(f"no inspection {inspection_id}")
    return inspection


def find_inspections(session: Session, *, job_id: UUID) -> list[Inspection]:
    """Every inspection a plate was part of, oldest first."""
    return list(
        session.scalars(
            select(Inspection)
            .join(InspectionJob, InspectionJob.inspection_id == Inspection.id)
            .where(InspectionJob.job_id == job_id)
            .order_by(Inspection.inspected_at)
        )
    )


def non_conformity_of(session: Session, inspection_id: UUID) -> NonConformity | None:
    return session.scalar(select(NonConformity).where(NonConformity.inspection_id == inspection_id))


def resume_sampling(
    session: Session,
    *,
    design_version_id: UUID,
    site_id: UUID,
    corrective_action: str,
    actor: Actor,
) -> SamplingResumption:
    """Record the corrective action that lets a discontinued stream of lots be inspected
    again (on tightened inspection). Coordinators and admins; ``Conflict`` when the
    stream is not discontinued."""
    require_role(actor, Role.COORDINATOR)
    ensure_can_act(actor)
    if not corrective_action.strip():
        raise Invalid("say what was corrected before sampling resumes")
    site = session.scalar(select(Site).where(Site.id == site_id).with_for_update())
    if site is None:
        raise NotFound(f"no site {site_id}")
    state = stream_state(session, design_version_id=design_version_id, site_id=site_id)
    if state.severity is not Severity.DISCONTINUED:
        raise Conflict(f"sampling of this design at this site is {state.severity.value}")
    resumption = SamplingResumption(
        design_version_id=design_version_id,
        site_id=site_id,
        corrective_action=corrective_action,
        resumed_by_id=actor.user_id,
    )
    session.add(resumption)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="sampling.resumed",
        entity_type="sampling_resumption",
        entity_id=resumption.id,
        data={
            "design_version_id": design_version_id,
            "site_id": site_id,
            "corrective_action": corrective_action,
        },
    )
    session.commit()
    return resumption
