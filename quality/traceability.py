"""Traceability both ways.

Forward (from a delivered item back): delivery -> need -> design version and its
approval -> slicing settings and G-code hash -> printer, site, operator, spool
lot, print start and end -> inspection and inspector.
Reverse (recall): from a spool lot, a printer over a time window, or a design
version -> every delivery and recipient affected, and the plates not delivered
yet that should be held back.
Everything is returned as JSON-ready dictionaries (ids and instants as strings).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from catalog.models import DesignVersion, Part, SliceRecord, SpoolLot
from core.errors import Invalid, NotFound
from core.identity import Actor, User
from printers.models import Printer, Site
from quality.models import Delivery, Inspection, InspectionJob, NonConformity, QualityPlan
from scheduler.models import DeliveryPoint, Job, JobState, Need, PrintRun, RunOutcome

MAX_RECALL_ROWS = 50_000


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


class TraceCache:
    """What a trace reads again and again (usernames, slices, inspection summaries), read
    once; an export shares one across every batch of its window."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.cache: dict[UUID, str] = {}
        self.slices: dict[tuple[UUID, str], SliceRecord | None] = {}
        self.inspections: dict[UUID, dict[str, Any]] = {}

    def slice(self, design_version_id: UUID, gcode_hash: str) -> SliceRecord | None:
        key = (design_version_id, gcode_hash)
        if key not in self.slices:
            self.slices[key] = self.session.scalar(
                select(SliceRecord)
                .where(
                    SliceRecord.design_version_id == design_version_id,
                    SliceRecord.gcode_hash == gcode_hash,
                )
                .limit(1)
            )
        return self.slices[key]

    def __call__(self, user_id: UUID | None) -> str | None:
        if user_id is None:
            return None
        if user_id not in self.cache:
            self.cache[user_id] = (
                self.session.scalar(select(User.username).where(User.id == user_id)) or "?"
            )
        return self.cache[user_id]


def delivered_run(session: Session, job: Job) -> PrintRun | None:
    """The print whose parts left: the job's final attempt, finished."""
    return session.scalar(
        select(PrintRun).where(
            PrintRun.job_id == job.id,
            PrintRun.attempt == job.attempt,
            PrintRun.outcome == RunOutcome.DONE,
        )
    )


def design_facts(session: Session, version_id: UUID, names: TraceCache) -> dict[str, Any]:
    version = session.get(DesignVersion, version_id)
    assert version is not None
    return {
        "id": str(version.id),
        "part_id": str(version.part_id),
        "part": version.part.name,
        "number": version.number,
        "model_sha256": version.model_hash,
        "model_file": version.model_file_name,
        "licence": version.licence,
        "status": version.status.value,
        "approved_by": names(version.approved_by_id),
        "approved_at": _iso(version.approved_at),
    }


