"""Running a coroutine to completion from synchronous code, whatever thread calls it.

The printer commands (check, dispatch, pause, cancel) are coroutines over httpx, called
from synchronous routes, Celery tasks and in-process timers. ``asyncio.run`` refuses to
start when the calling thread already runs an event loop (a caller inside async code, or a
library such as Playwright's sync API keeping one on the main thread); then the coroutine
runs on a short-lived thread of its own, so the caller still gets the result or the
exception, never a half-sent command.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion and return its result (or raise its exception)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="distrifab-aio") as pool:
        return pool.submit(asyncio.run, coroutine).result()
