"""The allocator's adapter: database -> Problem, Plan -> database.

Solving takes seconds, so it never happens inside a transaction: the caller
reads a snapshot (``build_problem``), closes the transaction, solves, then
``apply_plan`` re-reads each job under lock and only moves jobs that are still
movable and unchanged since the snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.models import DesignVersion, SliceRecord
from catalog.service import settings_key
from catalog.types import SliceSettings
from core import audit
from core.identity import Actor
from printers.hours import open_windows
from printers.models import Printer, PrinterStatusValue
from scheduler import jobs as transitions
from scheduler.models import (
    DeliveryPoint,
    Job,
    JobRefusal,
    JobState,
    Need,
    NeedStatus,
    PlanRecord,
    PrintRun,
    RunOutcome,
)
from scheduler.types import (
    DeliveryPointSpec,
    JobSpec,
    Plan,
    PrinterSpec,
    Problem,
    SiteSpec,
)

# Heating, homing and taking the plate off: measured on a Prusa MK3S in a
# fablab this is 4-6 minutes per plate on top of the slicer's print time.
PLATE_OVERHEAD_S = 300
# Priority 1..5 -> tardiness weight; doubling per level so that one
# life-critical need outweighs many routine ones.
PRIORITY_WEIGHT = {1: 1.0, 2: 2.0, 3: 4.0, 4: 8.0, 5: 16.0}
# Printers the planner may use; offline and faulted ones wait for a person.
USABLE_STATUSES = frozenset(
    {
        PrinterStatusValue.UNKNOWN,
        PrinterStatusValue.OPERATIONAL,
        PrinterStatusValue.PRINTING,
        PrinterStatusValue.PAUSED,
    }
)


@dataclass
class PlanningSnapshot:
    problem: Problem
    slices: dict[tuple[UUID, UUID], SliceRecord] = field(default_factory=dict)
    job_versions: dict[UUID, int] = field(default_factory=dict)
    printer_sites: dict[UUID, UUID] = field(default_factory=dict)


def usable_printers(session: Session) -> list[Printer]:
    return list(
        session.scalars(
            select(Printer).where(
                Printer.enabled.is_(True), Printer.status.in_(list(USABLE_STATUSES))
            )
        )
    )


def build_problem(
    session: Session,
    *,
    now: datetime,
    horizon_days: int,
    slice_settings: SliceSettings | None = None,
) -> PlanningSnapshot:
    settings_hash, _ = settings_key(slice_settings or SliceSettings())
    printers = usable_printers(session)
    printer_by_id = {p.id: p for p in printers}
    jobs = list(
        session.scalars(
            select(Job)
            .join(Need, Need.id == Job.need_id)
            .where(
                Need.status == NeedStatus.OPEN,
                Job.state.in_([s.value for s in (*transitions.MOVABLE, *transitions.FROZEN)]),
            )
        )
    )
    needs = {
        n.id: n for n in session.scalars(select(Need).where(Need.id.in_({j.need_id for j in jobs})))
    }
    slices: dict[tuple[UUID, UUID], SliceRecord] = {}
    slice_rows = session.scalars(
        select(SliceRecord).where(
            SliceRecord.design_version_id.in_({j.design_version_id for j in jobs}),
            SliceRecord.settings_hash == settings_hash,
        )
    )
    by_key: dict[tuple[UUID, str, str, int], SliceRecord] = {
        (s.design_version_id, s.profile_key, s.material_key, s.copies): s for s in slice_rows
    }
    refused: dict[UUID, set[UUID]] = {}
    for job_id, printer_id in session.execute(
        select(JobRefusal.job_id, JobRefusal.printer_id).where(
            JobRefusal.job_id.in_([j.id for j in jobs])
        )
    ):
        refused.setdefault(job_id, set()).add(printer_id)
    runs = {
        r.job_id: r
        for r in session.scalars(
            select(PrintRun).where(
                PrintRun.job_id.in_([j.id for j in jobs if j.state in transitions.ON_PRINTER]),
                PrintRun.outcome.in_([RunOutcome.DISPATCHED, RunOutcome.PRINTING]),
            )
        )
    }

    job_specs: list[JobSpec] = []
    snapshot_versions: dict[UUID, int] = {}
    for job in jobs:
        need = needs[job.need_id]
        durations: dict[str, int] = {}
        frozen = job.state in transitions.FROZEN
        candidates = (
            [printer_by_id[job.printer_id]]
            if frozen and job.printer_id in printer_by_id
            else ([] if frozen else printers)
        )
        for printer in candidates:
            if printer.id in refused.get(job.id, set()):
                continue
            record = by_key.get(
                (job.design_version_id, printer.profile_key, job.material_key, job.copies)
            )
            if record is None:
                continue  # not sliced for this profile yet: ineligible until it is
            slices[(job.id, printer.id)] = record
            durations[str(printer.id)] = int(record.print_time_s) + PLATE_OVERHEAD_S
        if frozen and not durations:
            continue  # its printer is offline: the poller will fail or recover it
        frozen_start = None
        if frozen:
            run = runs.get(job.id)
            frozen_start = (run.started_at or run.dispatched_at) if run else None
            frozen_start = frozen_start or job.planned_start_at or now
        job_specs.append(
            JobSpec(
                id=str(job.id),
                need_id=str(job.need_id),
                durations_s=durations,
                material=job.material_key,
                release_at=now,
                due_at=need.due_at,
                weight=PRIORITY_WEIGHT.get(need.priority, 4.0),
                delivery_point_id=str(need.delivery_point_id),
                frozen_printer_id=str(job.printer_id) if frozen else None,
                frozen_start_at=frozen_start,
                previous_printer_id=str(job.printer_id) if job.state is JobState.PLANNED else None,
                previous_start_at=job.planned_start_at if job.state is JobState.PLANNED else None,
            )
        )
        snapshot_versions[job.id] = job.version

    sites = {p.site_id: p.site for p in printers}
    site_specs = tuple(
        SiteSpec(
            id=str(site.id),
            lat=site.lat,
            lon=site.lon,
            open_windows=open_windows(
                site.opening_hours, timezone=site.timezone, start=now, days=horizon_days
            ),
        )
        for site in sites.values()
    )
    points = session.scalars(
        select(DeliveryPoint).where(
            DeliveryPoint.id.in_({n.delivery_point_id for n in needs.values()})
        )
    )
    problem = Problem(
        jobs=tuple(job_specs),
        printers=tuple(
            PrinterSpec(
                id=str(p.id),
                site_id=str(p.site_id),
                available_at=now,
                material=p.loaded_material.key if p.loaded_material else None,
            )
            for p in printers
        ),
        sites=site_specs,
        delivery_points=tuple(
            DeliveryPointSpec(id=str(d.id), lat=d.lat, lon=d.lon) for d in points
        ),
        now=now,
    )
    return PlanningSnapshot(
        problem=problem,
        slices=slices,
        job_versions=snapshot_versions,
        printer_sites={p.id: p.site_id for p in printers},
    )


def apply_plan(
    session: Session,
    snapshot: PlanningSnapshot,
    plan: Plan,
    *,
    actor: Actor,
    trigger: str,
) -> PlanRecord:
    """Write the plan (flush only): movable, unchanged jobs take their new place.

    A job that was accepted, refused or changed while the solver ran keeps
    its current state; the next re-plan will see it."""
    record = PlanRecord(
        trigger=trigger,
        method=plan.method,
        status=plan.status.value,
        weighted_tardiness_s=plan.weighted_tardiness_s,
        makespan_s=plan.makespan_s,
        travel_s=plan.travel_s,
        bound=plan.bound,
        solve_time_s=plan.solve_time_s,
        jobs_planned=len(plan.assignments),
        jobs_unassigned=len(plan.unassigned),
    )
    session.add(record)
    session.flush()
    moved = 0
    for assignment in plan.assignments:
        job_id = UUID(assignment.job_id)
        if job_id not in snapshot.job_versions:
            continue
        job = transitions.get_job(session, job_id, for_update=True)
        if job.version != snapshot.job_versions[job_id] or job.state not in transitions.MOVABLE:
            continue
        printer_id = UUID(assignment.printer_id)
        slice_record = snapshot.slices[(job_id, printer_id)]
        if transitions.plan(
            session,
            job,
            printer_id=printer_id,
            site_id=snapshot.printer_sites[printer_id],
            start_at=assignment.start_at,
            end_at=assignment.end_at,
            delivery_at=assignment.delivered_at,
            slice_id=slice_record.id,
            gcode_hash=slice_record.gcode_hash,
            actor=actor,
            plan_id=record.id,
        ):
            moved += 1
    for unassigned in plan.unassigned:
        job_id = UUID(unassigned.job_id)
        if job_id not in snapshot.job_versions:
            continue
        job = transitions.get_job(session, job_id, for_update=True)
        if job.version == snapshot.job_versions[job_id] and job.state is JobState.PLANNED:
            transitions.unplan(session, job, actor=actor, reason=unassigned.reason)
            moved += 1
    record.jobs_moved = moved
    record.explanation = {
        "unassigned": [{"job_id": u.job_id, "reason": u.reason} for u in plan.unassigned],
    }
    audit.record(
        session,
        actor=actor,
        action="plan.applied",
        entity_type="plan",
        entity_id=record.id,
        data={
            "trigger": trigger,
            "method": plan.method,
            "status": plan.status.value,
            "weighted_tardiness_s": plan.weighted_tardiness_s,
            "jobs_planned": len(plan.assignments),
            "jobs_moved": moved,
        },
    )
    return record


def versions_in_use(session: Session) -> list[DesignVersion]:
    return list(
        session.scalars(
            select(DesignVersion).where(
                DesignVersion.id.in_(
                    select(Job.design_version_id)
                    .join(Need, Need.id == Job.need_id)
                    .where(Need.status == NeedStatus.OPEN)
                )
            )
        )
    )


def horizon_end(now: datetime, days: int) -> datetime:
    return now + timedelta(days=days)