def plate_chain(session: Session, job: Job, *, attempt: int, names: TraceCache) -> dict[str, Any]:
    """One plate's record for one attempt: how it was sliced, printed and inspected."""
    run = session.scalar(
        select(PrintRun).where(PrintRun.job_id == job.id, PrintRun.attempt == attempt)
    )
    chain: dict[str, Any] = {
        "job_id": str(job.id),
        "plate": job.index,
        "copies": job.copies,
        "attempt": attempt,
        "state": job.state.value,
        "print": None,
        "slice": None,
        "material": {"key": job.material_key, "spool_lot": None},
        "inspection": None,
        "concession": None,
    }
    if run is not None:
        printer = session.get(Printer, run.printer_id)
        site = session.get(Site, run.site_id)
        chain["print"] = {
            "run_id": str(run.id),
            "printer_id": str(run.printer_id),
            "printer": printer.name if printer else None,
            "site_id": str(run.site_id),
            "site": site.name if site else None,
            "operator": names(run.operator_id),
            "file": run.file_name,
            "gcode_sha256": run.gcode_hash,
            "filament_g": float(run.filament_g),
            "outcome": run.outcome.value,
            "started_at": _iso(run.started_at or run.dispatched_at),
            "ended_at": _iso(run.ended_at),
        }
        record = names.slice(job.design_version_id, run.gcode_hash)
        if record is not None:
            chain["slice"] = {
                "id": str(record.id),
                "profile": record.profile_key,
                "settings_sha256": record.settings_hash,
                "settings": record.settings,
                "print_time_s": float(record.print_time_s),
                "filament_g": float(record.filament_g),
            }
        chain["material"] = {"key": run.material_key, "spool_lot": _lot(session, run.spool_lot_id)}
    row = session.scalar(
        select(InspectionJob).where(
            InspectionJob.job_id == job.id, InspectionJob.attempt == attempt
        )
    )
    if row is not None:
        inspection = session.get(Inspection, row.inspection_id)
        assert inspection is not None
        if inspection.id not in names.inspections:
            names.inspections[inspection.id] = inspection_summary(session, inspection, names)
        chain["inspection"] = names.inspections[inspection.id]
        nc = session.scalar(
            select(NonConformity).where(NonConformity.inspection_id == inspection.id)
        )
        if nc is not None and nc.approved_at is not None:
            chain["concession"] = {
                "non_conformity_id": str(nc.id),
                "cause": nc.cause,
                "approved_by": names(nc.approved_by_id),
                "approved_at": _iso(nc.approved_at),
            }
    return chain


def inspection_summary(
    session: Session, inspection: Inspection, names: TraceCache
) -> dict[str, Any]:
    plan = (
        session.get(QualityPlan, inspection.quality_plan_id) if inspection.quality_plan_id else None
    )
    plates = session.scalars(
        select(InspectionJob.job_id)
        .where(InspectionJob.inspection_id == inspection.id)
        .order_by(InspectionJob.job_id)
    ).all()
    return {
        "id": str(inspection.id),
        "inspected_at": _iso(inspection.inspected_at),
        "inspector": names(inspection.inspector_id),
        "plan_id": str(plan.id) if plan else None,
        "plan_revision": plan.revision if plan else None,
        "standard": plan.standard if plan else "",
        "aql": float(inspection.aql),
        "severity": inspection.severity,
        "lot_size": inspection.lot_size,
        "code_letter": inspection.code_letter,
        "sample_size": inspection.sample_size,
        "accept_number": inspection.accept_number,
        "reject_number": inspection.reject_number,
        "defective_count": inspection.defective_count,
        "verdict": inspection.verdict.value,
        "lot_jobs": [str(job_id) for job_id in plates],
    }


def _lot(session: Session, lot_id: UUID | None) -> dict[str, Any] | None:
    if lot_id is None:
        return None
    lot = session.get(SpoolLot, lot_id)
    if lot is None:
        return None
    return {
        "id": str(lot.id),
        "lot_code": lot.lot_code,
        "material": lot.material.key,
        "supplier": lot.supplier,
        "colour": lot.colour,
        "recycled": lot.recycled,
        "received_at": _iso(lot.received_at),
    }


def get_delivery(session: Session, delivery_id: UUID) -> Delivery:
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        raise NotFound(f"no delivery {delivery_id}")
    return delivery


def delivery_plates(session: Session, delivery_id: UUID) -> list[Job]:
    return list(
        session.scalars(select(Job).where(Job.delivery_id == delivery_id).order_by(Job.index))
    )


def plate_site(session: Session, job: Job) -> UUID | None:
    run = delivered_run(session, job)
    return run.site_id if run is not None else job.site_id


def visible_plates(session: Session, jobs: list[Job], actor: Actor) -> list[Job]:
    if actor.sees_all_sites():
        return jobs
    return [job for job in jobs if plate_site(session, job) in actor.site_ids]


