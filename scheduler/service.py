"""Needs and planning use cases."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from catalog import service as catalog
from catalog.models import DesignVersion
from catalog.types import SliceSettings
from core import audit
from core.clock import utcnow
from core.db import Database
from core.errors import Conflict, Forbidden, Invalid, NotFound
from core.identity import Actor, Role, can_see_site, require_role
from core.storage import BlobStore
from printers.models import Printer
from scheduler import jobs as transitions
from scheduler.allocator import allocate
from scheduler.explain import explain_plan
from scheduler.instances.parallel import call_niced
from scheduler.models import DeliveryPoint, Job, JobState, Need, NeedStatus, PlanRecord
from scheduler.planning import USABLE_STATUSES, apply_plan, build_problem, usable_profiles
from scheduler.plates import split_into_plates
from scheduler.types import Plan

log = structlog.get_logger()

MAX_QUANTITY = 100_000


def create_delivery_point(
    session: Session,
    *,
    name: str,
    lat: float,
    lon: float,
    actor: Actor,
    kind: str = "hospital",
    address: str = "",
    contact: str = "",
) -> DeliveryPoint:
    require_role(actor, Role.COORDINATOR)
    _check_coordinates(lat, lon)
    name = name.strip()
    if not name:
        raise Invalid("a delivery point needs a name")
    if session.scalar(select(DeliveryPoint.id).where(DeliveryPoint.name == name)):
        raise Invalid(f"a delivery point named {name!r} exists already")
    point = DeliveryPoint(name=name, lat=lat, lon=lon, kind=kind, address=address, contact=contact)
    session.add(point)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="delivery_point.created",
        entity_type="delivery_point",
        entity_id=point.id,
        data={"name": name, "lat": lat, "lon": lon},
    )
    session.commit()
    return point


def find_delivery_points(session: Session) -> list[DeliveryPoint]:
    return list(session.scalars(select(DeliveryPoint).order_by(DeliveryPoint.name)))


def get_delivery_point(session: Session, point_id: UUID) -> DeliveryPoint:
    point = session.get(DeliveryPoint, point_id)
    if point is None:
        raise NotFound(f"no delivery point {point_id}")
    return point


def bed_fleet(
    session: Session, version: DesignVersion, *, max_copies_per_plate: int
) -> dict[int, int]:
    """{copies of this version one bed takes: printers in use with such a bed}, each
    capped (a failed plate loses all its copies). Without printers in use: the
    smallest bed of the checked profiles, so that the plates fit wherever they go."""
    fits: dict[str, int] = version.check_report.get("copies_per_profile", {})
    fleet: dict[int, int] = {}
    for profile_key, printers in usable_printer_counts(session).items():
        copies = min(fits.get(profile_key, 0), max_copies_per_plate)
        if copies > 0:
            fleet[copies] = fleet.get(copies, 0) + printers
    if not fleet:
        known = [n for n in fits.values() if n > 0] or [1]
        fleet = {max(1, min(min(known), max_copies_per_plate)): 1}
    return fleet


def usable_printer_counts(session: Session) -> dict[str, int]:
    """Printers that can take work, per printer profile."""
    rows = session.execute(
        select(Printer.profile_key, func.count(Printer.id))
        .where(Printer.enabled.is_(True), Printer.status.in_(list(USABLE_STATUSES)))
        .group_by(Printer.profile_key)
    )
    return {profile_key: int(count) for profile_key, count in rows}


def post_need(
    session: Session,
    *,
    part_id: UUID,
    quantity: int,
    due_at: datetime,
    delivery_point_id: UUID,
    actor: Actor,
    priority: int = 3,
    material_key: str | None = None,
    note: str = "",
    max_copies_per_plate: int = 8,
) -> Need:
    """Record a need and split it into plates (jobs in ``queued``)."""
    require_role(actor, Role.COORDINATOR)
    if not 1 <= quantity <= MAX_QUANTITY:
        raise Invalid(f"quantity must be between 1 and {MAX_QUANTITY}")
    if not 1 <= priority <= 5:
        raise Invalid("priority goes from 1 (routine) to 5 (life-critical)")
    if due_at.tzinfo is None:
        raise Invalid("the deadline needs a time zone (for example 2026-12-01T18:00:00+01:00)")
    if due_at <= utcnow():
        raise Invalid("the deadline is in the past")
    part = catalog.get_part(session, part_id)
    version = catalog.approved_version(session, part.id)
    point = get_delivery_point(session, delivery_point_id)
    material = catalog.get_material(session, material_key or part.default_material_key)
    # Plates of each printer model's own size, in proportion to what those printers hold:
    # a bed taking 4 headbands gets plates of 4, one taking 2 plates of 2.
    plates = split_into_plates(
        quantity, bed_fleet(session, version, max_copies_per_plate=max_copies_per_plate)
    )
    need = Need(
        part_id=part.id,
        design_version_id=version.id,
        material_key=material.key,
        quantity=quantity,
        due_at=due_at,
        delivery_point_id=point.id,
        priority=priority,
        note=note,
        created_by_id=actor.user_id,
    )
    session.add(need)
    session.flush()
    for index, copies in enumerate(plates, start=1):
        session.add(
            Job(
                need_id=need.id,
                index=index,
                design_version_id=version.id,
                material_key=material.key,
                copies=copies,
            )
        )
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="need.posted",
        entity_type="need",
        entity_id=need.id,
        data={
            "part": part.name,
            "design_version": version.number,
            "quantity": quantity,
            "plates": len(plates),
            "copies_per_plate": sorted(set(plates), reverse=True),
            "due_at": due_at,
            "delivery_point": point.name,
            "priority": priority,
        },
    )
    session.commit()
    return need


def update_need(
    session: Session,
    *,
    need_id: UUID,
    actor: Actor,
    due_at: datetime | None = None,
    priority: int | None = None,
) -> Need:
    """Move a need's deadline or change its priority (coordinators); the caller re-plans."""
    require_role(actor, Role.COORDINATOR)
    need = session.scalar(select(Need).where(Need.id == need_id).with_for_update(of=Need))
    if need is None:
        raise NotFound(f"no need {need_id}")
    if need.status is not NeedStatus.OPEN:
        raise Conflict(f"this need is {need.status.value}; it cannot change any more")
    changes: dict[str, object] = {}
    if due_at is not None and due_at != need.due_at:
        if due_at.tzinfo is None:
            raise Invalid("the deadline needs a time zone (for example 2026-12-01T18:00:00+01:00)")
        changes["due_at"] = {"from": need.due_at, "to": due_at}
        need.due_at = due_at
    if priority is not None and priority != need.priority:
        if not 1 <= priority <= 5:
            raise Invalid("priority goes from 1 (routine) to 5 (life-critical)")
        changes["priority"] = {"from": need.priority, "to": priority}
        need.priority = priority
    if changes:
        audit.record(
            session,
            actor=actor,
            action="need.updated",
            entity_type="need",
            entity_id=need.id,
            data=changes,
        )
    session.commit()
    return need


