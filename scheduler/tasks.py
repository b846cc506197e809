"""Planning in the background: debounced, never two at once."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import cast

import redis
import structlog
from redis.lock import Lock

from core.celery_app import celery_app, enqueue
from core.runtime import get_runtime

log = structlog.get_logger()

_local_lock = threading.Lock()


def _redis() -> redis.Redis | None:
    url = get_runtime().settings.redis_url
    return redis.Redis.from_url(url) if url else None


def _keys() -> tuple[str, str, str]:
    # Namespaced by queue so that two deployments sharing a Redis never share a plan lock.
    queue = get_runtime().settings.celery_queue
    return f"{queue}:replan:pending", f"{queue}:replan:lock", f"{queue}:replan:quiet"


def request_replan(trigger: str) -> None:
    """Ask for a re-plan soon; requests within the debounce window make one run, and
    with Redis, none starts sooner than ``replan_min_interval_s`` after the last one."""
    settings = get_runtime().settings
    client = _redis()
    delay = settings.replan_debounce_s
    if client is not None:
        # Only the first request in the window schedules a run.
        pending_key, _, quiet_key = _keys()
        expiry = settings.replan_debounce_s + settings.replan_min_interval_s
        try:
            if not client.set(pending_key, trigger, nx=True, ex=max(1, int(expiry) + 30)):
                return
            quiet_ms = cast(int, client.pttl(quiet_key))  # the sync client's answer
            if quiet_ms > 0:
                delay = max(delay, quiet_ms / 1000)
        except redis.RedisError as exc:
            # Redis is down: no debounce, and enqueue (which also needs it) logs the loss;
            # the planning sweep re-plans within a minute. The caller's change is committed.
            log.warning("replan_request_failed", trigger=trigger, error=str(exc))
    enqueue(replan, trigger, countdown=delay)


@celery_app.task(name="scheduler.tasks.replan", acks_late=True)
def replan(trigger: str = "manual") -> str | None:
    from scheduler.service import replan as run_replan

    runtime = get_runtime()
    settings = runtime.settings
    client = _redis()
    guard: AbstractContextManager[object]
    if client is not None:
        pending_key, lock_key, quiet_key = _keys()
        client.delete(pending_key)
        lock = client.lock(lock_key, timeout=600)
        if not lock.acquire(blocking=False):
            # Another re-plan is running. Waiting for it here held a second worker slot
            # (of two) for minutes, and the polling stopped; ask again for after it.
            request_replan(trigger)
            return None
        guard = _held(lock, client, quiet_key, settings.replan_min_interval_s)
    else:
        guard = _local_lock
    with guard:
        record = run_replan(
            runtime.db,
            trigger=trigger,
            time_limit_s=settings.replan_time_limit_s,
            horizon_days=settings.planning_horizon_days,
            niceness=settings.replan_niceness,
            explain_budget_s=settings.replan_explain_budget_s,
        )
    return str(record.id) if record else None


@contextlib.contextmanager
def _held(lock: Lock, client: redis.Redis, quiet_key: str, quiet_s: float) -> Iterator[None]:
    """Release ``lock`` at the end, and start the quiet interval before the next run."""
    try:
        yield
    finally:
        try:
            if quiet_s > 0:
                client.set(quiet_key, "1", px=max(1, int(quiet_s * 1000)))
            lock.release()
        except redis.RedisError as exc:  # LockError included: the lock expires on its own
            log.warning("replan_unlock_failed", error=str(exc))
