"""Waiting for something another process or thread does, with a deadline and a reason.

A test waits on a condition, never on a fixed sleep; when the deadline passes it fails
with what it was waiting for (and the last error the check met, if it tolerates some).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    check: Callable[[], T | None],
    *,
    timeout_s: float,
    what: str,
    every_s: float = 0.25,
    tolerate: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``check`` until it returns something truthy, and return that. Exceptions in
    ``tolerate`` (a server still coming back, say) count as "not yet"."""
    deadline = time.monotonic() + timeout_s
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except tolerate as exc:
            last, value = exc, None
        if value:
            return value
        time.sleep(every_s)
    seen = f" (last: {last})" if last is not None else ""
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}{seen}")
