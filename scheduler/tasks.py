"""Planning in the background: debounced, never two at once."""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager

import redis
import structlog

from core.celery_app import celery_app, enqueue
from core.runtime import get_runtime

log = structlog.get_logger()

_local_lock = threading.Lock()


def _redis() -> redis.Redis | None:
    url = get_runtime().settings.redis_url
    return redis.Redis.from_url(url) if url else None


def _keys() -> tuple[str, str]:
    # Namespaced by queue so that two deployments sharing a Redis never share a plan lock.
    queue = get_runtime().settings.celery_queue
    return f"{queue}:replan:pending", f"{queue}:replan:lock"


def request_replan(trigger: str) -> None:
    """Ask for a re-plan soon; requests within the debounce window make one run."""
    settings = get_runtime().settings
    client = _redis()
    if client is not None:
        # Only the first request in the window schedules a run.
        pending_key, _ = _keys()
        try:
            if not client.set(
                pending_key, trigger, nx=True, ex=max(1, int(settings.replan_debounce_s) + 30)
            ):
                return
        except redis.RedisError as exc:
            # Redis is down: no debounce, and enqueue (which also needs it) logs the loss;
            # the planning sweep re-plans within a minute. The caller's change is committed.
            log.warning("replan_request_failed", trigger=trigger, error=str(exc))
    enqueue(replan, trigger, countdown=settings.replan_debounce_s)


@celery_app.task(name="scheduler.tasks.replan", acks_late=True)
def replan(trigger: str = "manual") -> str | None:
    from scheduler.service import replan as run_replan

    runtime = get_runtime()
    client = _redis()
    guard: AbstractContextManager[object]
    if client is not None:
        pending_key, lock_key = _keys()
        client.delete(pending_key)
        guard = client.lock(lock_key, timeout=600, blocking_timeout=600)
    else:
        guard = _local_lock
    with guard:
        record = run_replan(
            runtime.db,
            trigger=trigger,
            time_limit_s=runtime.settings.replan_time_limit_s,
            horizon_days=runtime.settings.planning_horizon_days,
        )
    return str(record.id) if record else None
