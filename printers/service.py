"""Sites, printers and the operator's side of a job: accept, refuse, clear the bed, load a spool."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from catalog import service as catalog
from catalog.models import SpoolLot
from core import audit
from core.aio import run_sync
from core.clock import utcnow
from core.crypto import decrypt_secret, encrypt_secret
from core.errors import Conflict, Invalid, NotFound
from core.identity import Actor, Role, can_see_site, require_role, require_site
from printers.drivers import make_driver
from printers.drivers.base import PrinterInfo
from printers.hours import parse_hours
from printers.models import (
    DriverKind,
    Printer,
    PrinterEvent,
    PrinterEventKind,
    PrinterStatusValue,
    Site,
    SiteKind,
)
from scheduler import jobs as transitions
from scheduler.models import Job, JobRefusal, JobState, PrintRun, RunOutcome


def create_site(
    session: Session,
    *,
    name: str,
    lat: float,
    lon: float,
    actor: Actor,
    kind: SiteKind = SiteKind.FABLAB,
    address: str = "",
    opening_hours: dict[str, Any] | None = None,
    timezone: str = "Europe/Paris",
    contact: str = "",
) -> Site:
    require_role(actor, Role.ADMIN)
    name = name.strip()
    if not name:
        raise Invalid("a site needs a name")
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise Invalid("latitude goes from -90 to 90 and longitude from -180 to 180")
    parse_hours(opening_hours or {})
    if session.scalar(select(Site.id).where(Site.name == name)) is not None:
        raise Conflict(f"a site named {name!r} exists already")
    site = Site(
        name=name,
        kind=kind,
        lat=lat,
        lon=lon,
        address=address,
        opening_hours=opening_hours or {},
        timezone=timezone,
        contact=contact,
    )
    session.add(site)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="site.created",
        entity_type="site",
        entity_id=site.id,
        data={"name": name, "lat": lat, "lon": lon},
    )
    session.commit()
    return site


def find_sites(session: Session) -> list[Site]:
    return list(session.scalars(select(Site).order_by(Site.name)))


def get_site(session: Session, site_id: UUID) -> Site:
    site = session.get(Site, site_id)
    if site is None:
        raise NotFound(f"no site {site_id}")
    return site


def check_printer(
    driver_kind: DriverKind, base_url: str, api_key: str, *, timeout_s: float
) -> PrinterInfo:
    """Reach the printer's server and read its profile; raises a printer error saying what failed."""

    async def probe() -> PrinterInfo:
        driver = make_driver(driver_kind.value, base_url, api_key, timeout_s=timeout_s)
        try:
            return await driver.check()
        finally:
            await driver.aclose()

    return run_sync(probe())


def register_printer(
    session: Session,
    *,
    site_id: UUID,
    name: str,
    driver: DriverKind,
    base_url: str,
    api_key: str,
    profile_key: str,
    actor: Actor,
    secret_key: str,
    info: PrinterInfo | None = None,
) -> Printer:
    """Record a printer whose server was checked (``info``); its API key is stored encrypted."""
    require_site(actor, site_id)
    site = get_site(session, site_id)
    name = name.strip()
    if not name:
        raise Invalid("a printer needs a name")
    if not api_key.strip():
        raise Invalid("the printer's API key is empty")
    profile = catalog.get_profile(session, profile_key)
    duplicate = session.scalar(
        select(Printer.id).where(Printer.site_id == site.id, Printer.name == name)
    )
    if duplicate is not None:
        raise Conflict(f"{site.name} already has a printer named {name!r}")
    printer = Printer(
        site_id=site.id,
        name=name,
        driver=driver,
        base_url=base_url.rstrip("/"),
        api_key_encrypted=encrypt_secret(api_key, secret_key=secret_key),
        profile_key=profile.key,
        bed_x_mm=profile.bed_x_mm,
        bed_y_mm=profile.bed_y_mm,
        max_z_mm=profile.max_z_mm,
        nozzle_mm=profile.nozzle_mm,
    )
    session.add(printer)
    session.flush()
    session.add(
        PrinterEvent(
            printer_id=printer.id,
            kind=PrinterEventKind.REGISTERED,
            message=f"OctoPrint {info.server_version}" if info else "",
        )
    )
    audit.record(
        session,
        actor=actor,
        action="printer.registered",
        entity_type="printer",
        entity_id=printer.id,
        data={
            "site_id": site.id,
            "name": name,
            "driver": driver,
            "profile": profile.key,
            "base_url": printer.base_url,
        },
    )
    session.commit()
    return printer


def printer_api_key(printer: Printer, *, secret_key: str) -> str:
    return decrypt_secret(printer.api_key_encrypted, secret_key=secret_key)


def find_printers(session: Session, *, actor: Actor, site_id: UUID | None = None) -> list[Printer]:
    query = select(Printer).order_by(Printer.name)
    if site_id is not None:
        if not can_see_site(actor, site_id):
            raise NotFound(f"no site {site_id}")
        query = query.where(Printer.site_id == site_id)
    elif not actor.sees_all_sites():
        query = query.where(Printer.site_id.in_(list(actor.site_ids)))
    return list(session.scalars(query))


