"""Pause, resume and cancel a job's print from distrifab.

The printer is told first (network, outside any transaction); the records
follow under lock only if the print is still the one distrifab started, so a
cancel racing with the poller is recorded once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from uuid import UUID

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.aio import run_sync
from core.clock import utcnow
from core.db import Database
from core.errors import Conflict
from core.identity import Actor, require_site
from printers.drivers import make_driver
from printers.drivers.base import PrinterDriver
from printers.errors import PrinterBusy
from printers.models import Printer, PrinterEvent, PrinterEventKind
from printers.monitor import active_run
from printers.service import decrement_material, printer_api_key
from quality.service import record_failed_print_waste
from scheduler import jobs as transitions
from scheduler.models import PrintRun, RunOutcome

log = structlog.get_logger()


def _locate(
    db: Database, job_id: UUID, actor: Actor, secret_key: str
) -> tuple[PrintRun, Printer, str]:
    with db.session() as session:
        job = transitions.get_job(session, job_id)
        if job.site_id is None or job.printer_id is None:
            raise Conflict(f"job {job_id} is not on a printer")
        require_site(actor, job.site_id)
        if job.state not in transitions.ON_PRINTER:
            raise Conflict(
                f"job {job_id} is {job.state.value}; only a print in progress can be controlled"
            )
        run = active_run(session, job.printer_id)
        if run is None or run.job_id != job.id:
            raise Conflict(f"job {job_id} has no print in progress on its printer")
        printer = session.get(Printer, job.printer_id)
        assert printer is not None
        return run, printer, printer_api_key(printer, secret_key=secret_key)


def _tell(
    printer: Printer,
    api_key: str,
    timeout_s: float,
    command: Callable[[PrinterDriver], Awaitable[None]],
) -> None:
    async def send() -> None:
        driver = make_driver(printer.driver.value, printer.base_url, api_key, timeout_s=timeout_s)
        try:
            await command(driver)
        finally:
            await driver.aclose()

    run_sync(send())


def _audited_command(
    db: Database,
    *,
    job_id: UUID,
    actor: Actor,
    secret_key: str,
    timeout_s: float,
    action: str,
    command: Callable[[PrinterDriver], Awaitable[None]],
) -> None:
    run, printer, api_key = _locate(db, job_id, actor, secret_key)
    _tell(printer, api_key, timeout_s, command)
    with db.session() as session:
        audit.record(
            session,
            actor=actor,
            action=action,
            entity_type="job",
            entity_id=job_id,
            data={"printer_id": printer.id, "run_id": run.id},
        )
        session.commit()


def pause_job(
    db: Database, *, job_id: UUID, actor: Actor, secret_key: str, timeout_s: float
) -> None:
    """Pause the print (OctoPrint keeps a paused print paused when asked again)."""
    _audited_command(
        db,
        job_id=job_id,
        actor=actor,
        secret_key=secret_key,
        timeout_s=timeout_s,
        action="job.paused",
        command=lambda driver: driver.pause(),
    )


def resume_job(
    db: Database, *, job_id: UUID, actor: Actor, secret_key: str, timeout_s: float
) -> None:
    _audited_command(
        db,
        job_id=job_id,
        actor=actor,
        secret_key=secret_key,
        timeout_s=timeout_s,
        action="job.resumed",
        command=lambda driver: driver.resume(),
    )


def cancel_job(
    db: Database,
    *,
    job_id: UUID,
    actor: Actor,
    secret_key: str,
    timeout_s: float,
    reason: str,
    max_attempts: int,
) -> None:
    """Stop the print; its plastic goes to the waste ledger and the job back to the
    queue while attempts remain. Idempotent: a second cancel finds nothing to stop."""
    run, printer, api_key = _locate(db, job_id, actor, secret_key)
    # PrinterBusy: nothing printing any more (it just ended or was cancelled on the
    # printer); the records below still need the cancellation.
    with contextlib.suppress(PrinterBusy):
        _tell(printer, api_key, timeout_s, lambda d: d.cancel())
    with db.session() as session:
        session.scalar(select(Printer).where(Printer.id == printer.id).with_for_update(of=Printer))
        current = session.get(PrintRun, run.id)
        assert current is not None
        if current.outcome not in (RunOutcome.DISPATCHED, RunOutcome.PRINTING):
            return  # the poller recorded the end first
        job = transitions.get_job(session, job_id, for_update=True)
        current.outcome = RunOutcome.CANCELLED
        current.ended_at = utcnow()
        current.error = reason
        locked_printer = session.get(Printer, printer.id)
        assert locked_printer is not None
        locked_printer.needs_clearing = True
        waste = record_failed_print_waste(
            session, run=current, job=job, progress_pct=current.progress_pct, actor=actor
        )
        if waste is not None:
            decrement_material(session, printer.id, waste.mass_g)
        transitions.cancel(session, job, actor=actor, reason=reason)
        session.add(
            PrinterEvent(
                printer_id=printer.id,
                kind=PrinterEventKind.PRINT_FAILED,
                message=f"cancelled: {reason}",
                job_id=job.id,
            )
        )
        if job.attempt < max_attempts:
            transitions.requeue(
                session, job, actor=actor, reason=f"cancelled: {reason}", new_attempt=True
            )
        session.commit()
    log.info("print_cancelled", job_id=str(job_id), printer_id=str(printer.id), reason=reason)


def job_progress(session: Session, job_ids: list[UUID]) -> dict[UUID, float | None]:
    """Progress of the prints in flight for these jobs, in one query."""
    rows = session.execute(
        select(PrintRun.job_id, PrintRun.progress_pct).where(
            PrintRun.job_id.in_(job_ids),
            PrintRun.outcome.in_([RunOutcome.DISPATCHED, RunOutcome.PRINTING]),
        )
    )
    return {job_id: progress for job_id, progress in rows}
