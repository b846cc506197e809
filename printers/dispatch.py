"""Sending an accepted job to its printer: upload, select, start — at most once.

The printer is the source of truth for "is it already printing this?": the
file name carries the job id, the attempt and the G-code hash, so a retried or
duplicated dispatch asks the printer first and never starts a second print.
Network I/O happens outside any transaction; the job moves to ``dispatched``
afterwards, under lock, only if it is still ``accepted``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.models import SliceRecord
from core.aio import run_sync
from core.db import Database
from core.errors import Conflict
from core.identity import Actor
from core.storage import BlobStore
from printers.drivers import make_driver
from printers.drivers.base import PrinterState, PrinterStatus
from printers.errors import PrinterBusy
from printers.models import Printer, PrinterEvent, PrinterEventKind
from printers.service import printer_api_key
from scheduler import jobs as transitions
from scheduler.models import Job, JobState, PrintRun, RunOutcome

log = structlog.get_logger()


class DispatchOutcome(StrEnum):
    STARTED = "started"  # this call started the print
    ALREADY_STARTED = "already_started"  # the printer was printing it already: records fixed
    NOT_ACCEPTED = "not_accepted"  # nothing to do: the job moved on (or never was accepted)
    WAITING = "waiting"  # the printer is busy or its bed needs clearing; the sweep retries


def print_file_name(job: Job) -> str:
    assert job.gcode_hash is not None
    return f"df-{job.id.hex[:12]}-a{job.attempt}-{job.gcode_hash[:16]}.gcode"


def parse_print_file_name(name: str | None) -> tuple[str, int] | None:
    """(job id prefix, attempt) for a file distrifab wrote, else None."""
    if not name or not name.startswith("df-") or not name.endswith(".gcode"):
        return None
    parts = name.removesuffix(".gcode").split("-")
    if len(parts) != 4 or not parts[2].startswith("a") or not parts[2][1:].isdigit():
        return None
    return parts[1], int(parts[2][1:])


def _is_ours_running(status: PrinterStatus, file_name: str) -> bool:
    if status.file_name != file_name:
        return False
    if status.state in (PrinterState.PRINTING, PrinterState.PAUSED):
        return True
    # Finished between our start and this check (a short print): still ours.
    return status.state is PrinterState.OPERATIONAL and (status.progress_pct or 0) >= 100


@dataclass(frozen=True, slots=True)
class _Order:
    job_id: UUID
    printer_id: UUID
    driver: str
    base_url: str
    api_key: str
    file_name: str
    gcode: bytes


async def _send(order: _Order, *, timeout_s: float) -> DispatchOutcome:
    driver = make_driver(order.driver, order.base_url, order.api_key, timeout_s=timeout_s)
    try:
        status = await driver.status()
        if _is_ours_running(status, order.file_name):
            return DispatchOutcome.ALREADY_STARTED
        if status.state is not PrinterState.OPERATIONAL:
            raise PrinterBusy(
                f"the printer at {order.base_url} is {status.state_text or status.state.value}; "
                "it must be idle to start a job"
            )
        try:
            if not await driver.has_file(order.file_name):
                await driver.upload(order.file_name, order.gcode)
            await driver.start(order.file_name)
        except PrinterBusy:
            # Another dispatch of the same job may have won the race (OctoPrint then
            # refuses to overwrite or start the file it is printing): ask again.
            if _is_ours_running(await driver.status(), order.file_name):
                return DispatchOutcome.ALREADY_STARTED
            raise
        return DispatchOutcome.STARTED
    finally:
        await driver.aclose()


def dispatch_job(
    db: Database,
    store: BlobStore,
    *,
    job_id: UUID,
    secret_key: str,
    timeout_s: float,
    actor: Actor | None = None,
) -> DispatchOutcome:
    """Start ``job_id`` on its printer if it is accepted and the printer is free.

    Idempotent and safe to run concurrently. Raises a printer error when the
    printer cannot be reached (the task layer retries with backoff)."""
    actor = actor or Actor.system("dispatcher")
    with db.session() as session:
        job = transitions.get_job(session, job_id)
        if job.state is not JobState.ACCEPTED or job.printer_id is None:
            return DispatchOutcome.NOT_ACCEPTED
        printer = session.get(Printer, job.printer_id)
        assert printer is not None
        if not printer_is_free(session, printer_id=printer.id, job_id=job.id):
            return DispatchOutcome.WAITING
        order = _Order(
            job_id=job.id,
            printer_id=printer.id,
            driver=printer.driver.value,
            base_url=printer.base_url,
            api_key=printer_api_key(printer, secret_key=secret_key),
            file_name=print_file_name(job),
            gcode=store.get(job.gcode_hash or ""),
        )
    try:
        outcome = run_sync(_send(order, timeout_s=timeout_s))
    except PrinterBusy as exc:
        log.info("dispatch_waiting", job_id=str(job_id), reason=str(exc))
        return DispatchOutcome.WAITING
    with db.session() as session:
        record_dispatch(session, job_id=job_id, file_name=order.file_name, actor=actor)
        session.commit()
    log.info(
        "job_dispatched", job_id=str(job_id), printer_id=str(order.printer_id), outcome=outcome
    )
    return outcome


def record_dispatch(
    session: Session, *, job_id: UUID, file_name: str, actor: Actor
) -> PrintRun | None:
    """Flush-only: the print is on the printer; create its run and move the job. Idempotent."""
    job = transitions.get_job(session, job_id, for_update=True)
    run = session.scalar(
        select(PrintRun).where(PrintRun.job_id == job.id, PrintRun.attempt == job.attempt)
    )
    if job.state is not JobState.ACCEPTED:
        if run is None:
            # Started on the printer while the job moved elsewhere (cancelled
            # meanwhile): say so loudly; distrifab never touches the print itself.
            log.warning(
                "dispatch_orphan_print", job_id=str(job_id), state=job.state.value, file=file_name
            )
            raise Conflict(
                f"job {job_id} is {job.state.value}; the print {file_name} needs a person"
            )
        return run
    printer = job.printer
    assert printer is not None
    assert job.gcode_hash is not None
    if run is None:
        grams = 0.0
        if job.slice_id is not None:
            record = session.get(SliceRecord, job.slice_id)
            grams = record.filament_g if record else 0.0
        run = PrintRun(
            job_id=job.id,
            attempt=job.attempt,
            printer_id=printer.id,
            site_id=printer.site_id,
            operator_id=job.accepted_by_id,
            spool_lot_id=printer.loaded_spool_lot_id,
            material_key=job.material_key,
            gcode_hash=job.gcode_hash,
            file_name=file_name,
            filament_g=grams,
        )
        session.add(run)
        session.flush()
    transitions.dispatch(session, job, actor=actor, run_id=run.id, file_name=file_name)
    session.add(
        PrinterEvent(
            printer_id=printer.id,
            kind=PrinterEventKind.PRINT_STARTED,
            message=file_name,
            job_id=job.id,
        )
    )
    return run


def printer_is_free(session: Session, *, printer_id: UUID, job_id: UUID) -> bool:
    """Is the printer free for ``job_id`` (no other run on it, bed clear), in one query?
    ``dispatch_job`` checks it before calling the printer, the API before sending the
    task; when not, the printer's next chance sends it (a print that ends or fails, a
    plate cleared: a dispatch sweep each; and the sweep every 15 s). Check after the
    commit that made the job dispatchable, so none of those is missed."""
    busy = (
        select(PrintRun.id)
        .where(
            PrintRun.printer_id == printer_id,
            PrintRun.job_id != job_id,
            PrintRun.outcome.in_([RunOutcome.DISPATCHED, RunOutcome.PRINTING]),
        )
        .exists()
    )
    row = session.execute(
        select(Printer.needs_clearing, busy).where(Printer.id == printer_id)
    ).one_or_none()
    return row is not None and not row[0] and not row[1]


def next_dispatchable(session: Session) -> list[UUID]:
    """Accepted jobs whose printer is free, earliest planned start first, one per printer."""
    busy = set(
        session.scalars(
            select(PrintRun.printer_id).where(
                PrintRun.outcome.in_([RunOutcome.DISPATCHED, RunOutcome.PRINTING])
            )
        )
    )
    # The printers that can take a job, in the same query as the jobs: one session.get
    # per accepted job's printer made this sweep (run after every polling round in which
    # a print ended) 40 % of the worker's time under the load benchmark.
    ready = (
        select(Job.id, Job.printer_id)
        .join(Printer, Printer.id == Job.printer_id)
        .where(
            Job.state == JobState.ACCEPTED,
            Printer.enabled.is_(True),
            Printer.needs_clearing.is_(False),
        )
        .order_by(Job.planned_start_at.is_(None), Job.planned_start_at)
    )
    chosen: dict[UUID, UUID] = {}
    for job_id, printer_id in session.execute(ready):
        if printer_id is None or printer_id in busy or printer_id in chosen:
            continue
        chosen[printer_id] = job_id
    return list(chosen.values())
