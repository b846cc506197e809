"""Printer background work: polling, dispatching, the sweep that re-sends lost dispatches."""

from __future__ import annotations

import contextlib
from uuid import UUID

import redis
from sqlalchemy import select

from core.celery_app import PRIORITY_DISPATCH, PRIORITY_POLL, celery_app, enqueue
from core.runtime import Runtime, get_runtime
from printers.dispatch_lock import DispatchLocks, dispatch_locks
from printers.errors import PrinterUnreachable
from printers.monitor import PollEffects


@celery_app.task(
    name="printers.tasks.dispatch_job",
    acks_late=True,
    priority=PRIORITY_DISPATCH,
    autoretry_for=(PrinterUnreachable,),
    retry_backoff=True,
    retry_backoff_max=120,
    max_retries=10,
)
def dispatch_job(job_id: str) -> str:
    from printers.dispatch import DispatchOutcome
    from printers.dispatch import dispatch_job as send
    from scheduler.models import Job

    runtime = get_runtime()
    with runtime.db.session() as session:
        printer_id = session.scalar(select(Job.printer_id).where(Job.id == UUID(job_id)))
    if printer_id is None:
        return DispatchOutcome.NOT_ACCEPTED.value
    # One dispatch per printer at a time: two tasks (an accept's and a sweep's, on two
    # worker slots) each found the printer free and started two jobs on one machine.
    with _dispatch_locks(runtime).hold(str(printer_id)) as held:
        if not held:
            return DispatchOutcome.WAITING.value  # the next sweep sends it
        outcome = send(
            runtime.db,
            runtime.store,
            job_id=UUID(job_id),
            secret_key=runtime.secret_key,
            timeout_s=runtime.settings.printer_timeout_s,
        )
    return outcome.value


def _dispatch_locks(runtime: Runtime) -> DispatchLocks:
    settings = runtime.settings
    return dispatch_locks(
        redis_url=settings.redis_url,
        prefix=settings.celery_queue,
        printer_timeout_s=settings.printer_timeout_s,
    )


@celery_app.task(name="printers.tasks.dispatch_sweep", acks_late=True, priority=PRIORITY_DISPATCH)
def dispatch_sweep() -> int:
    """Dispatch every accepted job whose printer is free; re-sends what a crash lost."""
    from printers.dispatch import next_dispatchable

    runtime = get_runtime()
    with runtime.db.session() as session:
        job_ids = next_dispatchable(session)
    for job_id in job_ids:
        enqueue(dispatch_job, str(job_id))
    return len(job_ids)


@celery_app.task(name="printers.tasks.poll_printers", acks_late=True, priority=PRIORITY_POLL)
def poll_printers() -> None:
    _locked_round(get_runtime())


@celery_app.task(name="printers.tasks.reconcile_fleet", acks_late=True, priority=PRIORITY_POLL)
def reconcile_fleet() -> int:
    """After a restart: poll every printer now and let the records follow what the
    printers are really doing (never the other way round); say so in the audit trail."""
    from core import audit
    from core.identity import Actor

    runtime = get_runtime()
    effects = _locked_round(runtime)
    if effects is None:
        return 0  # a round is running right now: it reconciles just the same
    with runtime.db.session() as session:
        audit.record(
            session,
            actor=Actor.system("reconciler"),
            action="fleet.reconciled",
            entity_type="fleet",
            entity_id="all",
            data={"printers_changed": effects.changed},
        )
        session.commit()
    return effects.changed


def _locked_round(runtime: Runtime) -> PollEffects | None:
    """One round, unless another one is running (None then)."""
    settings = runtime.settings
    if not settings.redis_url:
        return _poll_round(runtime)  # the embedded runner never runs a task twice at once
    # A round slower than the beat interval must not run beside the next one.
    client = redis.Redis.from_url(settings.redis_url)
    lock = client.lock(
        f"{settings.celery_queue}:poll:lock", timeout=max(60.0, 6 * settings.poll_interval_s)
    )
    if not lock.acquire(blocking=False):
        return None
    try:
        return _poll_round(runtime)
    finally:
        with contextlib.suppress(redis.exceptions.LockError):
            lock.release()


def _poll_round(runtime: Runtime) -> PollEffects:
    from printers.monitor import PollPolicy
    from printers.poller import poll_printers as poll
    from scheduler.tasks import request_replan

    settings = runtime.settings
    effects = poll(
        runtime.db,
        secret_key=runtime.secret_key,
        policy=PollPolicy(
            offline_after_misses=settings.offline_after_misses,
            max_attempts=settings.max_print_attempts,
        ),
        concurrency=settings.poll_concurrency,
        timeout_s=settings.printer_timeout_s,
        dispatching=_dispatch_locks(runtime).held,
    )
    if effects.replan:
        request_replan("printer_change")
    if effects.dispatch:
        enqueue(dispatch_sweep)
    return effects
