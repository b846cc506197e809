"""What the poller learned, written back: printer state, job progress, finished and failed prints.

Also the reconciliation after a restart: the printer is the truth, distrifab
fixes its own records (never the print) and says so in the audit trail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.clock import utcnow
from core.identity import Actor
from printers.dispatch import parse_print_file_name, record_dispatch
from printers.drivers.base import PrinterState, PrinterStatus
from printers.errors import PrinterError
from printers.models import Printer, PrinterEvent, PrinterEventKind, PrinterStatusValue
from printers.polling import MISSES, classify
from printers.service import decrement_material
from quality.service import record_failed_print_waste
from scheduler import jobs as transitions
from scheduler.models import Job, JobState, PrintRun, RunOutcome

log = structlog.get_logger()

# Right after a start, OctoPrint may still show the file selected but idle for
# a moment (the "Starting" transient): do not call that a vanished print.
START_GRACE = timedelta(seconds=15)

_STATE_MAP = {
    PrinterState.OFFLINE: PrinterStatusValue.OFFLINE,
    PrinterState.OPERATIONAL: PrinterStatusValue.OPERATIONAL,
    PrinterState.PRINTING: PrinterStatusValue.PRINTING,
    PrinterState.PAUSED: PrinterStatusValue.PAUSED,
    PrinterState.CANCELLING: PrinterStatusValue.CANCELLING,
    PrinterState.ERROR: PrinterStatusValue.ERROR,
}


@dataclass(frozen=True, slots=True)
class PollPolicy:
    offline_after_misses: int
    max_attempts: int


@dataclass
class PollEffects:
    """What a poll changed, so the caller knows whether to re-plan or dispatch."""

    replan: bool = False
    dispatch: bool = False
    changed: int = 0  # printers whose record changed beyond progress


def active_run(session: Session, printer_id: UUID) -> PrintRun | None:
    return session.scalar(
        select(PrintRun)
        .where(
            PrintRun.printer_id == printer_id,
            PrintRun.outcome.in_([RunOutcome.DISPATCHED, RunOutcome.PRINTING]),
        )
        .order_by(PrintRun.dispatched_at.desc())
        .limit(1)
    )


def record_poll(
    session: Session,
    *,
    printer_id: UUID,
    result: PrinterStatus | PrinterError,
    policy: PollPolicy,
    now: datetime | None = None,
    dispatching: Callable[[str], bool] | None = None,
) -> PollEffects:
    """Apply one poll result to one printer (flush only; the caller commits).

    ``dispatching(printer_id)``: is a dispatch to this printer under way? Then a print
    of ours without a run is that dispatch's, and it records it itself."""
    now = now or utcnow()
    actor = Actor.system("poller")
    effects = PollEffects()
    printer = session.scalar(
        select(Printer).where(Printer.id == printer_id).with_for_update(of=Printer)
    )
    if printer is None:
        return effects
    printer.last_polled_at = now
    run = active_run(session, printer.id)

    if isinstance(result, PrinterError):
        _record_no_answer(
            session, printer, run, result, policy=policy, actor=actor, effects=effects
        )
        return effects

    status = result
    came_back = (
        printer.status is PrinterStatusValue.OFFLINE
        or printer.missed_polls >= policy.offline_after_misses
    )
    printer.missed_polls = 0
    printer.last_seen_at = now
    printer.status = _STATE_MAP[status.state]
    printer.status_text = status.state_text
    printer.status_error = status.error
    printer.progress_pct = status.progress_pct
    printer.current_file = status.file_name
    if status.temperatures_c:  # read every few rounds only; keep the last ones meanwhile
        printer.temperatures = {k: list(v) for k, v in status.temperatures_c.items()}
    if came_back:
        session.add(PrinterEvent(printer_id=printer.id, kind=PrinterEventKind.ONLINE))
        log.info("printer_online", printer_id=str(printer.id))
        effects.replan = True
    if status.state is PrinterState.ERROR and status.error:
        session.add(
            PrinterEvent(printer_id=printer.id, kind=PrinterEventKind.ERROR, message=status.error)
        )

    if run is None:
        run = _reconcile_unknown_print(
            session, printer, status, actor=actor, dispatching=dispatching
        )
        if run is None:
            return effects

    ours = status.file_name == run.file_name
    if ours and status.state in (
        PrinterState.PRINTING,
        PrinterState.PAUSED,
        PrinterState.CANCELLING,
    ):
        if status.state is PrinterState.CANCELLING:
            return effects
        run.progress_pct = status.progress_pct
        if run.outcome is RunOutcome.DISPATCHED:
            run.outcome = RunOutcome.PRINTING
            run.started_at = run.started_at or now
            job = transitions.get_job(session, run.job_id, for_update=True)
            transitions.start_printing(session, job, actor=actor)
        return effects
    if ours and status.state is PrinterState.OPERATIONAL and (status.progress_pct or 0) >= 100:
        _finish_run(session, printer, run, actor=actor, now=now)
        effects.dispatch = True
        return effects
    just_sent = now - run.dispatched_at < START_GRACE
    if status.state is PrinterState.OPERATIONAL and just_sent:
        if ours:
            return effects  # selected, not yet heating: give the start its moment
        if run.outcome is RunOutcome.DISPATCHED and not status.file_name:
            # An idle answer right after the start: a poll that was in flight while the
            # dispatch ran says nothing about this print yet. Failing here would throw away
            # a print that is starting; the next polls tell.
            return effects
    # Anything else means our print is gone: cancelled on the printer, an error,
    # the connection to the machine dropped, or someone started another file.
    reason = _failure_reason(status, ours)
    _fail_run(
        session,
        printer,
        run,
        reason=reason,
        policy=policy,
        actor=actor,
        progress=status.progress_pct,
    )
    effects.replan = True
    effects.dispatch = True
    return effects


