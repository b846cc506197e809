"""Auditor exports of a time window, as CSV (one table per kind) or one JSON document.

Kinds: inspections, non-conformities, deliveries (with their certificate hashes),
traceability (one row per delivered plate), waste, recycling (the French
outgoing-waste register's columns) and the audit trail itself. Operators get
their own sites' rows and no audit trail.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit import AuditEntry, canonical_json
from core.clock import utcnow
from core.errors import Forbidden, Invalid
from core.identity import Actor, Role, User
from printers.models import Site
from quality.models import (
    Certificate,
    Delivery,
    Inspection,
    InspectionJob,
    NonConformity,
    RecyclingBatch,
    WasteEntry,
)
from quality.traceability import TraceCache, delivery_plates, trace_delivery
from scheduler.models import DeliveryPoint, Job, PrintRun

MAX_WINDOW_DAYS = 3700


class ExportKind(StrEnum):
    INSPECTIONS = "inspections"
    NON_CONFORMITIES = "non_conformities"
    DELIVERIES = "deliveries"
    TRACEABILITY = "traceability"
    WASTE = "waste"
    RECYCLING = "recycling"
    AUDIT = "audit"


Row = dict[str, Any]


class _Context:
    def __init__(self, session: Session, actor: Actor, since: datetime, until: datetime) -> None:
        self.session = session
        self.actor = actor
        self.since = since
        self.until = until
        self.users = {u.id: u.username for u in session.scalars(select(User))}
        self.sites = {s.id: s.name for s in session.scalars(select(Site))}

    def user(self, user_id: UUID | None) -> str:
        return self.users.get(user_id, "") if user_id else ""

    def site(self, site_id: UUID | None) -> str:
        return self.sites.get(site_id, "") if site_id else ""

    def sees(self, site_id: UUID | None) -> bool:
        return self.actor.sees_all_sites() or (
            site_id is not None and site_id in self.actor.site_ids
        )


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment else ""


def _inspections(c: _Context) -> list[Row]:
    rows = []
    for i in c.session.scalars(
        select(Inspection)
        .where(Inspection.inspected_at >= c.since, Inspection.inspected_at < c.until)
        .order_by(Inspection.inspected_at, Inspection.id)
    ):
        if not c.sees(i.site_id):
            continue
        jobs = c.session.scalars(
            select(InspectionJob.job_id).where(InspectionJob.inspection_id == i.id)
        ).all()
        rows.append(
            {
                "inspection_id": str(i.id),
                "inspected_at": _iso(i.inspected_at),
                "site": c.site(i.site_id),
                "design_version_id": str(i.design_version_id or ""),
                "jobs": " ".join(sorted(str(j) for j in jobs)),
                "lot_size": i.lot_size,
                "severity": i.severity,
                "aql": i.aql,
                "code_letter": i.code_letter,
                "sample_size": i.sample_size,
                "accept_number": i.accept_number,
                "reject_number": i.reject_number,
                "defective_count": i.defective_count,
                "verdict": i.verdict.value,
                "inspector": c.user(i.inspector_id),
                "quality_plan_id": str(i.quality_plan_id or ""),
            }
        )
    return rows


def _non_conformities(c: _Context) -> list[Row]:
    rows = []
    for nc, site_id in c.session.execute(
        select(NonConformity, Inspection.site_id)
        .join(Inspection, Inspection.id == NonConformity.inspection_id)
        .where(NonConformity.opened_at >= c.since, NonConformity.opened_at < c.until)
        .order_by(NonConformity.opened_at, NonConformity.id)
    ):
        if not c.sees(site_id):
            continue
        rows.append(
            {
                "non_conformity_id": str(nc.id),
                "opened_at": _iso(nc.opened_at),
                "site": c.site(site_id),
                "inspection_id": str(nc.inspection_id),
                "quantity": nc.quantity,
                "cause": nc.cause,
                "disposition": nc.disposition,
                "disposition_by": c.user(nc.disposition_by_id),
                "disposition_at": _iso(nc.disposition_at),
                "approved_by": c.user(nc.approved_by_id),
                "approved_at": _iso(nc.approved_at),
                "status": nc.status,
                "closed_by": c.user(nc.closed_by_id),
                "closed_at": _iso(nc.closed_at),
                "closure_note": nc.closure_note,
            }
        )
    return rows


def _window_deliveries(c: _Context) -> list[Delivery]:
    deliveries = c.session.scalars(
        select(Delivery)
        .where(Delivery.delivered_at >= c.since, Delivery.delivered_at < c.until)
        .order_by(Delivery.delivered_at, Delivery.id)
    ).all()
    return list(deliveries)


def _deliveries(c: _Context) -> list[Row]:
    rows = []
    for d in _window_deliveries(c):
        sites = set(
            c.session.scalars(
                select(PrintRun.site_id)
                .join(Job, Job.id == PrintRun.job_id)
                .where(Job.delivery_id == d.id, PrintRun.attempt == Job.attempt)
            )
        )
        if not any(c.sees(site) for site in sites):
            continue
        point = c.session.get(DeliveryPoint, d.delivery_point_id)
        certificate = c.session.scalar(select(Certificate).where(Certificate.delivery_id == d.id))
        rows.append(
            {
                "delivery_id": str(d.id),
                "delivered_at": _iso(d.delivered_at),
                "need_id": str(d.need_id),
                "delivery_point": point.name if point else "",
                "recipient": d.recipient,
                "quantity": d.quantity,
                "delivered_by": c.user(d.delivered_by_id),
                "certificate": certificate.number if certificate else "",
                "certificate_sha256": certificate.sha256 if certificate else "",
            }
        )
    return rows


def _traceability(c: _Context) -> list[Row]:
    rows = []
    cache = TraceCache(c.session)
    for d in _window_deliveries(c):
        if not delivery_plates(c.session, d.id):
            continue
        trace = trace_delivery(c.session, d.id, actor=Actor.system("export"), cache=cache)
        design = trace["design_version"]
        for plate in trace["plates"]:
            printed = plate["print"] or {}
            if not c.sees(UUID(printed["site_id"]) if printed.get("site_id") else None):
                continue
            lot = plate["material"]["spool_lot"] or {}
            inspection = plate["inspection"] or {}
            settings = plate["slice"] or {}
            rows.append(
                {
                    "delivery_id": trace["delivery"]["id"],
                    "delivered_at": trace["delivery"]["delivered_at"],
                    "delivery_point": trace["delivery"]["delivery_point"]["name"],
                    "recipient": trace["delivery"]["recipient"],
                    "need_id": trace["need"]["id"],
                    "part": design["part"],
                    "design_version": design["number"],
                    "model_sha256": design["model_sha256"],
                    "design_approved_by": design["approved_by"] or "",
                    "design_approved_at": design["approved_at"] or "",
                    "job_id": plate["job_id"],
                    "copies": plate["copies"],
                    "attempt": plate["attempt"],
                    "site": printed.get("site", ""),
                    "printer": printed.get("printer", ""),
                    "operator": printed.get("operator") or "",
                    "material": plate["material"]["key"],
                    "spool_lot": lot.get("lot_code", ""),
                    "gcode_sha256": printed.get("gcode_sha256", ""),
                    "slice_profile": settings.get("profile", ""),
                    "slice_settings_sha256": settings.get("settings_sha256", ""),
                    "printed_from": printed.get("started_at") or "",
                    "printed_to": printed.get("ended_at") or "",
                    "inspection_id": inspection.get("id", ""),
                    "verdict": inspection.get("verdict", ""),
                    "inspector": inspection.get("inspector") or "",
                    "concession": "yes" if plate["concession"] else "",
                }
            )
    return rows


def _waste(c: _Context) -> list[Row]:
    rows = []
    for w in c.session.scalars(
        select(WasteEntry)
        .where(WasteEntry.recorded_at >= c.since, WasteEntry.recorded_at < c.until)
        .order_by(WasteEntry.recorded_at, WasteEntry.id)
    ):
        if not c.sees(w.site_id):
            continue
        rows.append(
            {
                "waste_entry_id": str(w.id),
                "recorded_at": _iso(w.recorded_at),
                "site": c.site(w.site_id),
                "material": w.material_key,
                "kind": w.kind.value,
                "mass_g": w.mass_g,
                "estimated": w.estimated,
                "job_id": str(w.job_id or ""),
                "printer_id": str(w.printer_id or ""),
                "recycling_batch_id": str(w.recycling_batch_id or ""),
                "recorded_by": c.user(w.recorded_by_id),
                "note": w.note,
            }
        )
    return rows


def _recycling(c: _Context) -> list[Row]:
    """The outgoing-waste register: one row per batch sent in the window."""
    rows = []
    for b in c.session.scalars(
        select(RecyclingBatch)
        .where(RecyclingBatch.sent_at >= c.since, RecyclingBatch.sent_at < c.until)
        .order_by(RecyclingBatch.sent_at, RecyclingBatch.id)
    ):
        if not (c.actor.sees_all_sites() or c.sees(b.site_id)):
            continue
        rows.append(
            {
                "recycling_batch_id": str(b.id),
                "sent_at": _iso(b.sent_at),
                "site": c.site(b.site_id),
                "usual_name": f"3D printing plastic waste ({b.material_key})",
                "material": b.material_key,
                "waste_code": b.waste_code,
                "hazardous": "no",
                "quantity_t": round(b.total_mass_g / 1_000_000, 6),
                "destination": b.destination,
                "treatment_code": b.treatment_code,
                "carrier": b.carrier,
                "slip_number": b.slip_number,
                "returned_mass_g": b.returned_mass_g if b.returned_mass_g is not None else "",
                "returned_at": _iso(b.returned_at),
            }
        )
    return rows


def _audit(c: _Context) -> list[Row]:
    return [
        {
            "seq": e.seq,
            "at": _iso(e.at),
            "actor": e.actor,
            "action": e.action,
            "entity_type": e.entity_type,
            "entity_id": e.entity_id,
            "data_json": e.data_json,
            "prev_hash": e.prev_hash,
            "hash": e.hash,
        }
        for e in c.session.scalars(
            select(AuditEntry)
            .where(AuditEntry.at >= c.since, AuditEntry.at < c.until)
            .order_by(AuditEntry.seq)
        )
    ]


BUILDERS: dict[ExportKind, Callable[[_Context], list[Row]]] = {
    ExportKind.INSPECTIONS: _inspections,
    ExportKind.NON_CONFORMITIES: _non_conformities,
    ExportKind.DELIVERIES: _deliveries,
    ExportKind.TRACEABILITY: _traceability,
    ExportKind.WASTE: _waste,
    ExportKind.RECYCLING: _recycling,
    ExportKind.AUDIT: _audit,
}


def _context(session: Session, actor: Actor, since: datetime, until: datetime) -> _Context:
    if until <= since:
        raise Invalid("the window ends before it starts")
    if (until - since).days > MAX_WINDOW_DAYS:
        raise Invalid(f"export at most {MAX_WINDOW_DAYS} days at a time")
    return _Context(session, actor, since, until)


def export_rows(
    session: Session, kind: ExportKind, *, actor: Actor, since: datetime, until: datetime
) -> list[Row]:
    """One kind of record in ``[since, until)``. The audit trail is for auditors and admins
    (``Forbidden`` otherwise)."""
    if kind is ExportKind.AUDIT and actor.role not in (Role.AUDITOR, Role.ADMIN):
        raise Forbidden("the audit trail is exported by auditors and admins")
    return BUILDERS[kind](_context(session, actor, since, until))


def export_csv(
    session: Session, kind: ExportKind, *, actor: Actor, since: datetime, until: datetime
) -> str:
    rows = export_rows(session, kind, actor=actor, since=since, until=until)
    buffer = io.StringIO()
    columns = list(rows[0]) if rows else _columns(kind)
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return buffer.getvalue()


def _columns(kind: ExportKind) -> list[str]:
    """Header of an empty table: the same columns a full one would have."""
    names = {
        ExportKind.INSPECTIONS: "inspection_id inspected_at site design_version_id jobs lot_size severity aql code_letter sample_size accept_number reject_number defective_count verdict inspector quality_plan_id",
        ExportKind.NON_CONFORMITIES: "non_conformity_id opened_at site inspection_id quantity cause disposition disposition_by disposition_at approved_by approved_at status closed_by closed_at closure_note",
        ExportKind.DELIVERIES: "delivery_id delivered_at need_id delivery_point recipient quantity delivered_by certificate certificate_sha256",
        ExportKind.TRACEABILITY: "delivery_id delivered_at delivery_point recipient need_id part design_version model_sha256 design_approved_by design_approved_at job_id copies attempt site printer operator material spool_lot gcode_sha256 slice_profile slice_settings_sha256 printed_from printed_to inspection_id verdict inspector concession",
        ExportKind.WASTE: "waste_entry_id recorded_at site material kind mass_g estimated job_id printer_id recycling_batch_id recorded_by note",
        ExportKind.RECYCLING: "recycling_batch_id sent_at site usual_name material waste_code hazardous quantity_t destination treatment_code carrier slip_number returned_mass_g returned_at",
        ExportKind.AUDIT: "seq at actor action entity_type entity_id data_json prev_hash hash",
    }
    return names[kind].split()


def export_json(
    session: Session, *, actor: Actor, since: datetime, until: datetime
) -> dict[str, Any]:
    """Every kind the actor may read in one document, with the SHA-256 of its records."""
    kinds = [
        k
        for k in ExportKind
        if k is not ExportKind.AUDIT or actor.role in (Role.AUDITOR, Role.ADMIN)
    ]
    context = _context(session, actor, since, until)
    records = {kind.value: BUILDERS[kind](context) for kind in kinds}
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "generated_at": utcnow().isoformat(),
        "generated_by": actor.username,
        "records": records,
        "records_sha256": hashlib.sha256(canonical_json(records).encode()).hexdigest(),
    }
