"""The Celery application and ``enqueue``, which runs a task in-process in embedded mode.

The task functions are the same in both modes; only who calls them differs:
Celery workers and beat when ``DISTRIFAB_REDIS_URL`` is set, the in-process
runner of ``core.background`` otherwise.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog
from celery import Celery, Task
from celery.signals import worker_ready
from kombu.exceptions import OperationalError as BrokerUnavailable

from core.settings import Settings

log = structlog.get_logger()

TASK_MODULES = ("catalog.tasks", "scheduler.tasks", "printers.tasks")

# Task priorities on the Redis broker, served lowest first: following the printers,
# then sending them their jobs, then the rest (slicing, planning).
PRIORITY_POLL = 0
PRIORITY_DISPATCH = 3
PRIORITY_BACKGROUND = 6
PRIORITY_STEPS = (PRIORITY_POLL, PRIORITY_DISPATCH, PRIORITY_BACKGROUND, 9)

celery_app = Celery("distrifab", include=list(TASK_MODULES))
# Until configured, sending a task would silently use the AMQP default on
# localhost: make that impossible.
celery_app.conf.broker_url = "memory://"


def configure_celery(settings: Settings) -> Celery:
    if not settings.redis_url:
        raise ValueError("Celery needs DISTRIFAB_REDIS_URL; embedded mode runs tasks in-process")
    celery_app.conf.update(
        broker_url=settings.redis_url,
        result_backend=None,
        task_ignore_result=True,
        task_default_queue=settings.celery_queue,
        # A task is acknowledged only when it finished, so a killed worker's
        # task runs again; every task is idempotent for that reason.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        # Priorities (Redis: a list per step, 0 served first): polling must not wait
        # behind a burst of dispatches (one per accepted job) or a re-plan; under the
        # load benchmark the polls queued past their 5 s expiry and the fleet's state
        # went stale without bound.
        broker_transport_options={
            "visibility_timeout": 600,
            "priority_steps": list(PRIORITY_STEPS),
            "queue_order_strategy": "priority",
        },
        task_default_priority=PRIORITY_BACKGROUND,
        timezone="UTC",
        beat_schedule={
            "poll-printers": {
                "task": "printers.tasks.poll_printers",
                "schedule": timedelta(seconds=settings.poll_interval_s),
                "options": {"expires": settings.poll_interval_s, "priority": PRIORITY_POLL},
            },
            "dispatch-sweep": {
                "task": "printers.tasks.dispatch_sweep",
                "schedule": timedelta(seconds=15),
                "options": {"expires": 15, "priority": PRIORITY_DISPATCH},
            },
            "slice-and-plan-sweep": {
                "task": "catalog.tasks.slice_open_needs",
                "schedule": timedelta(seconds=60),
                "options": {"expires": 60},
            },
        },
    )
    return celery_app


def _reconcile_on_start(**_: Any) -> None:
    """A worker that (re)starts asks for a reconciliation round at once."""
    celery_app.send_task("printers.tasks.reconcile_fleet", priority=PRIORITY_POLL)


worker_ready.connect(_reconcile_on_start, weak=False)


_local_runner: Any = None


def set_local_runner(runner: Any) -> None:
    """Embedded mode: where ``enqueue`` sends work (a ``core.background.BackgroundRunner``)."""
    global _local_runner
    _local_runner = runner


def enqueue(task: Task, *args: Any, countdown: float | None = None) -> None:
    """Send ``task`` to Celery, or run it in-process when embedded. Call after commit."""
    if _local_runner is not None:
        _local_runner.submit(task.name, task.run, *args, delay_s=countdown or 0.0)
        return
    try:
        task.apply_async(args=args, countdown=countdown)
    except BrokerUnavailable as exc:
        # The caller's transaction is committed already; failing its request now would
        # tell the user "not done" about something done. The beat sweeps send again what
        # this loses (dispatch every 15 s, slicing and planning every 60 s).
        log.warning("enqueue_failed", task=task.name, error=str(exc))
