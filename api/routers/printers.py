"""Sites and printers."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, status

from api.deps import CurrentActor, DbSession, RuntimeDep
from api.schemas.common import PROBLEM_RESPONSES
from api.schemas.resources import MaterialLoad, PrinterCreate, PrinterRead, SiteCreate, SiteRead
from catalog.tasks import request_slicing
from core.identity import require_site
from printers import service
from printers.models import Printer
from scheduler.tasks import request_replan

router = APIRouter(tags=["sites and printers"], responses=PROBLEM_RESPONSES)


def printer_read(printer: Printer) -> PrinterRead:
    read = PrinterRead.model_validate(printer)
    read.loaded_material_key = printer.loaded_material.key if printer.loaded_material else None
    return read


@router.get("/sites", response_model=list[SiteRead])
def list_sites(session: DbSession, actor: CurrentActor) -> list[SiteRead]:
    return [SiteRead.model_validate(s) for s in service.find_sites(session)]


@router.post("/sites", response_model=SiteRead, status_code=status.HTTP_201_CREATED)
def create_site(body: SiteCreate, session: DbSession, actor: CurrentActor) -> SiteRead:
    site = service.create_site(session, actor=actor, **body.model_dump())
    return SiteRead.model_validate(site)


@router.get("/sites/{site_id}", response_model=SiteRead)
def get_site(site_id: UUID, session: DbSession, actor: CurrentActor) -> SiteRead:
    return SiteRead.model_validate(service.get_site(session, site_id))


@router.get("/printers", response_model=list[PrinterRead])
def list_printers(
    session: DbSession, actor: CurrentActor, site_id: UUID | None = None
) -> list[PrinterRead]:
    """Printers with their last polled state; an operator sees its own sites only."""
    return [printer_read(p) for p in service.find_printers(session, actor=actor, site_id=site_id)]


@router.post("/printers", response_model=PrinterRead, status_code=status.HTTP_201_CREATED)
def register_printer(
    body: PrinterCreate, session: DbSession, actor: CurrentActor, runtime: RuntimeDep
) -> PrinterRead:
    """Register a printer: its server is checked first (reachable, key valid, profile read)."""
    require_site(actor, body.site_id)
    service.get_site(session, body.site_id)
    info = service.check_printer(
        body.driver, body.base_url, body.api_key, timeout_s=runtime.settings.printer_timeout_s
    )
    printer = service.register_printer(
        session,
        site_id=body.site_id,
        name=body.name,
        driver=body.driver,
        base_url=body.base_url,
        api_key=body.api_key,
        profile_key=body.profile_key,
        actor=actor,
        secret_key=runtime.secret_key,
        info=info,
    )
    request_slicing()
    return printer_read(printer)


@router.get("/printers/{printer_id}", response_model=PrinterRead)
def get_printer(printer_id: UUID, session: DbSession, actor: CurrentActor) -> PrinterRead:
    return printer_read(service.get_printer(session, printer_id, actor=actor))


@router.post("/printers/{printer_id}/material", response_model=PrinterRead)
def load_material(
    printer_id: UUID, body: MaterialLoad, session: DbSession, actor: CurrentActor
) -> PrinterRead:
    """Record the spool an operator loaded; the planner plans material changes from it."""
    printer = service.load_material(
        session, printer_id=printer_id, actor=actor, **body.model_dump()
    )
    request_replan("material_loaded")
    return printer_read(printer)


@router.post("/printers/{printer_id}/cleared", response_model=PrinterRead)
def mark_cleared(printer_id: UUID, session: DbSession, actor: CurrentActor) -> PrinterRead:
    """The finished plate was taken off the bed; the printer may start its next job."""
    printer = service.mark_removed(session, printer_id=printer_id, actor=actor)
    from core.celery_app import enqueue
    from printers.tasks import dispatch_sweep

    enqueue(dispatch_sweep)
    return printer_read(printer)
