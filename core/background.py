"""Embedded mode's background work: the same task functions on in-process timers.

One thread keeps the timers (polling, dispatch sweep, slice-and-plan sweep);
a small pool runs enqueued work. Work of the same name never runs twice at
once, and a submission made while one is waiting is coalesced with it
(that is what debounces re-planning).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger()


@dataclass
class _Timer:
    name: str
    function: Callable[[], Any]
    interval_s: float
    next_at: float


class BackgroundRunner:
    def __init__(self, *, workers: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="distrifab-bg")
        self._timers: list[_Timer] = []
        self._pending: dict[str, tuple[float, Callable[..., Any], tuple[Any, ...]]] = {}
        self._running: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def every(
        self,
        name: str,
        interval_s: float,
        function: Callable[[], Any],
        *,
        first_after_s: float = 0.0,
    ) -> None:
        self._timers.append(_Timer(name, function, interval_s, time.monotonic() + first_after_s))

    def submit(
        self, name: str, function: Callable[..., Any], *args: Any, delay_s: float = 0.0
    ) -> None:
        """Run ``function(*args)`` after ``delay_s``; same-name same-args submissions coalesce."""
        key = f"{name}:{args!r}"
        with self._lock:
            due = time.monotonic() + delay_s
            if key in self._pending:
                return
            self._pending[key] = (due, function, args)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="distrifab-timers", daemon=True)
        self._thread.start()

    def stop(self, *, wait: bool = True) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._pool.shutdown(wait=wait, cancel_futures=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            for timer in self._timers:
                if timer.next_at <= now:
                    timer.next_at = now + timer.interval_s
                    self.submit(timer.name, timer.function)
            ready: list[tuple[str, Callable[..., Any], tuple[Any, ...]]] = []
            with self._lock:
                for key, (due, function, args) in list(self._pending.items()):
                    if due <= now and key not in self._running:
                        del self._pending[key]
                        self._running.add(key)
                        ready.append((key, function, args))
            for key, function, args in ready:
                self._pool.submit(self._run, key, function, args)
            self._stop.wait(0.1)

    def _run(self, key: str, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            function(*args)
        except Exception:  # a background failure must not kill the loop; it is logged
            log.exception("background_task_failed", task=key)
        finally:
            with self._lock:
                self._running.discard(key)

    def drain(self, *, max_rounds: int = 100) -> int:
        """Run everything pending now, in this thread, including what it enqueues
        (tests step through the flow this way). Returns how many tasks ran."""
        ran = 0
        for _ in range(max_rounds):
            with self._lock:
                batch = list(self._pending.items())
                self._pending.clear()
            if not batch:
                return ran
            for key, (_due, function, args) in batch:
                self._run(key, function, args)
                ran += 1
        return ran

    def idle(self) -> bool:
        with self._lock:
            return not self._pending and not self._running
