"""The job state machine: the only code that changes ``Job.state``.

Each transition is one function that checks the move is legal, writes the new
state with its audit entry in the caller's transaction (flush, no commit) and
is idempotent: asking again for the state a job is already in changes nothing
and writes no second audit entry, so a retried task is harmless.

    queued -> planned -> accepted -> dispatched -> printing -> printed -> passed -> delivered
    planned -> refused -> queued          (the refusing printer is excluded from then on)
    dispatched|printing -> failed -> queued   (while attempts remain; waste recorded by the caller)
    queued..printing -> cancelled -> queued   (when the need still wants it)
    printed -> rejected -> queued         (inspection failed; a reprint)
    rejected -> cancelled                 (scrapped without a reprint: the plate is over)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.clock import utcnow
from core.errors import IllegalTransition, NotFound
from core.identity import Actor
from scheduler.models import Job, JobState

S = JobState

LEGAL: dict[JobState, frozenset[JobState]] = {
    S.QUEUED: frozenset({S.PLANNED, S.CANCELLED}),
    S.PLANNED: frozenset({S.QUEUED, S.ACCEPTED, S.REFUSED, S.CANCELLED}),
    S.ACCEPTED: frozenset({S.DISPATCHED, S.CANCELLED, S.FAILED}),
    # A short print can finish between two polls: dispatched -> printed directly.
    S.DISPATCHED: frozenset({S.PRINTING, S.PRINTED, S.FAILED, S.CANCELLED}),
    S.PRINTING: frozenset({S.PRINTED, S.FAILED, S.CANCELLED}),
    S.PRINTED: frozenset({S.PASSED, S.REJECTED}),
    S.PASSED: frozenset({S.DELIVERED}),
    S.DELIVERED: frozenset(),
    S.REFUSED: frozenset({S.QUEUED}),
    S.FAILED: frozenset({S.QUEUED}),
    S.CANCELLED: frozenset({S.QUEUED}),
    # A rejected plate is reprinted (queued) or scrapped for good (cancelled).
    S.REJECTED: frozenset({S.QUEUED, S.CANCELLED}),
}

# States in which the allocator may still move a job; all later ones are frozen.
MOVABLE = frozenset({S.QUEUED, S.PLANNED})
FROZEN = frozenset({S.ACCEPTED, S.DISPATCHED, S.PRINTING})
# A job in one of these occupies its printer.
ON_PRINTER = frozenset({S.DISPATCHED, S.PRINTING})
TERMINAL = frozenset({S.DELIVERED})


def get_job(session: Session, job_id: UUID, *, for_update: bool = False) -> Job:
    query = select(Job).where(Job.id == job_id)
    if for_update:
        # Serialises concurrent transitions of one job on PostgreSQL; SQLite
        # transactions are serialised already (BEGIN IMMEDIATE).
        query = query.with_for_update(of=Job)
    job = session.scalar(query)
    if job is None:
        raise NotFound(f"no job {job_id}")
    return job


def _move(
    session: Session,
    job: Job,
    target: JobState,
    *,
    actor: Actor,
    action: str | None = None,
    data: dict[str, Any] | None = None,
    fields: dict[str, Any] | None = None,
) -> bool:
    """Move ``job`` to ``target``, setting ``fields`` with the state in the same UPDATE;
    False (and nothing written) when it is there already."""
    if job.state is target:
        return False
    if target not in LEGAL[job.state]:
        raise IllegalTransition(
            f"job {job.id} is {job.state.value}; it cannot become {target.value}",
            job_id=str(job.id),
            state=job.state.value,
            target=target.value,
        )
    previous = job.state
    job.state = target
    job.state_changed_at = utcnow()
    for name, value in (fields or {}).items():
        setattr(job, name, value)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=action or f"job.{target.value}",
        entity_type="job",
        entity_id=job.id,
        data={"from": previous.value, "to": target.value, "attempt": job.attempt, **(data or {})},
    )
    return True


def plan(
    session: Session,
    job: Job,
    *,
    printer_id: UUID,
    site_id: UUID,
    start_at: datetime,
    end_at: datetime,
    delivery_at: datetime,
    slice_id: UUID,
    gcode_hash: str,
    actor: Actor,
    plan_id: UUID | None = None,
) -> bool:
    """queued -> planned, or move a planned job to another printer (audited).

    Planned times on the same printer are forecasts, not decisions: they are
    refreshed silently, so re-planning every minute does not flood the trail."""
    if job.state not in MOVABLE:
        raise IllegalTransition(f"job {job.id} is {job.state.value}; the planner cannot move it")
    same_printer = job.state is S.PLANNED and job.printer_id == printer_id
    moved_from = job.printer_id if job.state is S.PLANNED else None
    job.printer_id = printer_id
    job.site_id = site_id
    job.planned_start_at = start_at
    job.planned_end_at = end_at
    job.planned_delivery_at = delivery_at
    job.slice_id = slice_id
    job.gcode_hash = gcode_hash
    if same_printer:
        return False
    data = {"printer_id": printer_id, "start_at": start_at, "end_at": end_at, "plan_id": plan_id}
    if job.state is S.PLANNED:
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="job.replanned",
            entity_type="job",
            entity_id=job.id,
            data={**data, "moved_from_printer_id": moved_from},
        )
        return True
    return _move(session, job, S.PLANNED, actor=actor, data=data)


def unplan(session: Session, job: Job, *, actor: Actor, reason: str) -> bool:
    """planned -> queued: the planner found no place for it any more."""
    changed = _move(
        session, job, S.QUEUED, actor=actor, action="job.unplanned", data={"reason": reason}
    )
    if changed:
        _clear_plan(job)
    return changed


def accept(session: Session, job: Job, *, actor: Actor) -> bool:
    return _move(
        session,
        job,
        S.ACCEPTED,
        actor=actor,
        data={"printer_id": job.printer_id},
        fields={"accepted_by_id": actor.user_id},
    )


def refuse(session: Session, job: Job, *, actor: Actor, reason: str) -> bool:
    return _move(
        session, job, S.REFUSED, actor=actor, data={"printer_id": job.printer_id, "reason": reason}
    )


def dispatch(session: Session, job: Job, *, actor: Actor, run_id: UUID, file_name: str) -> bool:
    return _move(
        session,
        job,
        S.DISPATCHED,
        actor=actor,
        data={"printer_id": job.printer_id, "run_id": run_id, "file_name": file_name},
    )


def start_printing(session: Session, job: Job, *, actor: Actor) -> bool:
    return _move(session, job, S.PRINTING, actor=actor, data={"printer_id": job.printer_id})


def printed(session: Session, job: Job, *, actor: Actor) -> bool:
    return _move(session, job, S.PRINTED, actor=actor, data={"printer_id": job.printer_id})


def fail(
    session: Session, job: Job, *, actor: Actor, reason: str, progress_pct: float | None
) -> bool:
    return _move(
        session,
        job,
        S.FAILED,
        actor=actor,
        data={"printer_id": job.printer_id, "reason": reason, "progress_pct": progress_pct},
    )


def cancel(session: Session, job: Job, *, actor: Actor, reason: str) -> bool:
    return _move(session, job, S.CANCELLED, actor=actor, data={"reason": reason})


def pass_inspection(session: Session, job: Job, *, actor: Actor, inspection_id: UUID) -> bool:
    return _move(session, job, S.PASSED, actor=actor, data={"inspection_id": inspection_id})


def reject(session: Session, job: Job, *, actor: Actor, inspection_id: UUID) -> bool:
    return _move(session, job, S.REJECTED, actor=actor, data={"inspection_id": inspection_id})


def deliver(session: Session, job: Job, *, actor: Actor, delivery_id: UUID) -> bool:
    changed = _move(session, job, S.DELIVERED, actor=actor, data={"delivery_id": delivery_id})
    if changed:
        job.delivery_id = delivery_id
    return changed


def requeue(session: Session, job: Job, *, actor: Actor, reason: str, new_attempt: bool) -> bool:
    """refused|failed|cancelled|rejected -> queued. ``new_attempt`` when something was
    printed (the attempt counter limits retries); a refusal printed nothing."""
    changed = _move(
        session,
        job,
        S.QUEUED,
        actor=actor,
        action="job.requeued",
        data={"reason": reason, "new_attempt": new_attempt},
    )
    if changed:
        if new_attempt:
            job.attempt += 1
        _clear_plan(job)
    return changed


def _clear_plan(job: Job) -> None:
    job.printer_id = None
    job.site_id = None
    job.planned_start_at = None
    job.planned_end_at = None
    job.planned_delivery_at = None
    job.accepted_by_id = None
