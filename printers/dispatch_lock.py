"""One dispatch per printer at a time, and a way for the poller to see one under way.

Two dispatch tasks for one printer (an accept's and a sweep's, on two worker slots)
must not both start a print: each takes the printer's lock without waiting, and the
one that finds it taken leaves the plate to the next sweep.

The poller asks too. A distrifab file printing with no run recorded is normally a
dispatch that died between the printer's "started" and its own record, and the poller
records it. But while that dispatch is alive it is only a dispatch that has not
written yet: recording it from the poller would say "reconciled after a crash" about
a print that had no crash. So the poller leaves it to a dispatch that holds the lock.

Embedded, the locks are thread locks in the one process that polls and dispatches.
Distributed, each is a Redis key with a short expiry that its holder renews while it
works, so that a lock never lapses under a slow upload, and a killed worker's lock
lapses within ``ttl_s``: the poller then records the print it started.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Protocol

import redis
import structlog

log = structlog.get_logger()


class DispatchLocks(Protocol):
    def hold(self, printer_id: str) -> contextlib.AbstractContextManager[bool]:
        """Take the printer's lock without waiting; yield whether this caller holds it."""
        ...

    def held(self, printer_id: str) -> bool:
        """Is a dispatch to this printer under way (somewhere)?"""
        ...


class LocalDispatchLocks:
    """Thread locks, for the embedded mode's single process."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, printer_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(printer_id, threading.Lock())

    @contextlib.contextmanager
    def hold(self, printer_id: str) -> Iterator[bool]:
        lock = self._lock(printer_id)
        acquired = lock.acquire(blocking=False)
        try:
            yield acquired
        finally:
            if acquired:
                lock.release()

    def held(self, printer_id: str) -> bool:
        return self._lock(printer_id).locked()


class RedisDispatchLocks:
    """A Redis key per printer, shared by every worker, renewed while its holder lives."""

    def __init__(self, client: redis.Redis, *, prefix: str, ttl_s: float) -> None:
        self._client = client
        self._prefix = prefix
        self.ttl_s = ttl_s

    def key(self, printer_id: str) -> str:
        return f"{self._prefix}:dispatch:{printer_id}"

    @contextlib.contextmanager
    def hold(self, printer_id: str) -> Iterator[bool]:
        # Not thread-local: the renewing thread must see the token the holder took.
        lock = self._client.lock(self.key(printer_id), timeout=self.ttl_s, thread_local=False)
        if not lock.acquire(blocking=False):
            yield False
            return
        stop = threading.Event()
        renewer = threading.Thread(
            target=self._renew, args=(lock, stop), name=f"dispatch-lock-{printer_id}", daemon=True
        )
        renewer.start()
        try:
            yield True
        finally:
            stop.set()
            renewer.join()
            with contextlib.suppress(redis.exceptions.LockError, redis.exceptions.RedisError):
                lock.release()

    def _renew(self, lock: redis.lock.Lock, stop: threading.Event) -> None:
        while not stop.wait(self.ttl_s / 3):
            try:
                lock.reacquire()
            except redis.exceptions.LockNotOwnedError:
                # Lapsed (Redis restarted, or this process stalled longer than the ttl):
                # another dispatch may now hold it. The printer's own answer still stops
                # a second start of the same file; say so and stop renewing.
                log.warning("dispatch_lock_lost", key=lock.name)
                return
            except redis.exceptions.RedisError as exc:
                log.warning("dispatch_lock_renew_failed", key=lock.name, error=str(exc))

    def held(self, printer_id: str) -> bool:
        try:
            return bool(self._client.exists(self.key(printer_id)))
        except redis.exceptions.RedisError as exc:
            # Unknown counts as under way: the poller asks again next round.
            log.warning("dispatch_lock_unknown", printer_id=printer_id, error=str(exc))
            return True


_local = LocalDispatchLocks()
_shared: dict[tuple[str, str, float], RedisDispatchLocks] = {}
_shared_guard = threading.Lock()


def dispatch_locks(
    *, redis_url: str | None, prefix: str, printer_timeout_s: float
) -> DispatchLocks:
    """The process's dispatch locks: thread locks without Redis, else Redis keys whose
    expiry is a few printer timeouts (renewed every third of it while held)."""
    if not redis_url:
        return _local
    ttl_s = max(10.0, 3 * printer_timeout_s)
    key = (redis_url, prefix, ttl_s)
    with _shared_guard:
        if key not in _shared:
            _shared[key] = RedisDispatchLocks(
                redis.Redis.from_url(redis_url), prefix=prefix, ttl_s=ttl_s
            )
        return _shared[key]
