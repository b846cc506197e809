"""Recycling batches: ledger waste of one material collected and sent to a recycler (the
network's is Cycle 2), and the recycled filament that comes back.

Materials are never mixed: the code refuses it with a readable message and the
database refuses it too (the waste entry's (batch, material) key points at the
batch's (id, material)).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.models import SpoolLot
from catalog.service import get_material
from core import audit
from core.clock import utcnow
from core.errors import Conflict, Invalid, NotFound
from core.identity import Actor, Role, ensure_can_act, require_role, require_site
from quality.models import RecyclingBatch, RecyclingStatus, WasteEntry

DEFAULT_RECYCLER = "Cycle 2"
MAX_ENTRIES_PER_CALL = 5000


def _may_manage(actor: Actor, site_id: UUID | None) -> None:
    ensure_can_act(actor)
    if site_id is None:
        require_role(actor, Role.COORDINATOR)  # a network-wide batch gathers every site's waste
    else:
        require_site(actor, site_id)


def create_batch(
    session: Session,
    *,
    material_key: str,
    actor: Actor,
    destination: str = DEFAULT_RECYCLER,
    site_id: UUID | None = None,
    carrier: str = "",
    waste_code: str = "07 02 13",
    treatment_code: str = "R3",
    note: str = "",
) -> RecyclingBatch:
    """Open a batch for one material, at one site (its operators) or network-wide
    (coordinators). Raises ``NotFound`` for an unknown material."""
    _may_manage(actor, site_id)
    get_material(session, material_key)
    if not destination.strip():
        raise Invalid("name the recycler the batch goes to")
    batch = RecyclingBatch(
        material_key=material_key,
        destination=destination.strip(),
        site_id=site_id,
        carrier=carrier,
        waste_code=waste_code,
        treatment_code=treatment_code,
        note=note,
        created_by_id=actor.user_id,
    )
    session.add(batch)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="recycling_batch.opened",
        entity_type="recycling_batch",
        entity_id=batch.id,
        data={"material": material_key, "destination": batch.destination, "site_id": site_id},
    )
    session.commit()
    return batch


def _locked(session: Session, batch_id: UUID, actor: Actor) -> RecyclingBatch:
    batch = session.scalar(
        select(RecyclingBatch).where(RecyclingBatch.id == batch_id).with_for_update()
    )
    if batch is None or not visible(batch, actor):
        raise NotFound(f"no recycling batch {batch_id}")
    return batch


def visible(batch: RecyclingBatch, actor: Actor) -> bool:
    return actor.sees_all_sites() or (batch.site_id is not None and batch.site_id in actor.site_ids)


def add_entries(
    session: Session, *, batch_id: UUID, entry_ids: Sequence[UUID], actor: Actor
) -> RecyclingBatch:
    """Put ledger entries into an open batch. Entries already in it are skipped (a retry
    changes nothing). Raises ``Invalid`` for another material (never mixed) or another
    site's waste in a site batch, ``Conflict`` for an entry in another batch or a batch
    already sent."""
    batch = _locked(session, batch_id, actor)
    _may_manage(actor, batch.site_id)
    if not entry_ids or len(entry_ids) > MAX_ENTRIES_PER_CALL:
        raise Invalid(f"give 1 to {MAX_ENTRIES_PER_CALL} waste entries")
    if batch.status != RecyclingStatus.OPEN.value:
        raise Conflict(f"the batch was {batch.status}; open a new one")
    added: list[UUID] = []
    for entry_id in sorted(set(entry_ids)):
        entry = session.scalar(
            select(WasteEntry).where(WasteEntry.id == entry_id).with_for_update()
        )
        if entry is None or not (actor.sees_all_sites() or entry.site_id in actor.site_ids):
            raise NotFound(f"no waste entry {entry_id}")
        if entry.recycling_batch_id == batch.id:
            continue
        if entry.recycling_batch_id is not None:
            raise Conflict(f"waste entry {entry_id} is already in another batch")
        if entry.material_key != batch.material_key:
            raise Invalid(
                f"waste entry {entry_id} is {entry.material_key}; this batch takes "
                f"{batch.material_key} only (materials are never mixed)"
            )
        if batch.site_id is not None and entry.site_id != batch.site_id:
            raise Invalid(f"waste entry {entry_id} was recorded at another site")
        entry.recycling_batch_id = batch.id
        added.append(entry.id)
    if not added:
        return batch
    session.flush()
    batch.total_mass_g = round(
        session.scalar(
            select(func.coalesce(func.sum(WasteEntry.mass_g), 0.0)).where(
                WasteEntry.recycling_batch_id == batch.id
            )
        )
        or 0.0,
        2,
    )
    audit.record(
        session,
        actor=actor,
        action="recycling_batch.filled",
        entity_type="recycling_batch",
        entity_id=batch.id,
        data={"entries": sorted(str(e) for e in added), "total_mass_g": batch.total_mass_g},
    )
    session.commit()
    return batch


def send_batch(
    session: Session,
    *,
    batch_id: UUID,
    actor: Actor,
    sent_at: datetime | None = None,
    carrier: str | None = None,
    slip_number: str = "",
) -> RecyclingBatch:
    """The batch leaves for the recycler; its content is frozen. Sending again changes
    nothing."""
    batch = _locked(session, batch_id, actor)
    _may_manage(actor, batch.site_id)
    if batch.status != RecyclingStatus.OPEN.value:
        if batch.status == RecyclingStatus.SENT.value:
            return batch
        raise Conflict(f"the batch was already {batch.status}")
    if batch.total_mass_g <= 0:
        raise Conflict("an empty batch is not sent; add waste entries first")
    moment = sent_at or utcnow()
    if moment > utcnow():
        raise Invalid("a batch cannot be sent in the future")
    batch.status = RecyclingStatus.SENT.value
    batch.sent_at = moment
    if carrier is not None:
        batch.carrier = carrier
    batch.slip_number = slip_number
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="recycling_batch.sent",
        entity_type="recycling_batch",
        entity_id=batch.id,
        data={
            "material": batch.material_key,
            "total_mass_g": batch.total_mass_g,
            "destination": batch.destination,
            "carrier": batch.carrier,
            "slip_number": slip_number,
            "sent_at": moment,
        },
    )
    session.commit()
    return batch


def record_return(
    session: Session,
    *,
    batch_id: UUID,
    returned_mass_g: float,
    actor: Actor,
    returned_at: datetime | None = None,
    lot_code: str | None = None,
) -> RecyclingBatch:
    """Recycled filament came back from the recycler. With ``lot_code`` it enters the
    stock as a recycled spool lot (traced into later prints like any lot). Raises
    ``Invalid`` when more comes back than was sent (recycling makes no plastic)."""
    batch = _locked(session, batch_id, actor)
    _may_manage(actor, batch.site_id)
    if batch.status == RecyclingStatus.RETURNED.value:
        if batch.returned_mass_g == returned_mass_g:
            return batch
        raise Conflict("the return of this batch was already recorded")
    if batch.status != RecyclingStatus.SENT.value:
        raise Conflict("the batch has not been sent yet")
    if not 0 <= returned_mass_g <= batch.total_mass_g:
        raise Invalid(
            f"between 0 and the {batch.total_mass_g:.0f} g sent can come back, "
            f"not {returned_mass_g:.0f} g"
        )
    moment = returned_at or utcnow()
    if batch.sent_at is not None and moment < batch.sent_at:
        raise Invalid("the filament cannot come back before the batch left")
    if moment > utcnow():
        raise Invalid("a return cannot be dated in the future")
    batch.status = RecyclingStatus.RETURNED.value
    batch.returned_mass_g = returned_mass_g
    batch.returned_at = moment
    if lot_code and returned_mass_g > 0:
        batch.returned_spool_lot_id = _recycled_lot(session, batch, lot_code, actor).id
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="recycling_batch.returned",
        entity_type="recycling_batch",
        entity_id=batch.id,
        data={
            "returned_mass_g": returned_mass_g,
            "returned_at": moment,
            "spool_lot_id": batch.returned_spool_lot_id,
        },
    )
    session.commit()
    return batch


def _recycled_lot(session: Session, batch: RecyclingBatch, lot_code: str, actor: Actor) -> SpoolLot:
    material = get_material(session, batch.material_key)
    taken = session.scalar(
        select(SpoolLot.id).where(
            SpoolLot.material_id == material.id, SpoolLot.lot_code == lot_code
        )
    )
    if taken is not None:
        raise Conflict(f"the lot {lot_code} of {batch.material_key} is already recorded")
    assert batch.returned_mass_g is not None
    assert batch.returned_at is not None
    lot = SpoolLot(
        material_id=material.id,
        lot_code=lot_code,
        supplier=batch.destination,
        received_mass_g=batch.returned_mass_g,
        received_at=batch.returned_at,
        site_id=batch.site_id,
        recycled=True,
    )
    session.add(lot)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="spool_lot.received",
        entity_type="spool_lot",
        entity_id=lot.id,
        data={
            "material": batch.material_key,
            "lot_code": lot_code,
            "mass_g": batch.returned_mass_g,
            "recycled_from": batch.id,
        },
    )
    return lot


def get_batch(session: Session, batch_id: UUID, *, actor: Actor) -> RecyclingBatch:
    batch = session.get(RecyclingBatch, batch_id)
    if batch is None or not visible(batch, actor):
        raise NotFound(f"no recycling batch {batch_id}")
    return batch


def find_batches(
    session: Session,
    *,
    actor: Actor,
    material_key: str | None = None,
    status: RecyclingStatus | None = None,
) -> list[RecyclingBatch]:
    query = select(RecyclingBatch).order_by(RecyclingBatch.created_at.desc())
    if material_key:
        query = query.where(RecyclingBatch.material_key == material_key)
    if status is not None:
        query = query.where(RecyclingBatch.status == status.value)
    if not actor.sees_all_sites():
        query = query.where(RecyclingBatch.site_id.in_(list(actor.site_ids)))
    return list(session.scalars(query.limit(1000)))


def batch_entries(session: Session, batch_id: UUID) -> list[WasteEntry]:
    return list(
        session.scalars(
            select(WasteEntry)
            .where(WasteEntry.recycling_batch_id == batch_id)
            .order_by(WasteEntry.recorded_at)
        )
    )
