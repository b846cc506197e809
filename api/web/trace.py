"""Finding batches and plates for the auditor, and the chain of a batch as CSV rows.

The chains themselves come from ``quality.traceability``; this module searches
(ids, names) and flattens a chain for a spreadsheet. Reads only."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.models import Part, SpoolLot
from printers.models import Printer
from quality.models import Delivery
from scheduler.models import DeliveryPoint, Job, Need, PrintRun

SEARCH_LIMIT = 50


def chain_rows(chain: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat row per plate of a ``trace_delivery`` chain (CSV export)."""
    delivery, need, design = chain["delivery"], chain["need"], chain["design_version"]
    rows: list[dict[str, Any]] = []
    for plate in chain["plates"]:
        printed = plate.get("print") or {}
        inspection = plate.get("inspection") or {}
        lot = (plate.get("material") or {}).get("spool_lot") or {}
        rows.append(
            {
                "delivery_id": delivery["id"],
                "delivered_at": delivery["delivered_at"],
                "delivery_point": delivery["delivery_point"]["name"],
                "recipient": delivery["recipient"],
                "need_id": need["id"],
                "part": design["part"],
                "design_version": design["number"],
                "model_sha256": design["model_sha256"],
                "design_approved_by": design["approved_by"],
                "job_id": plate["job_id"],
                "plate": plate["plate"],
                "copies": plate["copies"],
                "attempt": plate["attempt"],
                "site": printed.get("site", ""),
                "printer": printed.get("printer", ""),
                "operator": printed.get("operator", ""),
                "material": (plate.get("material") or {}).get("key", ""),
                "spool_lot": lot.get("lot_code", ""),
                "gcode_sha256": printed.get("gcode_sha256", ""),
                "printed_from": printed.get("started_at", ""),
                "printed_to": printed.get("ended_at", ""),
                "verdict": inspection.get("verdict", ""),
                "sample_size": inspection.get("sample_size", ""),
                "defective": inspection.get("defective_count", ""),
                "inspector": inspection.get("inspector", ""),
            }
        )
    return rows


_ID_PREFIX = re.compile(r"^[0-9a-f-]{6,36}$")


@dataclass
class SearchResult:
    deliveries: list[tuple[Delivery, Need]]
    jobs: list[Job]


def _with_needs(session: Session, query: Any) -> list[tuple[Delivery, Need]]:
    rows = session.execute(query.add_columns(Need).join(Need, Need.id == Delivery.need_id))
    return [(delivery, need) for delivery, need in rows]


def search(session: Session, text: str) -> SearchResult:
    """Batches and plates whose id starts with ``text``, or whose part, delivery point,
    recipient, printer or spool lot names contain it."""
    wanted = text.strip().lower()
    if not wanted:
        return SearchResult([], [])
    delivery_ids: set[UUID] = set()
    job_ids: set[UUID] = set()
    if _ID_PREFIX.match(wanted):
        # Ids are matched in Python: UUID columns do not support LIKE on every database.
        prefix = wanted.replace("-", "")
        for delivery_id, need_id in session.execute(select(Delivery.id, Delivery.need_id)):
            if delivery_id.hex.startswith(prefix) or need_id.hex.startswith(prefix):
                delivery_ids.add(delivery_id)
        for (job_id,) in session.execute(select(Job.id)):
            if job_id.hex.startswith(prefix):
                job_ids.add(job_id)
    pattern = f"%{wanted}%"
    delivery_ids.update(
        session.scalars(
            select(Delivery.id)
            .join(Need, Need.id == Delivery.need_id)
            .join(Part, Part.id == Need.part_id)
            .join(DeliveryPoint, DeliveryPoint.id == Delivery.delivery_point_id)
            .where(
                func.lower(Part.name).like(pattern)
                | func.lower(DeliveryPoint.name).like(pattern)
                | func.lower(Delivery.recipient).like(pattern)
            )
        )
    )
    job_ids.update(
        session.scalars(
            select(PrintRun.job_id)
            .join(Printer, Printer.id == PrintRun.printer_id)
            .outerjoin(SpoolLot, SpoolLot.id == PrintRun.spool_lot_id)
            .where(
                func.lower(Printer.name).like(pattern) | func.lower(SpoolLot.lot_code).like(pattern)
            )
        )
    )
    deliveries = _with_needs(
        session,
        select(Delivery)
        .where(Delivery.id.in_(list(delivery_ids)))
        .order_by(Delivery.delivered_at.desc())
        .limit(SEARCH_LIMIT),
    )
    jobs = list(
        session.scalars(
            select(Job)
            .where(Job.id.in_(list(job_ids)))
            .order_by(Job.created_at.desc())
            .limit(SEARCH_LIMIT)
        )
    )
    return SearchResult(deliveries, jobs)


def recent_deliveries(session: Session, limit: int = 20) -> list[tuple[Delivery, Need]]:
    return _with_needs(
        session, select(Delivery).order_by(Delivery.delivered_at.desc()).limit(limit)
    )