def find_needs(session: Session, *, status: NeedStatus | None = None) -> list[Need]:
    query = select(Need).order_by(Need.due_at)
    if status is not None:
        query = query.where(Need.status == status)
    return list(session.scalars(query))


def get_need(session: Session, need_id: UUID) -> Need:
    need = session.get(Need, need_id)
    if need is None:
        raise NotFound(f"no need {need_id}")
    return need


@dataclass(frozen=True, slots=True)
class NeedProgress:
    quantity: int
    delivered: int
    passed: int
    printed: int
    in_progress: int
    planned: int
    queued: int
    forecast_delivery_at: datetime | None
    late: bool


# A need's plates in these states are not planned (yet): no delivery can be forecast.
_UNPLANNED = frozenset({JobState.QUEUED, JobState.REFUSED, JobState.FAILED})


def need_progress(need: Need) -> NeedProgress:
    figures: dict[JobState, tuple[int, datetime | None]] = {}
    for job in need.jobs:
        copies, last = figures.get(job.state, (0, None))
        delivery = job.planned_delivery_at
        if delivery is not None and (last is None or delivery > last):
            last = delivery
        figures[job.state] = (copies + job.copies, last)
    return _progress(need, figures)


def needs_progress(session: Session, needs: list[Need]) -> dict[UUID, NeedProgress]:
    """``need_progress`` of many needs from one grouped query, without loading their jobs:
    lazy-loading each need's plates made GET /needs run 184 queries and take 380 ms on 180
    open needs (load benchmark)."""
    figures: dict[UUID, dict[JobState, tuple[int, datetime | None]]] = {n.id: {} for n in needs}
    if needs:
        rows = session.execute(
            select(
                Job.need_id,
                Job.state,
                func.sum(Job.copies),
                func.max(Job.planned_delivery_at),
            )
            .where(Job.need_id.in_(list(figures)))
            .group_by(Job.need_id, Job.state)
        )
        for need_id, state, copies, last in rows:
            figures[need_id][JobState(state)] = (int(copies), last)
    return {need.id: _progress(need, figures[need.id]) for need in needs}


