"""The waste ledger and recycling batches: weighed and estimated entries, one material per
batch (refused by the code and by the database), the trip to the recycler and back."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from catalog.models import SpoolLot
from core.audit import AuditEntry
from core.errors import Conflict, Forbidden, Invalid, NotFound
from core.runtime import Runtime
from quality import recycling, waste
from quality.models import RecyclingStatus, WasteEntry, WasteKind
from scheduler.models import PrintRun
from tests.quality.support import World, make_world, printed_job


@pytest.fixture
def world(runtime: Runtime) -> World:
    with runtime.db.session() as session:
        return make_world(session)


def weigh(runtime: Runtime, world: World, material: str, mass_g: float) -> WasteEntry:
    with runtime.db.session() as session:
        return waste.record_waste(
            session,
            material_key=material,
            mass_g=mass_g,
            kind=WasteKind.SUPPORT_AND_BRIM,
            site_id=world.site.id,
            actor=world.operator,
        )


def test_weighed_waste_is_recorded_once(runtime: Runtime, world: World) -> None:
    with runtime.db.session() as session:
        first = waste.record_waste(
            session,
            material_key="PLA",
            mass_g=85.5,
            kind=WasteKind.PURGE,
            site_id=world.site.id,
            printer_id=world.printer.id,
            actor=world.operator,
            idempotency_key="scale-7-reading-1",
        )
        again = waste.record_waste(
            session,
            material_key="PLA",
            mass_g=85.5,
            kind=WasteKind.PURGE,
            site_id=world.site.id,
            printer_id=world.printer.id,
            actor=world.operator,
            idempotency_key="scale-7-reading-1",
        )
        assert again.id == first.id
        assert not first.estimated
        for kwargs, error in (
            ({"mass_g": 0.0}, Invalid),
            ({"material_key": "WOOD"}, NotFound),
            ({"printer_id": world.other_printer.id}, NotFound),
            ({"actor": world.other_operator}, Forbidden),
            ({"actor": world.auditor}, Forbidden),
        ):
            values = {
                "material_key": "PLA",
                "mass_g": 10.0,
                "kind": WasteKind.SPOOL_END,
                "site_id": world.site.id,
                "actor": world.operator,
                **kwargs,
            }
            with pytest.raises(error):
                waste.record_waste(session, **values)  # type: ignore[arg-type]
        assert session.scalar(select(func.count(WasteEntry.id))) == 1
        listed = waste.find_waste(session, actor=world.other_operator)
        assert listed == []


def test_a_failed_print_is_estimated_once_per_run(runtime: Runtime, world: World) -> None:
    with runtime.db.session() as session:
        job = printed_job(session, world, fail_at_pct=40.0)
        run = session.scalars(select(PrintRun).where(PrintRun.job_id == job.id)).one()
        entry = waste.record_failed_print_waste(
            session, run=run, job=job, progress_pct=40.0, actor=world.admin
        )
        again = waste.record_failed_print_waste(
            session, run=run, job=job, progress_pct=40.0, actor=world.admin
        )
        session.commit()
        assert entry is not None
        assert again is not None
        assert again.id == entry.id
        assert (entry.kind, entry.mass_g, entry.estimated) == (WasteKind.FAILED_PRINT, 40.0, True)
        assert entry.spool_lot_id == world.lot.id


def test_batches_never_mix_materials_and_go_to_the_recycler(runtime: Runtime, world: World) -> None:
    pla = [weigh(runtime, world, "PLA", grams) for grams in (400.0, 250.0)]
    petg = weigh(runtime, world, "PETG", 120.0)
    with runtime.db.session() as session:
        batch = recycling.create_batch(
            session, material_key="PLA", site_id=world.site.id, actor=world.operator
        )
        assert batch.destination == "Cycle 2"
        with pytest.raises(Invalid, match="never mixed"):
            recycling.add_entries(
                session, batch_id=batch.id, entry_ids=[pla[0].id, petg.id], actor=world.operator
            )
        recycling.add_entries(
            session, batch_id=batch.id, entry_ids=[e.id for e in pla], actor=world.operator
        )
        again = recycling.add_entries(
            session, batch_id=batch.id, entry_ids=[pla[0].id], actor=world.operator
        )
        assert again.total_mass_g == 650.0
        with pytest.raises(Conflict, match="not been sent"):
            recycling.record_return(
                session, batch_id=batch.id, returned_mass_g=1.0, actor=world.operator
            )
        sent = recycling.send_batch(
            session, batch_id=batch.id, actor=world.operator, slip_number="BSD-2026-0042"
        )
        assert sent.status == RecyclingStatus.SENT.value
        with pytest.raises(Conflict):
            recycling.add_entries(
                session, batch_id=batch.id, entry_ids=[petg.id], actor=world.operator
            )
        with pytest.raises(Invalid, match="can come back"):
            recycling.record_return(
                session, batch_id=batch.id, returned_mass_g=651.0, actor=world.operator
            )
        back = recycling.record_return(
            session,
            batch_id=batch.id,
            returned_mass_g=520.0,
            actor=world.operator,
            lot_code="C2-PLA-0042",
        )
        lot = session.get(SpoolLot, back.returned_spool_lot_id)
        assert lot is not None
        assert (lot.recycled, lot.received_mass_g, lot.site_id) == (True, 520.0, world.site.id)
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.entity_id == str(batch.id))
        ).all()
        assert actions == [
            "recycling_batch.opened",
            "recycling_batch.filled",
            "recycling_batch.sent",
            "recycling_batch.returned",
        ]
        with pytest.raises(NotFound):
            recycling.get_batch(session, batch.id, actor=world.other_operator)


def test_the_database_itself_refuses_a_mixed_batch(runtime: Runtime, world: World) -> None:
    petg = weigh(runtime, world, "PETG", 120.0)
    with runtime.db.session() as session:
        pla_batch = recycling.create_batch(session, material_key="PLA", actor=world.coordinator)
        petg_batch = recycling.create_batch(session, material_key="PETG", actor=world.coordinator)

    def put(batch_id: object) -> None:
        def raw(value: object) -> object:
            return value.hex if runtime.db.is_sqlite else value  # type: ignore[attr-defined]

        with runtime.db.engine.begin() as connection:
            connection.execute(
                text("UPDATE waste_entries SET recycling_batch_id = :b WHERE id = :e"),
                {"b": raw(batch_id), "e": raw(petg.id)},
            )

    with pytest.raises(IntegrityError):
        put(pla_batch.id)
    put(petg_batch.id)  # the same statement with the right material goes through
    with runtime.db.session() as session:
        entry = session.get(WasteEntry, petg.id)
        assert entry is not None
        assert entry.recycling_batch_id == petg_batch.id
