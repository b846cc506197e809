"""Delivering inspected batches, each with its certificate of conformity."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.clock import utcnow
from core.errors import Conflict, Invalid, NotFound
from core.identity import Actor, Role, ensure_can_act, require_role
from quality.certificates import issue_certificate
from quality.models import Delivery
from quality.traceability import plate_site
from scheduler import jobs as transitions
from scheduler.models import Job, JobState, Need, NeedStatus


def deliver_need(
    session: Session,
    *,
    need_id: UUID,
    actor: Actor,
    recipient: str = "",
    job_ids: Sequence[UUID] | None = None,
    delivered_at: datetime | None = None,
    idempotency_key: str | None = None,
) -> Delivery:
    """Hand over passed plates of a need as one batch, with its certificate.

    Without ``job_ids``, every passed plate (an operator: its own sites' only).
    Idempotent: the same ``idempotency_key``, or the same plates already delivered
    together, return the first delivery. Raises ``NotFound``, ``Forbidden``,
    ``Invalid`` or ``Conflict`` (nothing passed, a plate not passed)."""
    require_role(actor, Role.COORDINATOR, Role.OPERATOR)
    ensure_can_act(actor)
    if idempotency_key:
        earlier = session.scalar(
            select(Delivery).where(Delivery.idempotency_key == idempotency_key)
        )
        if earlier is not None:
            if earlier.need_id != need_id:
                raise Conflict("this idempotency key was used for another need's delivery")
            return earlier
    if delivered_at is not None and delivered_at > utcnow():
        raise Invalid("a delivery cannot be dated in the future")
    need = session.scalar(select(Need).where(Need.id == need_id).with_for_update(of=Need))
    if need is None:
        raise NotFound(f"no need {need_id}")
    jobs = _plates(session, need, actor, job_ids)
    if isinstance(jobs, Delivery):
        return jobs
    delivery = Delivery(
        need_id=need.id,
        delivery_point_id=need.delivery_point_id,
        quantity=sum(j.copies for j in jobs),
        recipient=recipient,
        delivered_by_id=actor.user_id,
        idempotency_key=idempotency_key,
    )
    if delivered_at is not None:
        delivery.delivered_at = delivered_at
    session.add(delivery)
    session.flush()
    for job in jobs:
        transitions.deliver(session, job, actor=actor, delivery_id=delivery.id)
    audit.record(
        session,
        actor=actor,
        action="delivery.recorded",
        entity_type="delivery",
        entity_id=delivery.id,
        data={
            "need_id": need.id,
            "quantity": delivery.quantity,
            "recipient": recipient,
            "jobs": sorted(str(j.id) for j in jobs),
        },
    )
    # Scrapped plates (cancelled for good) do not hold the need open.
    if all(j.state in (JobState.DELIVERED, JobState.CANCELLED) for j in need.jobs):
        need.status = NeedStatus.DELIVERED
        need.delivered_at = delivery.delivered_at
        audit.record(
            session,
            actor=actor,
            action="need.delivered",
            entity_type="need",
            entity_id=need.id,
            data={"quantity": need.quantity},
        )
    issue_certificate(session, delivery, actor=actor)
    session.commit()
    return delivery


def _plates(
    session: Session, need: Need, actor: Actor, job_ids: Sequence[UUID] | None
) -> list[Job] | Delivery:
    """The plates to hand over, locked; or the delivery that already took exactly them."""
    if job_ids is None:
        jobs = [j for j in need.jobs if j.state is JobState.PASSED]
        if actor.role is Role.OPERATOR:
            jobs = [j for j in jobs if plate_site(session, j) in actor.site_ids]
        if not jobs:
            raise Conflict("no inspected and passed parts are waiting for delivery on this need")
        return [transitions.get_job(session, j.id, for_update=True) for j in jobs]
    if not job_ids or len(set(job_ids)) != len(job_ids):
        raise Invalid("list each plate to deliver once")
    jobs = []
    for job_id in sorted(job_ids):
        job = transitions.get_job(session, job_id, for_update=True)
        visible = actor.role is not Role.OPERATOR or plate_site(session, job) in actor.site_ids
        if job.need_id != need.id or not visible:
            raise NotFound(f"no job {job_id} on this need")
        jobs.append(job)
    deliveries = {j.delivery_id for j in jobs}
    if all(j.state is JobState.DELIVERED for j in jobs) and len(deliveries) == 1:
        earlier = session.get(Delivery, deliveries.pop())
        together = (
            session.scalars(select(Job.id).where(Job.delivery_id == earlier.id)).all()
            if earlier
            else []
        )
        if earlier is not None and set(together) == set(job_ids):
            return earlier  # the same batch submitted again
    for job in jobs:
        if job.state is not JobState.PASSED:
            raise Conflict(f"job {job.id} is {job.state.value}; only passed plates are delivered")
    return jobs


def find_deliveries(
    session: Session,
    *,
    actor: Actor,
    need_id: UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Delivery]:
    """Deliveries, newest first; an operator sees those its sites contributed to."""
    query = select(Delivery).order_by(Delivery.delivered_at.desc())
    if need_id is not None:
        query = query.where(Delivery.need_id == need_id)
    if since is not None:
        query = query.where(Delivery.delivered_at >= since)
    if until is not None:
        query = query.where(Delivery.delivered_at < until)
    deliveries = list(session.scalars(query.limit(2000)))
    if actor.sees_all_sites():
        return deliveries
    return [
        d
        for d in deliveries
        if any(
            plate_site(session, job) in actor.site_ids
            for job in session.scalars(select(Job).where(Job.delivery_id == d.id))
        )
    ]