def _progress(need: Need, figures: dict[JobState, tuple[int, datetime | None]]) -> NeedProgress:
    """Figures: per state of the need's plates, their copies and latest planned delivery."""
    copies = {state: count for state, (count, _last) in figures.items()}
    forecasts = [last for _count, last in figures.values() if last is not None]
    unplanned = any(state in _UNPLANNED for state in figures)
    forecast = None if unplanned or not forecasts else max(forecasts)
    delivered_at = need.delivered_at
    late = (delivered_at or forecast or need.due_at) > need.due_at or (
        unplanned and utcnow() > need.due_at
    )
    return NeedProgress(
        quantity=need.quantity,
        delivered=copies.get(JobState.DELIVERED, 0),
        passed=copies.get(JobState.PASSED, 0),
        printed=copies.get(JobState.PRINTED, 0),
        in_progress=sum(
            copies.get(s, 0) for s in (JobState.ACCEPTED, JobState.DISPATCHED, JobState.PRINTING)
        ),
        planned=copies.get(JobState.PLANNED, 0),
        queued=sum(
            copies.get(s, 0)
            for s in (JobState.QUEUED, JobState.REFUSED, JobState.FAILED, JobState.REJECTED)
        ),
        forecast_delivery_at=delivered_at or forecast,
        late=late,
    )


def refit_plates(session: Session, *, max_copies_per_plate: int = 8) -> int:
    """Cut the waiting plates that no printer in use can take any more (the printers
    with the larger beds they were sized for are gone) into plates that fit; the copies
    are kept, each cut is audited. Returns how many plates were added; idempotent."""
    if not usable_printer_counts(session):
        return 0  # nothing to fit to: the plates wait for their printers
    actor = Actor.system("planner")
    largest: dict[UUID, int] = {}
    added = 0
    waiting = session.scalars(
        select(Job)
        .join(Need, Need.id == Job.need_id)
        .where(Need.status == NeedStatus.OPEN, Job.state == JobState.QUEUED)
        .order_by(Job.need_id, Job.index)
        .with_for_update(of=Job)
    ).all()
    for job in waiting:
        if job.design_version_id not in largest:
            version = catalog.get_version(session, job.design_version_id)
            fleet = bed_fleet(session, version, max_copies_per_plate=max_copies_per_plate)
            largest[job.design_version_id] = max(fleet)
        fits = largest[job.design_version_id]
        if job.copies <= fits:
            continue
        first, *rest = split_into_plates(job.copies, {fits: 1})
        last_index = session.scalar(select(func.max(Job.index)).where(Job.need_id == job.need_id))
        new_jobs = [
            Job(
                need_id=job.need_id,
                index=(last_index or 0) + n,
                design_version_id=job.design_version_id,
                material_key=job.material_key,
                copies=copies,
            )
            for n, copies in enumerate(rest, start=1)
        ]
        session.add_all(new_jobs)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="job.split",
            entity_type="job",
            entity_id=job.id,
            data={
                "reason": f"no printer in use takes {job.copies} copies on one plate",
                "copies": {"from": job.copies, "to": first},
                "new_plates": [{"job_id": str(j.id), "copies": j.copies} for j in new_jobs],
            },
        )
        job.copies = first
        added += len(new_jobs)
    return added


def slice_open_needs(db: Database, store: BlobStore) -> int:
    """Slice every (design version, profile, material, copies) the planner will ask for,
    after cutting the waiting plates no printer in use can take (``refit_plates``).

    Idempotent and cheap when everything is cached; returns how many slices it made."""
    with db.session() as session:
        if refit_plates(session):
            session.commit()
    with db.session() as session:
        # Distinct plates x distinct profiles, in two queries: loading every job and, per
        # job, every printer made this task last 18-20 s on 720 jobs x 100 printers (load
        # benchmark), with nothing to slice, each posted need running it again.
        plates = session.execute(
            select(Job.design_version_id, Job.material_key, Job.copies)
            .join(Need, Need.id == Job.need_id)
            .where(Need.status == NeedStatus.OPEN, Job.state.in_(list(transitions.MOVABLE)))
            .distinct()
        ).all()
        profiles = usable_profiles(session)
        keys = {
            (version_id, profile_key, material_key, copies)
            for version_id, material_key, copies in plates
            for profile_key in profiles
        }
        missing = [
            key
            for key in keys
            if catalog.find_slice(
                session,
                version_id=key[0],
                profile_key=key[1],
                material_key=key[2],
                copies=key[3],
                settings=SliceSettings(copies=key[3]),
            )
            is None
        ]
        fits = {
            version.id: version.check_report.get("copies_per_profile", {})
            for version in session.scalars(
                select(DesignVersion).where(DesignVersion.id.in_({k[0] for k in missing}))
            )
        }
    made = 0
    for version_id, profile_key, material_key, copies in sorted(missing, key=str):
        if fits.get(version_id, {}).get(profile_key, 0) < copies:
            continue  # the plate does not fit this printer model
        with db.session() as session:
            started = time.perf_counter()
            record = catalog.ensure_slice(
                session,
                store,
                version_id=version_id,
                profile_key=profile_key,
                material_key=material_key,
                copies=copies,
            )
            log.info(
                "slice_ready",
                design_version_id=str(version_id),
                profile=profile_key,
                material=material_key,
                copies=copies,
                print_time_s=record.print_time_s,
                seconds=round(time.perf_counter() - started, 3),
            )
            made += 1
    return made


