"""Where a request's time went, in a ``Server-Timing`` header on every answer.

``app`` is the time from the request reaching distrifab to its answer starting, ``db`` the
part of it spent waiting for the database (with the number of statements). Browsers show
the header in their developer tools; the load benchmark reads it to tell time spent in
distrifab from time spent queueing for a CPU before distrifab saw the request.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, event


@dataclass
class RequestTiming:
    started: float = field(default_factory=time.perf_counter)
    db_s: float = 0.0
    statements: int = 0

    def header(self) -> str:
        app_ms = (time.perf_counter() - self.started) * 1000
        return f'app;dur={app_ms:.1f}, db;dur={self.db_s * 1000:.1f};desc="{self.statements} statements"'


# A request's timing; the thread that runs a sync route sees the same object (the context
# is copied into it, the object is shared).
current: ContextVar[RequestTiming | None] = ContextVar("request_timing", default=None)

_STARTED = "distrifab_timing_started"


def _before(
    conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, many: Any
) -> None:
    if current.get() is not None:
        conn.info[_STARTED] = time.perf_counter()


def _after(
    conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, many: Any
) -> None:
    timing = current.get()
    started = conn.info.pop(_STARTED, None)
    if timing is not None and started is not None:
        timing.db_s += time.perf_counter() - started
        timing.statements += 1


def instrument(engine: Engine) -> None:
    """Count the engine's statements into the current request's timing (once per engine)."""
    if not event.contains(engine, "before_cursor_execute", _before):
        event.listen(engine, "before_cursor_execute", _before)
        event.listen(engine, "after_cursor_execute", _after)
