"""Non-conformities: a rejected lot, its cause, what is done with it and the closure.

Dispositions: ``reprint`` (the plates go to the waste ledger and back to the
queue), ``scrap`` (waste, no reprint), ``use_as_is`` (a concession: the lot is
delivered as it is once a coordinator other than the inspector approves), or
``pending`` while someone decides; the plates wait, printed, meanwhile.
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.clock import utcnow
from core.errors import Conflict, Forbidden, Invalid, NotFound
from core.identity import Actor, Role, ensure_can_act, require_role
from quality.lots import finished_run
from quality.models import Disposition, Inspection, InspectionJob, NonConformity
from quality.waste import record_rejected_waste
from scheduler import jobs as transitions
from scheduler.models import Job, JobState

OPEN = "open"
CLOSED = "closed"


def open_non_conformity(
    session: Session, *, inspection: Inspection, cause: str, actor: Actor
) -> NonConformity:
    """Flush-only: the non-conformity of a rejected lot, disposition still pending."""
    nc = NonConformity(
        inspection_id=inspection.id,
        job_id=inspection.job_id,
        quantity=inspection.lot_size,
        cause=cause,
        disposition=Disposition.PENDING.value,
        status=OPEN,
    )
    session.add(nc)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="non_conformity.opened",
        entity_type="non_conformity",
        entity_id=nc.id,
        data={"inspection_id": inspection.id, "quantity": nc.quantity, "cause": cause},
    )
    return nc


def lot_of(session: Session, nc: NonConformity) -> list[tuple[Job, InspectionJob]]:
    """The plates of the non-conforming lot (locked), each with the attempt inspected."""
    rows = session.scalars(
        select(InspectionJob)
        .where(InspectionJob.inspection_id == nc.inspection_id)
        .order_by(InspectionJob.job_id)
    )
    return [(transitions.get_job(session, row.job_id, for_update=True), row) for row in rows]


def apply_disposition(
    session: Session,
    nc: NonConformity,
    disposition: Disposition,
    *,
    actor: Actor,
    note: str = "",
) -> None:
    """Flush-only: record the decision and do what it says to the plates."""
    inspection = session.get(Inspection, nc.inspection_id)
    assert inspection is not None
    nc.disposition = disposition.value
    nc.disposition_by_id = actor.user_id
    nc.disposition_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="non_conformity.disposition",
        entity_type="non_conformity",
        entity_id=nc.id,
        data={"disposition": disposition, "note": note},
    )
    if disposition in (Disposition.REPRINT, Disposition.SCRAP):
        for job, row in lot_of(session, nc):
            if job.state is JobState.PRINTED:
                transitions.reject(session, job, actor=actor, inspection_id=inspection.id)
            record_rejected_waste(
                session,
                job=job,
                run=finished_run(session, job.id, row.attempt),
                inspection_id=inspection.id,
                actor=actor,
            )
            if disposition is Disposition.REPRINT and job.state is JobState.REJECTED:
                transitions.requeue(
                    session, job, actor=actor, reason="rejected at inspection", new_attempt=True
                )
            elif disposition is Disposition.SCRAP and job.state is JobState.REJECTED:
                # No reprint: the plate ends here, so its need can still be closed.
                transitions.cancel(session, job, actor=actor, reason="scrapped at inspection")


def decide(
    session: Session,
    *,
    nc_id: UUID,
    disposition: Disposition,
    actor: Actor,
    note: str = "",
) -> NonConformity:
    """Choose what happens to a rejected lot. Operators of the producing site, coordinators
    and admins; a decision already applied cannot change (``Conflict``); deciding the
    same thing again changes nothing."""
    ensure_can_act(actor)
    nc = _locked(session, nc_id, actor)
    if disposition is Disposition.PENDING:
        raise Invalid("choose reprint, scrap or use_as_is")
    current = Disposition(nc.disposition)
    if current is disposition:
        return nc
    if nc.status == CLOSED or current in (Disposition.REPRINT, Disposition.SCRAP):
        raise Conflict(f"this non-conformity was already decided: {current.value}")
    if current is Disposition.USE_AS_IS and nc.approved_by_id is not None:
        raise Conflict("the concession was approved; the lot passed as it is")
    apply_disposition(session, nc, disposition, actor=actor, note=note)
    session.commit()
    return nc


def approve_concession(
    session: Session, *, nc_id: UUID, actor: Actor, note: str = ""
) -> NonConformity:
    """Approve "use as is": coordinators and admins, never the inspector of the lot.
    The plates pass and may be delivered; the certificate says so."""
    require_role(actor, Role.COORDINATOR)
    ensure_can_act(actor)
    nc = _locked(session, nc_id, actor)
    if nc.disposition != Disposition.USE_AS_IS.value:
        raise Conflict("only a lot to be used as is needs an approval")
    if nc.approved_by_id is not None or nc.approved_at is not None:
        return nc
    inspection = session.get(Inspection, nc.inspection_id)
    assert inspection is not None
    if actor.user_id is not None and actor.user_id == inspection.inspector_id:
        raise Forbidden("the inspector of a lot cannot approve its concession")
    nc.approved_by_id = actor.user_id
    nc.approved_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="non_conformity.concession_approved",
        entity_type="non_conformity",
        entity_id=nc.id,
        data={"inspection_id": inspection.id, "note": note},
    )
    for job, _row in lot_of(session, nc):
        transitions.pass_inspection(session, job, actor=actor, inspection_id=inspection.id)
    session.commit()
    return nc


def close(session: Session, *, nc_id: UUID, actor: Actor, note: str) -> NonConformity:
    """Close a non-conformity once its disposition is carried out; the note says what was
    verified or corrected. Closing again changes nothing."""
    ensure_can_act(actor)
    nc = _locked(session, nc_id, actor)
    if nc.status == CLOSED:
        return nc
    if not note.strip():
        raise Invalid("say what was verified or corrected when closing")
    if nc.disposition == Disposition.PENDING.value:
        raise Conflict("decide what happens to the lot before closing")
    if nc.disposition == Disposition.USE_AS_IS.value and nc.approved_at is None:
        raise Conflict("the concession is not approved yet")
    nc.status = CLOSED
    nc.closed_at = utcnow()
    nc.closed_by_id = actor.user_id
    nc.closure_note = note
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="non_conformity.closed",
        entity_type="non_conformity",
        entity_id=nc.id,
        data={"note": note},
    )
    session.commit()
    return nc


def _locked(session: Session, nc_id: UUID, actor: Actor) -> NonConformity:
    nc = session.scalar(
        select(NonConformity).where(NonConformity.id == nc_id).with_for_update(of=NonConformity)
    )
    if nc is None or not visible(session, nc, actor):
        raise NotFound(f"no non-conformity {nc_id}")
    return nc


def visible(session: Session, nc: NonConformity, actor: Actor) -> bool:
    if actor.sees_all_sites():
        return True
    site_id = session.scalar(select(Inspection.site_id).where(Inspection.id == nc.inspection_id))
    return site_id is not None and site_id in actor.site_ids


def get_non_conformity(session: Session, nc_id: UUID, *, actor: Actor) -> NonConformity:
    nc = session.get(NonConformity, nc_id)
    if nc is None or not visible(session, nc, actor):
        raise NotFound(f"no non-conformity {nc_id}")
    return nc


def find_non_conformities(
    session: Session, *, actor: Actor, status: str | None = None, site_id: UUID | None = None
) -> list[NonConformity]:
    query = (
        select(NonConformity)
        .join(Inspection, Inspection.id == NonConformity.inspection_id)
        .order_by(NonConformity.opened_at.desc())
    )
    if status:
        query = query.where(NonConformity.status == status)
    if site_id is not None:
        query = query.where(Inspection.site_id == site_id)
    if not actor.sees_all_sites():
        query = query.where(Inspection.site_id.in_(list(actor.site_ids)))
    return list(session.scalars(query.limit(1000)))