# Jobs written per transaction when a plan is applied (see ``apply_plan``).
APPLY_BATCH = 100


def replan(
    db: Database,
    *,
    trigger: str,
    time_limit_s: float,
    horizon_days: int,
    method: str = "auto",
    actor: Actor | None = None,
    niceness: int = 0,
    explain_budget_s: float | None = None,
) -> PlanRecord | None:
    """Re-plan every movable job; None when there is nothing to plan.

    ``niceness`` > 0 solves and explains in a forked process at that lower CPU
    priority: on the load benchmark's 3,600 jobs x 500 printers they took both cores
    of the machine for many seconds while people used the API. ``explain_budget_s``
    bounds the time spent on alternatives (see ``explain_plan``)."""
    actor = actor or Actor.system("planner")
    now = utcnow()
    with db.session() as session:
        snapshot = build_problem(session, now=now, horizon_days=horizon_days)
    if not snapshot.problem.jobs:
        return None
    problem = snapshot.problem

    def solve() -> tuple[Plan, dict[str, Any]]:
        plan = allocate(problem, time_limit_s=time_limit_s, method=method)
        explained = explain_plan(problem, plan, alternatives=3, budget_s=explain_budget_s)
        return plan, explained.to_dict()

    # Niced, the solve only gets what is left: on a saturated machine give it time, but
    # a child that never answers (a fork gone wrong) must not stop planning for good.
    budget = time_limit_s + (explain_budget_s or time_limit_s)
    plan, explained = call_niced(solve, niceness=niceness, timeout_s=10 * budget + 60)
    with db.session() as session:
        record = apply_plan(
            session, snapshot, plan, actor=actor, trigger=trigger, batch=APPLY_BATCH
        )
        record.explanation = {**record.explanation, **explained}
        session.commit()
    log.info(
        "plan_applied",
        trigger=trigger,
        method=plan.method,
        status=plan.status.value,
        jobs=len(plan.assignments),
        unassigned=len(plan.unassigned),
        moved=record.jobs_moved,
        weighted_tardiness_s=plan.weighted_tardiness_s,
        solve_time_s=round(plan.solve_time_s, 3),
        explained_without_alternatives=explained.get("alternatives_skipped", 0),
    )
    return record


def latest_plan(session: Session) -> PlanRecord | None:
    return session.scalar(select(PlanRecord).order_by(PlanRecord.created_at.desc()).limit(1))


def find_jobs(
    session: Session,
    *,
    actor: Actor,
    site_id: UUID | None = None,
    states: tuple[JobState, ...] = (),
    need_id: UUID | None = None,
    limit: int = 500,
) -> list[Job]:
    """Jobs the actor may see: an operator only those planned on its own sites."""
    query = _jobs_query(select(Job), actor, site_id, states, need_id, limit)
    return list(session.scalars(query))


def _jobs_query(
    query: Select[Any],
    actor: Actor,
    site_id: UUID | None,
    states: tuple[JobState, ...],
    need_id: UUID | None,
    limit: int,
) -> Select[Any]:
    query = query.order_by(Job.planned_start_at.is_(None), Job.planned_start_at, Job.index)
    if site_id is not None:
        if not can_see_site(actor, site_id):
            raise Forbidden(f"{actor.username} does not operate this site")
        query = query.where(Job.site_id == site_id)
    elif not actor.sees_all_sites():
        query = query.where(Job.site_id.in_(list(actor.site_ids)))
    if states:
        query = query.where(Job.state.in_([s.value for s in states]))
    if need_id is not None:
        query = query.where(Job.need_id == need_id)
    return query.limit(limit)


def visible_job(session: Session, job_id: UUID, actor: Actor) -> Job:
    job = transitions.get_job(session, job_id)
    if not actor.sees_all_sites() and (job.site_id is None or job.site_id not in actor.site_ids):
        # Same answer as a missing job: an operator learns nothing about other sites.
        raise NotFound(f"no job {job_id}")
    return job


def printers_for_site(session: Session, site_id: UUID) -> list[Printer]:
    return list(session.scalars(select(Printer).where(Printer.site_id == site_id)))


def _check_coordinates(lat: float, lon: float) -> None:
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise Invalid("latitude goes from -90 to 90 and longitude from -180 to 180")