def get_printer(session: Session, printer_id: UUID, *, actor: Actor | None = None) -> Printer:
    printer = session.get(Printer, printer_id)
    if printer is None or (actor is not None and not can_see_site(actor, printer.site_id)):
        raise NotFound(f"no printer {printer_id}")
    return printer


def load_material(
    session: Session,
    *,
    printer_id: UUID,
    material_key: str,
    actor: Actor,
    remaining_g: float,
    colour: str = "",
    spool_lot_id: UUID | None = None,
) -> Printer:
    printer = get_printer(session, printer_id, actor=actor)
    require_site(actor, printer.site_id)
    if remaining_g < 0:
        raise Invalid("the remaining mass cannot be negative")
    material = catalog.get_material(session, material_key)
    if spool_lot_id is not None:
        lot = session.get(SpoolLot, spool_lot_id)
        if lot is None:
            raise NotFound(f"no spool lot {spool_lot_id}")
        if lot.material_id != material.id:
            raise Invalid(f"spool lot {lot.lot_code} is {lot.material.key}, not {material.key}")
    printer.loaded_material_id = material.id
    printer.loaded_spool_lot_id = spool_lot_id
    printer.loaded_colour = colour
    printer.material_remaining_g = remaining_g
    session.add(
        PrinterEvent(
            printer_id=printer.id,
            kind=PrinterEventKind.MATERIAL_LOADED,
            message=f"{material.key} {colour} {remaining_g:.0f} g".strip(),
        )
    )
    audit.record(
        session,
        actor=actor,
        action="printer.material_loaded",
        entity_type="printer",
        entity_id=printer.id,
        data={
            "material": material.key,
            "colour": colour,
            "remaining_g": remaining_g,
            "spool_lot_id": spool_lot_id,
        },
    )
    session.commit()
    return printer


def accept_job(session: Session, *, job_id: UUID, actor: Actor) -> Job:
    """The operator of the planned site takes the job. Idempotent."""
    job = transitions.get_job(session, job_id, for_update=True)
    if job.site_id is None:
        raise Conflict("this job is not planned on any site yet")
    require_site(actor, job.site_id)
    transitions.accept(session, job, actor=actor)
    session.commit()
    return job


def refuse_job(session: Session, *, job_id: UUID, actor: Actor, reason: str) -> Job:
    """The operator declines: the job goes back to the queue, never again to this printer."""
    job = transitions.get_job(session, job_id, for_update=True)
    if job.state is JobState.QUEUED:
        already = session.scalar(
            select(JobRefusal.id).where(
                JobRefusal.job_id == job.id, JobRefusal.by_id == actor.user_id
            )
        )
        if already is not None:
            return job  # a repeated refusal
    if job.site_id is None:
        raise Conflict("this job is not planned on any site")
    require_site(actor, job.site_id)
    if not reason.strip():
        raise Invalid("say why the job is refused, so the coordinator can act on it")
    printer_id = job.printer_id
    transitions.refuse(session, job, actor=actor, reason=reason)
    assert printer_id is not None  # a planned job has a printer
    session.add(
        JobRefusal(job_id=job.id, printer_id=printer_id, reason=reason, by_id=actor.user_id)
    )
    transitions.requeue(session, job, actor=actor, reason="refused", new_attempt=False)
    session.commit()
    return job


def mark_removed(session: Session, *, printer_id: UUID, actor: Actor) -> Printer:
    """The finished plate is off the bed: the printer may take the next job. Idempotent."""
    printer = get_printer(session, printer_id, actor=actor)
    require_site(actor, printer.site_id)
    if not printer.needs_clearing:
        return printer
    run = session.scalar(
        select(PrintRun)
        .where(
            PrintRun.printer_id == printer.id,
            PrintRun.outcome.in_([RunOutcome.DONE, RunOutcome.FAILED, RunOutcome.CANCELLED]),
            PrintRun.removed_at.is_(None),
        )
        .order_by(PrintRun.dispatched_at.desc())
        .limit(1)
    )
    if run is not None:
        run.removed_at = utcnow()
        run.removed_by_id = actor.user_id
    printer.needs_clearing = False
    session.add(PrinterEvent(printer_id=printer.id, kind=PrinterEventKind.CLEARED))
    audit.record(
        session,
        actor=actor,
        action="printer.cleared",
        entity_type="printer",
        entity_id=printer.id,
        data={"run_id": run.id if run else None},
    )
    session.commit()
    return printer


def decrement_material(session: Session, printer_id: UUID, mass_g: float) -> None:
    """Relative update, so that two finished prints never overwrite each other's count."""
    session.execute(
        update(Printer)
        .where(Printer.id == printer_id, Printer.material_remaining_g.is_not(None))
        .values(material_remaining_g=Printer.material_remaining_g - mass_g)
    )


def set_enabled(session: Session, *, printer_id: UUID, enabled: bool, actor: Actor) -> Printer:
    printer = get_printer(session, printer_id, actor=actor)
    require_site(actor, printer.site_id)
    if printer.enabled == enabled:
        return printer
    printer.enabled = enabled
    if not enabled:
        printer.status = PrinterStatusValue.UNKNOWN
    audit.record(
        session,
        actor=actor,
        action="printer.enabled" if enabled else "printer.disabled",
        entity_type="printer",
        entity_id=printer.id,
    )
    session.commit()
    return printer
