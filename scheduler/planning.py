"""The allocator's adapter: database -> Problem, Plan -> database.

Solving takes seconds, so it never happens inside a transaction: the caller
reads a snapshot (``build_problem``), closes the transaction, solves, then
``apply_plan`` re-reads each job under lock and only moves jobs that are still
movable and unchanged since the snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID, uuid4

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


PlateKey = tuple[UUID, str, str, int]  # design version, printer profile, material, copies


@dataclass
class PlanningSnapshot:
    problem: Problem
    # The slice of a (job, printer) pair is that of the job's plate on the printer's
    # profile: kept as two small maps, not one entry per pair (3,600 jobs x 500 printers).
    slice_records: dict[PlateKey, SliceRecord] = field(default_factory=dict)
    job_plates: dict[UUID, tuple[UUID, str, int]] = field(default_factory=dict)
    printer_profiles: dict[UUID, str] = field(default_factory=dict)
    job_versions: dict[UUID, int] = field(default_factory=dict)
    printer_sites: dict[UUID, UUID] = field(default_factory=dict)

    def slice_for(self, job_id: UUID, printer_id: UUID) -> SliceRecord:
        version_id, material_key, copies = self.job_plates[job_id]
        profile_key = self.printer_profiles[printer_id]
        return self.slice_records[(version_id, profile_key, material_key, copies)]


def usable_printers(session: Session) -> list[Printer]:
    return list(
        session.scalars(
            select(Printer).where(
                Printer.enabled.is_(True), Printer.status.in_(list(USABLE_STATUSES))
            )
        )
    )


def usable_profiles(session: Session) -> set[str]:
    """The printer profiles of ``usable_printers``, without loading the printers."""
    return set(
        session.scalars(
            select(Printer.profile_key)
            .where(Printer.enabled.is_(True), Printer.status.in_(list(USABLE_STATUSES)))
            .distinct()
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
    slice_rows = session.scalars(
        select(SliceRecord).where(
            SliceRecord.design_version_id.in_({j.design_version_id for j in jobs}),
            SliceRecord.settings_hash == settings_hash,
        )
    )
    by_key: dict[PlateKey, SliceRecord] = {
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

    # Durations depend on the plate (version, material, copies) and the printer's profile
    # only: computed once per plate, in printer order, then copied per job. Building them
    # per (job, printer) through ORM attributes took 32-40 s on 3,600 jobs x 500 printers.
    fleet = [(p.id, str(p.id), p.profile_key) for p in printers]
    plate_durations: dict[tuple[UUID, str, int], dict[str, int]] = {}

    def durations_on(
        plate: tuple[UUID, str, int], on: list[tuple[UUID, str, str]]
    ) -> dict[str, int]:
        version_id, material_key, copies = plate
        out: dict[str, int] = {}
        for _printer_id, key, profile_key in on:
            record = by_key.get((version_id, profile_key, material_key, copies))
            if record is not None:  # not sliced for this profile yet: ineligible until it is
                out[key] = int(record.print_time_s) + PLATE_OVERHEAD_S
        return out

    job_specs: list[JobSpec] = []
    snapshot_versions: dict[UUID, int] = {}
    job_plates: dict[UUID, tuple[UUID, str, int]] = {}
    for job in jobs:
        need = needs[job.need_id]
        plate = (job.design_version_id, job.material_key, job.copies)
        job_plates[job.id] = plate
        frozen = job.state in transitions.FROZEN
        if frozen:
            own = printer_by_id.get(job.printer_id) if job.printer_id else None
            on = [(own.id, str(own.id), own.profile_key)] if own is not None else []
            durations = durations_on(plate, on)
        else:
            if plate not in plate_durations:
                plate_durations[plate] = durations_on(plate, fleet)
            durations = dict(plate_durations[plate])
        for printer_id in refused.get(job.id, ()):
            durations.pop(str(printer_id), None)
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
        slice_records=by_key,
        job_plates=job_plates,
        printer_profiles={p.id: p.profile_key for p in printers},
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
    batch: int | None = None,
) -> PlanRecord:
    """Write the plan: movable, unchanged jobs take their new place.

    A job that was accepted, refused or changed while the solver ran keeps
    its current state; the next re-plan will see it. Flush only, unless
    ``batch`` is given: then the jobs are written ``batch`` at a time, each
    batch committed with its audit entries, and the caller commits the rest
    (the plan's record and its ``plan.applied`` entry). In one transaction,
    3,600 jobs stayed locked 3-7 s, and every operator accepting one of them
    waited as long (load benchmark); a job locked by someone at that instant
    is skipped, as one that changed during the solve is."""
    # Added last: with ``batch``, the record appears once the jobs follow it.
    record = PlanRecord(
        id=uuid4(),
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
    assigned = {UUID(a.job_id): a for a in plan.assignments}
    unassigned = {UUID(u.job_id): u for u in plan.unassigned}
    # In id order, so that two writers locking several jobs cannot deadlock.
    job_ids = sorted((assigned.keys() | unassigned.keys()) & snapshot.job_versions.keys())
    size = batch or max(1, len(job_ids))
    moved = 0
    for start in range(0, len(job_ids), size):
        chunk = job_ids[start : start + size]
        locked = _lock_movable(session, chunk, skip_locked=batch is not None)
        for job_id in chunk:
            job = locked.get(job_id)
            if job is None or job.version != snapshot.job_versions[job_id]:
                continue
            assignment = assigned.get(job_id)
            if assignment is None:
                if job.state is JobState.PLANNED:
                    transitions.unplan(session, job, actor=actor, reason=unassigned[job_id].reason)
                    moved += 1
                continue
            printer_id = UUID(assignment.printer_id)
            slice_record = snapshot.slice_for(job_id, printer_id)
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
        if batch is not None:
            session.commit()
    record.jobs_moved = moved
    session.add(record)
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


def _lock_movable(
    session: Session, job_ids: list[UUID], *, skip_locked: bool = False, chunk: int = 500
) -> dict[UUID, Job]:
    """The jobs among ``job_ids`` still movable, locked for this transaction (with
    ``skip_locked``, those another transaction holds right now are left out)."""
    locked: dict[UUID, Job] = {}
    for start in range(0, len(job_ids), chunk):
        query = (
            select(Job)
            .where(
                Job.id.in_(job_ids[start : start + chunk]),
                Job.state.in_([s.value for s in transitions.MOVABLE]),
            )
            .order_by(Job.id)
            .with_for_update(of=Job, skip_locked=skip_locked)
        )
        locked.update((job.id, job) for job in session.scalars(query))
    return locked


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
