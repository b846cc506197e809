"""Catalogue background work."""

from __future__ import annotations

from core.celery_app import celery_app, enqueue
from core.runtime import get_runtime


@celery_app.task(name="catalog.tasks.slice_open_needs", acks_late=True)
def slice_open_needs() -> int:
    """Slice what open needs require, then ask for a re-plan. Idempotent."""
    from scheduler.service import slice_open_needs as slice_needed
    from scheduler.tasks import request_replan

    runtime = get_runtime()
    made = slice_needed(runtime.db, runtime.store)
    request_replan("slices_ready" if made else "sweep")
    return made


def request_slicing() -> None:
    enqueue(slice_open_needs)