def _record_no_answer(
    session: Session,
    printer: Printer,
    run: PrintRun | None,
    error: PrinterError,
    *,
    policy: PollPolicy,
    actor: Actor,
    effects: PollEffects,
) -> None:
    """A poll without a usable status. After ``offline_after_misses`` in a row the
    printer is taken out of planning and its print in flight is failed: a printer
    that does not answer (down, timing out, failing) goes offline; one that answers
    but refuses us (wrong key, 409 on everything, not an OctoPrint) is in error and
    needs a person. Either way nobody can tell what the print is doing."""
    printer.missed_polls += 1
    printer.status_error = str(error)
    refused = classify(error) not in MISSES
    if printer.missed_polls < policy.offline_after_misses:
        return
    target = PrinterStatusValue.ERROR if refused else PrinterStatusValue.OFFLINE
    if printer.status is not target:
        printer.status = target
        printer.status_text = "refused" if refused else "unreachable"
        kind = PrinterEventKind.ERROR if refused else PrinterEventKind.OFFLINE
        session.add(PrinterEvent(printer_id=printer.id, kind=kind, message=str(error)))
        log.warning(
            "printer_unusable", printer_id=str(printer.id), status=target.value, reason=str(error)
        )
        effects.replan = True
    if run is not None:
        _fail_run(
            session,
            printer,
            run,
            reason=f"the printer stopped reporting: {error}",
            policy=policy,
            actor=actor,
        )
        effects.dispatch = True


def _failure_reason(status: PrinterStatus, ours: bool) -> str:
    if status.state is PrinterState.ERROR:
        return f"printer error: {status.error or status.state_text}"
    if status.state is PrinterState.OFFLINE:
        return "the printer lost its connection to the machine during the print"
    if ours:
        return "the print was cancelled on the printer"
    if status.state is PrinterState.PRINTING:
        return f"the printer is printing another file ({status.file_name})"
    return "the print is no longer on the printer"


def _finish_run(
    session: Session, printer: Printer, run: PrintRun, *, actor: Actor, now: datetime
) -> None:
    run.outcome = RunOutcome.DONE
    run.progress_pct = 100.0
    run.started_at = run.started_at or run.dispatched_at
    run.ended_at = now
    printer.needs_clearing = True
    decrement_material(session, printer.id, run.filament_g)
    job = transitions.get_job(session, run.job_id, for_update=True)
    transitions.printed(session, job, actor=actor)
    session.add(
        PrinterEvent(
            printer_id=printer.id,
            kind=PrinterEventKind.PRINT_DONE,
            message=run.file_name,
            job_id=job.id,
        )
    )
    log.info("print_done", job_id=str(job.id), printer_id=str(printer.id))


def _fail_run(
    session: Session,
    printer: Printer,
    run: PrintRun,
    *,
    reason: str,
    policy: PollPolicy,
    actor: Actor,
    progress: float | None = None,
) -> None:
    """The print failed: record it, its waste and the material used, then requeue while attempts remain."""
    progress = progress if progress is not None else run.progress_pct
    run.outcome = RunOutcome.FAILED
    run.error = reason
    run.ended_at = utcnow()
    if progress is not None:
        run.progress_pct = progress
    printer.needs_clearing = True
    job = transitions.get_job(session, run.job_id, for_update=True)
    waste = record_failed_print_waste(
        session, run=run, job=job, progress_pct=run.progress_pct, actor=actor
    )
    if waste is not None:
        decrement_material(session, printer.id, waste.mass_g)
    transitions.fail(session, job, actor=actor, reason=reason, progress_pct=run.progress_pct)
    session.add(
        PrinterEvent(
            printer_id=printer.id, kind=PrinterEventKind.PRINT_FAILED, message=reason, job_id=job.id
        )
    )
    log.warning("print_failed", job_id=str(job.id), printer_id=str(printer.id), reason=reason)
    if job.attempt < policy.max_attempts:
        transitions.requeue(session, job, actor=actor, reason=reason, new_attempt=True)


def _reconcile_unknown_print(
    session: Session,
    printer: Printer,
    status: PrinterStatus,
    *,
    actor: Actor,
    dispatching: Callable[[str], bool] | None,
) -> PrintRun | None:
    """A distrifab print we have no run for: a dispatch that started the print
    but crashed before recording it. Record it now (the print is untouched)."""
    if status.state not in (PrinterState.PRINTING, PrinterState.PAUSED) and not (
        status.state is PrinterState.OPERATIONAL and (status.progress_pct or 0) >= 100
    ):
        return None
    parsed = parse_print_file_name(status.file_name)
    if parsed is None:
        return None
    prefix, attempt = parsed
    job = session.scalar(
        select(Job).where(
            Job.printer_id == printer.id,
            Job.state == JobState.ACCEPTED,
            Job.attempt == attempt,
        )
    )
    if job is None or job.id.hex[:12] != prefix:
        return None
    if dispatching is not None and dispatching(str(printer.id)):
        # Its dispatch is alive and about to write it down; if it dies, its lock lapses
        # and a later round records the print here.
        log.info("reconcile_deferred", job_id=str(job.id), printer_id=str(printer.id))
        return None
    assert status.file_name is not None
    run = record_dispatch(session, job_id=job.id, file_name=status.file_name, actor=actor)
    audit.record(
        session,
        actor=actor,
        action="job.reconciled",
        entity_type="job",
        entity_id=job.id,
        data={"printer_id": printer.id, "file_name": status.file_name, "found": status.state.value},
    )
    log.info("print_reconciled", job_id=str(job.id), printer_id=str(printer.id))
    return run