def trace_delivery(
    session: Session,
    delivery_id: UUID,
    *,
    actor: Actor,
    require_all: bool = False,
    cache: TraceCache | None = None,
) -> dict[str, Any]:
    """The chain of every plate of a delivered batch. An operator sees a batch its sites
    contributed to, with only its own plates detailed (``hidden_plates`` counts the
    others); another site's batch is ``NotFound``. ``require_all`` makes a batch with
    any plate from another site ``NotFound`` too (certificates)."""
    delivery = get_delivery(session, delivery_id)
    jobs = delivery_plates(session, delivery.id)
    shown = visible_plates(session, jobs, actor)
    if not shown or (require_all and len(shown) != len(jobs)):
        raise NotFound(f"no delivery {delivery_id}")
    names = cache or TraceCache(session)
    need = session.get(Need, delivery.need_id)
    point = session.get(DeliveryPoint, delivery.delivery_point_id)
    assert need is not None
    assert point is not None
    return {
        "delivery": {
            "id": str(delivery.id),
            "delivered_at": _iso(delivery.delivered_at),
            "quantity": delivery.quantity,
            "recipient": delivery.recipient,
            "delivered_by": names(delivery.delivered_by_id),
            "delivery_point": {
                "id": str(point.id),
                "name": point.name,
                "kind": point.kind,
                "address": point.address,
            },
        },
        "need": {
            "id": str(need.id),
            "quantity": need.quantity,
            "priority": need.priority,
            "due_at": _iso(need.due_at),
            "posted_at": _iso(need.created_at),
            "posted_by": names(need.created_by_id),
        },
        "design_version": design_facts(session, need.design_version_id, names),
        "plates": [plate_chain(session, job, attempt=job.attempt, names=names) for job in shown],
        "hidden_plates": len(jobs) - len(shown),
    }


def trace_job(session: Session, job_id: UUID, *, actor: Actor) -> dict[str, Any]:
    """A plate's whole story: every attempt (failed prints, rejected lots, the one that
    passed), and the delivery if it left."""
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}")
    attempts = session.scalars(
        select(PrintRun.attempt).where(PrintRun.job_id == job.id).order_by(PrintRun.attempt)
    ).all()
    sites = set(
        session.scalars(select(PrintRun.site_id).where(PrintRun.job_id == job.id)).all()
    ) | ({job.site_id} if job.site_id else set())
    if not actor.sees_all_sites() and not sites & actor.site_ids:
        raise NotFound(f"no job {job_id}")
    names = TraceCache(session)
    need = session.get(Need, job.need_id)
    assert need is not None
    return {
        "job_id": str(job.id),
        "need_id": str(job.need_id),
        "state": job.state.value,
        "delivery_id": str(job.delivery_id) if job.delivery_id else None,
        "design_version": design_facts(session, job.design_version_id, names),
        "attempts": [
            plate_chain(session, job, attempt=attempt, names=names)
            for attempt in sorted(set(attempts))
        ],
    }


def recall(
    session: Session,
    *,
    actor: Actor,
    spool_lot_id: UUID | None = None,
    lot_code: str | None = None,
    printer_id: UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    design_version_id: UUID | None = None,
) -> dict[str, Any]:
    """Every delivery (and recipient) holding parts from a spool lot, a printer within a
    time window (a print counts when it overlaps the window), or a design version; and
    the plates of the same origin not delivered yet. Criteria combine (AND). Operators
    see their own sites' plates only."""
    if spool_lot_id is None and not lot_code and printer_id is None and design_version_id is None:
        raise Invalid("give a spool lot, a printer (with a time window) or a design version")
    if (since is not None or until is not None) and printer_id is None:
        raise Invalid("a time window goes with a printer")
    if since is not None and until is not None and until <= since:
        raise Invalid("the window ends before it starts")
    query: Select[PrintRun, Job] = (
        select(PrintRun, Job)
        .join(Job, Job.id == PrintRun.job_id)
        .where(PrintRun.outcome == RunOutcome.DONE, PrintRun.attempt == Job.attempt)
    )
    criteria: dict[str, Any] = {}
    if spool_lot_id is not None:
        query = query.where(PrintRun.spool_lot_id == spool_lot_id)
        criteria["spool_lot_id"] = str(spool_lot_id)
    if lot_code:
        lot_ids = session.scalars(select(SpoolLot.id).where(SpoolLot.lot_code == lot_code)).all()
        if not lot_ids:
            raise NotFound(f"no spool lot {lot_code}")
        query = query.where(PrintRun.spool_lot_id.in_(lot_ids))
        criteria["lot_code"] = lot_code
    if printer_id is not None:
        query = query.where(PrintRun.printer_id == printer_id)
        criteria["printer_id"] = str(printer_id)
        if since is not None:
            query = query.where(PrintRun.ended_at >= since)
            criteria["since"] = since.isoformat()
        if until is not None:
            query = query.where(PrintRun.dispatched_at < until)
            criteria["until"] = until.isoformat()
    if design_version_id is not None:
        query = query.where(Job.design_version_id == design_version_id)
        criteria["design_version_id"] = str(design_version_id)
    if not actor.sees_all_sites():
        query = query.where(PrintRun.site_id.in_(list(actor.site_ids)))
    rows = session.execute(query.order_by(PrintRun.ended_at).limit(MAX_RECALL_ROWS + 1)).all()
    if len(rows) > MAX_RECALL_ROWS:
        raise Invalid(f"more than {MAX_RECALL_ROWS} plates match; narrow the criteria")
    return _recall_report(session, criteria, rows)


