"""A small production world for quality tests: sites, printers, an approved design with its
slice, a need, users; and plates driven through the real job state machine to printed.

Printers are inserted as rows (registering one through the use case contacts a real
OctoPrint, which these tests do not need: nothing here talks to a printer)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import uuid4

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.models import DesignStatus, DesignVersion, Material, Part, SliceRecord, SpoolLot
from core.clock import utcnow
from core.identity import Actor, Role
from printers.models import DriverKind, Printer, Site
from scheduler import jobs as transitions
from scheduler.models import DeliveryPoint, Job, Need, PrintRun, RunOutcome
from tests.factories import ADMIN, make_delivery_point, make_site, make_user, unique

GRAMS_PER_COPY = 25.0


@dataclass
class World:
    site: Site
    other_site: Site
    printer: Printer
    other_printer: Printer
    point: DeliveryPoint
    part: Part
    version: DesignVersion
    slice: SliceRecord
    need: Need
    lot: SpoolLot
    operator: Actor
    other_operator: Actor
    coordinator: Actor
    auditor: Actor
    admin: Actor


def make_printer_row(session: Session, site: Site, *, lot: SpoolLot | None = None) -> Printer:
    printer = Printer(
        site_id=site.id,
        name=unique("mk3s"),
        driver=DriverKind.SIMULATOR,
        base_url="http://127.0.0.1:9",
        api_key_encrypted="-",
        profile_key="prusa-mk3s",
        bed_x_mm=250,
        bed_y_mm=210,
        max_z_mm=210,
        loaded_spool_lot_id=lot.id if lot else None,
    )
    session.add(printer)
    session.flush()
    return printer


def make_lot(
    session: Session, *, site: Site | None, material_key: str = "PLA", mass_g: float = 1000.0
) -> SpoolLot:
    material = session.query(Material).filter_by(key=material_key).one()
    lot = SpoolLot(
        material_id=material.id,
        lot_code=unique("LOT"),
        supplier="Filament Breizh",
        colour="white",
        received_mass_g=mass_g,
        site_id=site.id if site else None,
    )
    session.add(lot)
    session.flush()
    return lot


def make_world(session: Session, *, copies_per_plate: int = 4) -> World:
    site = make_site(session, name=unique("Fablab UTC"))
    other = make_site(session, name=unique("PME Venette"))
    lot = make_lot(session, site=site)
    point = make_delivery_point(session, name=unique("CH Compiègne-Noyon"))
    part = Part(name=unique("headband"), default_material_key="PLA")
    session.add(part)
    session.flush()
    version = DesignVersion(
        part_id=part.id,
        number=1,
        model_hash="ab" * 32,
        model_file_name="headband.stl",
        licence="CC-BY-4.0",
        status=DesignStatus.APPROVED,
        size_x_mm=180,
        size_y_mm=120,
        size_z_mm=15,
        volume_mm3=20000,
        approved_at=utcnow(),
    )
    session.add(version)
    session.flush()
    record = SliceRecord(
        design_version_id=version.id,
        profile_key="prusa-mk3s",
        material_key="PLA",
        copies=copies_per_plate,
        settings_hash="cd" * 32,
        settings={"layer_height_mm": 0.3, "infill": 0.2},
        gcode_hash="ef" * 32,
        print_time_s=3600,
        filament_mm=1000,
        filament_g=GRAMS_PER_COPY * copies_per_plate,
        cost_eur=Decimal("2.5000"),
        layers=50,
    )
    session.add(record)
    need = Need(
        part_id=part.id,
        design_version_id=version.id,
        material_key="PLA",
        quantity=100,
        due_at=utcnow() + timedelta(days=2),
        delivery_point_id=point.id,
        priority=5,
    )
    session.add(need)
    session.flush()
    users = {
        "operator": make_user(session, Role.OPERATOR, sites=(site,)),
        "other_operator": make_user(session, Role.OPERATOR, sites=(other,)),
        "coordinator": make_user(session, Role.COORDINATOR),
        "auditor": make_user(session, Role.AUDITOR),
        "admin": make_user(session, Role.ADMIN),
    }
    world = World(
        site=site,
        other_site=other,
        printer=make_printer_row(session, site, lot=lot),
        other_printer=make_printer_row(session, other),
        point=point,
        part=part,
        version=version,
        slice=record,
        need=need,
        lot=lot,
        **{name: Actor.of(user) for name, user in users.items()},
    )
    session.commit()
    return world


def printed_job(
    session: Session,
    world: World,
    *,
    copies: int | None = None,
    printer: Printer | None = None,
    need: Need | None = None,
    ended_at: datetime | None = None,
    fail_at_pct: float | None = None,
) -> Job:
    """A plate driven queued -> planned -> accepted -> dispatched -> printing -> printed
    (or failed at ``fail_at_pct``) through scheduler.jobs, with its print run."""
    printer = printer or world.printer
    need = need or world.need
    copies = copies or world.slice.copies
    index = (session.scalar(select(func.count(Job.id)).where(Job.need_id == need.id)) or 0) + 1
    job = Job(
        need_id=need.id,
        index=index,
        design_version_id=need.design_version_id,
        material_key=need.material_key,
        copies=copies,
    )
    session.add(job)
    session.flush()
    run_printed(session, world, job, printer=printer, ended_at=ended_at, fail_at_pct=fail_at_pct)
    session.commit()
    return job


def run_printed(
    session: Session,
    world: World,
    job: Job,
    *,
    printer: Printer | None = None,
    ended_at: datetime | None = None,
    fail_at_pct: float | None = None,
) -> PrintRun:
    """Print the job's current attempt (flush only)."""
    printer = printer or world.printer
    now = (ended_at or utcnow()) - timedelta(hours=1)
    transitions.plan(
        session,
        job,
        printer_id=printer.id,
        site_id=printer.site_id,
        start_at=now,
        end_at=now + timedelta(hours=1),
        delivery_at=now + timedelta(hours=2),
        slice_id=world.slice.id,
        gcode_hash=world.slice.gcode_hash,
        actor=ADMIN,
    )
    transitions.accept(session, job, actor=ADMIN)
    run = PrintRun(
        job_id=job.id,
        attempt=job.attempt,
        printer_id=printer.id,
        site_id=printer.site_id,
        spool_lot_id=printer.loaded_spool_lot_id,
        material_key=job.material_key,
        gcode_hash=world.slice.gcode_hash,
        file_name=f"df-{uuid4().hex[:12]}.gcode",
        filament_g=GRAMS_PER_COPY * job.copies,
        dispatched_at=now,
        started_at=now,
    )
    session.add(run)
    session.flush()
    transitions.dispatch(session, job, actor=ADMIN, run_id=run.id, file_name=run.file_name)
    transitions.start_printing(session, job, actor=ADMIN)
    run.ended_at = now + timedelta(hours=1)
    if fail_at_pct is not None:
        run.outcome = RunOutcome.FAILED
        run.progress_pct = fail_at_pct
        transitions.fail(session, job, actor=ADMIN, reason="spaghetti", progress_pct=fail_at_pct)
    else:
        run.outcome = RunOutcome.DONE
        run.progress_pct = 100.0
        transitions.printed(session, job, actor=ADMIN)
    session.flush()
    return run
