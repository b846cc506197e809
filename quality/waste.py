"""The waste ledger: plastic that left a spool and did not become a delivered part.

Failed prints and rejected lots are entered automatically (estimated from the
progress reached and the sliced grams); supports, brims, purge and spool ends are
weighed and entered by the site's operators.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.models import SliceRecord
from catalog.service import get_material
from core import audit
from core.errors import Conflict, Invalid, NotFound
from core.identity import Actor, ensure_can_act, require_site
from printers.models import Printer
from quality.models import WasteEntry, WasteKind
from scheduler.models import Job, PrintRun

MAX_WEIGHED_G = 1_000_000.0  # a tonne: more than any site's week of printing


def record_waste(
    session: Session,
    *,
    material_key: str,
    mass_g: float,
    kind: WasteKind,
    site_id: UUID,
    actor: Actor,
    printer_id: UUID | None = None,
    job_id: UUID | None = None,
    note: str = "",
    idempotency_key: str | None = None,
) -> WasteEntry:
    """Weighed waste entered by an operator of the site (grams). A retried submission with
    the same ``idempotency_key`` returns the first entry. Raises ``Forbidden``,
    ``NotFound`` (material, printer or job) or ``Invalid``."""
    ensure_can_act(actor)
    require_site(actor, site_id)
    if idempotency_key:
        existing = session.scalar(
            select(WasteEntry).where(WasteEntry.idempotency_key == idempotency_key)
        )
        if existing is not None:
            if (existing.material_key, existing.mass_g, existing.kind) != (
                material_key,
                mass_g,
                kind,
            ):
                raise Conflict("this idempotency key was used for a different waste entry")
            return existing
    if not 0 < mass_g < MAX_WEIGHED_G:
        raise Invalid("the weighed mass must be positive (grams)")
    get_material(session, material_key)
    if printer_id is not None:
        printer = session.get(Printer, printer_id)
        if printer is None or printer.site_id != site_id:
            raise NotFound(f"no printer {printer_id} at this site")
    if job_id is not None:
        job = session.get(Job, job_id)
        ran_here = session.scalar(
            select(PrintRun.id).where(PrintRun.job_id == job_id, PrintRun.site_id == site_id)
        )
        if job is None or (job.site_id != site_id and ran_here is None):
            raise NotFound(f"no job {job_id} at this site")
        if job.material_key != material_key:
            raise Invalid(f"job {job_id} prints {job.material_key}, not {material_key}")
    entry = WasteEntry(
        material_key=material_key,
        mass_g=mass_g,
        kind=kind,
        estimated=False,
        site_id=site_id,
        printer_id=printer_id,
        job_id=job_id,
        recorded_by_id=actor.user_id,
        note=note,
        idempotency_key=idempotency_key,
    )
    session.add(entry)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="waste.recorded",
        entity_type="waste_entry",
        entity_id=entry.id,
        data=waste_facts(entry),
    )
    session.commit()
    return entry


def waste_facts(entry: WasteEntry) -> dict[str, object]:
    """What the audit trail keeps of an entry, and what the integrity check compares."""
    return {
        "material": entry.material_key,
        "mass_g": entry.mass_g,
        "kind": entry.kind,
        "estimated": entry.estimated,
        "site_id": entry.site_id,
        "job_id": entry.job_id,
        "run_id": entry.print_run_id,
    }


def record_failed_print_waste(
    session: Session, *, run: PrintRun, job: Job, progress_pct: float | None, actor: Actor
) -> WasteEntry | None:
    """Flush-only: the plastic a failed print left on the bed, estimated from the
    progress reached and the sliced grams. One entry per run (idempotent)."""
    existing = session.scalar(select(WasteEntry).where(WasteEntry.print_run_id == run.id))
    if existing is not None:
        return existing
    fraction = max(0.0, min(1.0, (progress_pct or 0.0) / 100.0))
    mass_g = run.filament_g * fraction
    if mass_g <= 0:
        return None
    entry = WasteEntry(
        material_key=run.material_key,
        mass_g=round(mass_g, 2),
        kind=WasteKind.FAILED_PRINT,
        estimated=True,
        job_id=job.id,
        print_run_id=run.id,
        printer_id=run.printer_id,
        site_id=run.site_id,
        spool_lot_id=run.spool_lot_id,
        note=f"estimated from {fraction * 100:.0f} % of {run.filament_g:.1f} g",
    )
    session.add(entry)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="waste.estimated",
        entity_type="waste_entry",
        entity_id=entry.id,
        data=waste_facts(entry),
    )
    return entry


def record_rejected_waste(
    session: Session, *, job: Job, run: PrintRun | None, inspection_id: UUID, actor: Actor
) -> WasteEntry | None:
    """Flush-only: a rejected plate goes to the ledger whole, at its sliced grams. One entry
    per plate and inspection (idempotent); None when nothing says what it weighed."""
    existing = session.scalar(
        select(WasteEntry).where(
            WasteEntry.inspection_id == inspection_id, WasteEntry.job_id == job.id
        )
    )
    if existing is not None:
        return existing
    grams = (
        run.filament_g if run is not None and run.filament_g > 0 else _sliced_grams(session, job)
    )
    if not grams:
        return None
    entry = WasteEntry(
        material_key=run.material_key if run else job.material_key,
        mass_g=round(grams, 2),
        kind=WasteKind.REJECTED_PART,
        estimated=True,
        job_id=job.id,
        print_run_id=run.id if run else None,
        inspection_id=inspection_id,
        printer_id=run.printer_id if run else job.printer_id,
        site_id=run.site_id if run else job.site_id,
        spool_lot_id=run.spool_lot_id if run else None,
        recorded_by_id=actor.user_id,
        note=f"{job.copies} parts of a lot rejected at inspection {inspection_id}",
    )
    session.add(entry)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="waste.estimated",
        entity_type="waste_entry",
        entity_id=entry.id,
        data=waste_facts(entry),
    )
    return entry


def _sliced_grams(session: Session, job: Job) -> float:
    if job.slice_id is None:
        return 0.0
    record = session.get(SliceRecord, job.slice_id)
    return record.filament_g if record else 0.0


def find_waste(
    session: Session,
    *,
    actor: Actor,
    site_id: UUID | None = None,
    material_key: str | None = None,
    kind: WasteKind | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    unbatched: bool | None = None,
    limit: int = 1000,
) -> list[WasteEntry]:
    """Ledger entries, newest first; an operator sees only its own sites'."""
    query = select(WasteEntry).order_by(WasteEntry.recorded_at.desc(), WasteEntry.id)
    if site_id is not None:
        query = query.where(WasteEntry.site_id == site_id)
    if not actor.sees_all_sites():
        query = query.where(WasteEntry.site_id.in_(list(actor.site_ids)))
    if material_key:
        query = query.where(WasteEntry.material_key == material_key)
    if kind is not None:
        query = query.where(WasteEntry.kind == kind)
    if since is not None:
        query = query.where(WasteEntry.recorded_at >= since)
    if until is not None:
        query = query.where(WasteEntry.recorded_at < until)
    if unbatched is True:
        query = query.where(WasteEntry.recycling_batch_id.is_(None))
    elif unbatched is False:
        query = query.where(WasteEntry.recycling_batch_id.is_not(None))
    return list(session.scalars(query.limit(limit)))


def get_waste_entry(session: Session, entry_id: UUID, *, actor: Actor) -> WasteEntry:
    entry = session.get(WasteEntry, entry_id)
    if entry is None or (
        not actor.sees_all_sites()
        and (entry.site_id is None or entry.site_id not in actor.site_ids)
    ):
        raise NotFound(f"no waste entry {entry_id}")
    return entry