def _recall_report(
    session: Session, criteria: dict[str, Any], rows: Sequence[Any]
) -> dict[str, Any]:
    printers = {p.id: p.name for p in session.scalars(select(Printer))}
    sites = {s.id: s.name for s in session.scalars(select(Site))}
    lots = {
        lot.id: lot.lot_code
        for lot in session.scalars(
            select(SpoolLot).where(SpoolLot.id.in_({r[0].spool_lot_id for r in rows} - {None}))
        )
    }
    deliveries: dict[UUID, dict[str, Any]] = {}
    undelivered: list[dict[str, Any]] = []
    for run, job in rows:
        plate = {
            "job_id": str(job.id),
            "need_id": str(job.need_id),
            "plate": job.index,
            "copies": job.copies,
            "state": job.state.value,
            "design_version_id": str(job.design_version_id),
            "printer": printers.get(run.printer_id),
            "site": sites.get(run.site_id),
            "spool_lot": lots.get(run.spool_lot_id) if run.spool_lot_id else None,
            "printed_from": _iso(run.started_at or run.dispatched_at),
            "printed_to": _iso(run.ended_at),
        }
        if job.state is JobState.DELIVERED and job.delivery_id is not None:
            entry = deliveries.get(job.delivery_id)
            if entry is None:
                entry = _delivery_row(session, job.delivery_id)
                deliveries[job.delivery_id] = entry
            entry["plates"].append(plate)
            entry["affected_quantity"] += job.copies
        elif job.state in (JobState.PRINTED, JobState.PASSED):
            undelivered.append(plate)
    ordered = sorted(deliveries.values(), key=lambda d: (d["delivered_at"], d["delivery_id"]))
    return {
        "criteria": criteria,
        "deliveries": ordered,
        "recipients": [
            {"delivery_point": point, "recipient": recipient}
            for point, recipient in sorted({(d["delivery_point"], d["recipient"]) for d in ordered})
        ],
        "affected_quantity": sum(d["affected_quantity"] for d in ordered),
        "undelivered": undelivered,
    }


def _delivery_row(session: Session, delivery_id: UUID) -> dict[str, Any]:
    delivery = get_delivery(session, delivery_id)
    point = session.get(DeliveryPoint, delivery.delivery_point_id)
    need = session.get(Need, delivery.need_id)
    assert point is not None
    assert need is not None
    part = session.get(Part, need.part_id)
    return {
        "delivery_id": str(delivery.id),
        "delivered_at": _iso(delivery.delivered_at),
        "need_id": str(need.id),
        "part": part.name if part else None,
        "delivery_point": point.name,
        "address": point.address,
        "contact": point.contact,
        "recipient": delivery.recipient,
        "quantity": delivery.quantity,
        "affected_quantity": 0,
        "plates": [],
    }
