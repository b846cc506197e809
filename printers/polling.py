"""Poll many printers at once: pure transport and outcome classification, no database.

One worker follows a thousand printers with ``concurrency`` polls in flight, each
bounded by ``timeout_s`` as a whole, so a silent printer costs one slot for
``timeout_s`` and never holds up the rest of the round.

Why one small ``httpx.AsyncClient`` per concurrent poll (:class:`PollClients`) rather
than one shared client with a pool of ``concurrency`` connections: httpcore 1.0.9 walks
its whole pool, with a socket readability check per connection, on every request.
Measured against the simulator on this machine: 4.3 ms of CPU per request with one
client of 100 connections, 0.67 ms with 100 clients of 2 connections (1.2 vs 0.6 ms at
10). Each worker polls one printer at a time, so its own client keeps its connection
alive from one poll to the next.

The caller keeps the liveness of each printer between rounds with
:func:`next_liveness`: a printer is offline after ``offline_after_misses`` polls in a
row without an answer, and back as soon as one answers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

import httpx

from printers.drivers import make_driver
from printers.drivers.base import PrinterStatus
from printers.drivers.octoprint import tls_context
from printers.errors import (
    PrinterAuthFailed,
    PrinterError,
    PrinterFault,
    PrinterRejected,
    PrinterTimeout,
    PrinterUnreachable,
)

DEFAULT_CONCURRENCY: Final = 100
DEFAULT_TIMEOUT_S: Final = 4.0  # under the 5 s round, so a round never waits on a dead printer


@dataclass(frozen=True, slots=True)
class PollTarget:
    printer_id: Hashable  # the caller's key, handed back untouched
    kind: str  # a printers.drivers.DRIVER_KINDS value
    base_url: str
    api_key: str


class PollResult(StrEnum):
    OK = "ok"  # answered with a status
    TIMEOUT = "timeout"  # no answer within timeout_s
    UNREACHABLE = "unreachable"  # refused, DNS failure, connection dropped
    FAULT = "fault"  # HTTP 5xx or an unreadable answer
    AUTH_FAILED = "auth_failed"  # answered, but the key is refused
    REJECTED = "rejected"  # answered with another 4xx (409 too): a wrong URL, not an OctoPrint


# No answer worth the name: these count towards going offline.
MISSES: Final = frozenset({PollResult.TIMEOUT, PollResult.UNREACHABLE, PollResult.FAULT})


@dataclass(frozen=True, slots=True)
class PollOutcome:
    target: PollTarget
    result: PollResult
    status: PrinterStatus | None  # set when result is OK
    error: PrinterError | None  # set otherwise; its str() is a sentence naming the URL
    polled_at: datetime  # when the answer (or the give-up) came, aware UTC
    duration_s: float

    @property
    def missed(self) -> bool:
        return self.result in MISSES


@dataclass(frozen=True, slots=True)
class Liveness:
    misses: int = 0  # polls in a row without an answer
    offline: bool = False


def next_liveness(
    previous: Liveness, outcome: PollOutcome, *, offline_after_misses: int = 3
) -> Liveness:
    """Count misses; offline from the ``offline_after_misses``-th, back on the first answer.

    A refused key or a wrong URL is an answer: the host is up and the printer needs a
    person rather than patience, so it resets the count.
    """
    if not outcome.missed:
        return Liveness()
    misses = previous.misses + 1
    return Liveness(misses=misses, offline=previous.offline or misses >= offline_after_misses)


def slowest_first(
    targets: Sequence[PollTarget],
    last_duration_s: Mapping[Any, float],  # keyed by printer_id; Any: Mapping keys are invariant
    *,
    slow_s: float = 1.0,
) -> list[PollTarget]:
    """The printers whose last poll took ``slow_s`` or more first, longest first; the
    others after them, in the order given.

    A round lasts at least as long as its last poll: starting the slow and silent
    printers first lets their waits overlap the fast ones. The others keep their places
    so that each is polled at the same point of every round: ordering them by their
    last few milliseconds moved printers from the head of one round to the tail of the
    next and pushed their staleness from ~5 s to over 10 s (bench/polling.py).
    """

    def key(target: PollTarget) -> float:
        duration_s = last_duration_s.get(target.printer_id, 0.0)
        return -duration_s if duration_s >= slow_s else 0.0

    return sorted(targets, key=key)  # stable: equal keys keep their order


class PollClients:
    """``concurrency`` small clients, one per poll in flight; keep them between rounds.

    Use as ``async with PollClients(100) as clients: await poll_many(..., clients=clients)``.
    """

    def __init__(
        self, concurrency: int = DEFAULT_CONCURRENCY, *, keepalive_per_client: int = 2
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        limits = httpx.Limits(
            max_connections=keepalive_per_client,
            max_keepalive_connections=keepalive_per_client,
            # Rounds come every few seconds: keep idle connections over the gap.
            keepalive_expiry=60.0,
        )
        self.clients = tuple(
            httpx.AsyncClient(limits=limits, verify=tls_context()) for _ in range(concurrency)
        )

    def __len__(self) -> int:
        return len(self.clients)

    @property
    def is_closed(self) -> bool:
        return all(client.is_closed for client in self.clients)

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()

    async def __aenter__(self) -> PollClients:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def classify(error: PrinterError) -> PollResult:
    if isinstance(error, PrinterTimeout):  # before its parent PrinterUnreachable
        return PollResult.TIMEOUT
    if isinstance(error, PrinterUnreachable):
        return PollResult.UNREACHABLE
    if isinstance(error, PrinterFault):
        return PollResult.FAULT
    if isinstance(error, PrinterAuthFailed):
        return PollResult.AUTH_FAILED
    return PollResult.REJECTED


async def poll_one(
    target: PollTarget,
    *,
    client: httpx.AsyncClient,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    temperatures: bool = True,
) -> PollOutcome:
    """One printer's status as an outcome; never raises a printer error."""
    started = time.monotonic()
    status: PrinterStatus | None = None
    error: PrinterError | None = None
    try:
        driver = make_driver(
            target.kind, target.base_url, target.api_key, client=client, timeout_s=timeout_s
        )
        async with asyncio.timeout(timeout_s):
            status = await driver.status(temperatures=temperatures)
    except PrinterError as exc:
        error = exc
    except ValueError as exc:  # an unknown kind: one bad record must not sink the round
        error = PrinterRejected(str(exc), printer_url=target.base_url)
    except TimeoutError:
        error = PrinterTimeout(
            f"The printer at {target.base_url} did not answer within {timeout_s:g} s.",
            printer_url=target.base_url,
        )
    return PollOutcome(
        target=target,
        result=PollResult.OK if error is None else classify(error),
        status=status,
        error=error,
        polled_at=datetime.now(UTC),
        duration_s=time.monotonic() - started,
    )


async def poll_many(
    targets: Sequence[PollTarget],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    clients: PollClients | None = None,
    temperatures: bool = True,
) -> list[PollOutcome]:
    """Poll every target, at most ``concurrency`` at a time; outcomes in target order.

    Takes about ``len(targets) / concurrency`` times one poll, plus ``timeout_s`` per
    silent printer divided by ``concurrency``. Targets are polled in the given order:
    see :func:`slowest_first`. ``temperatures=False`` reads state and job only (one
    request per printer instead of two; ``status.temperatures_c`` is then empty), for
    rounds that need not refresh them. Pass :class:`PollClients` (at least
    ``concurrency`` of them) to keep connections between rounds; otherwise they are made
    and closed here. Never raises for a printer's failure: it is in its outcome.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    if clients is not None and len(clients) < concurrency:
        raise ValueError(f"{len(clients)} clients cannot carry {concurrency} polls at once")
    workers = min(concurrency, len(targets))
    own_clients = clients is None
    pool = clients if clients is not None else PollClients(max(workers, 1))
    outcomes: list[PollOutcome | None] = [None] * len(targets)
    indexes = iter(range(len(targets)))

    async def worker(client: httpx.AsyncClient) -> None:
        # A few workers pulling indexes cost less than one task per printer.
        for index in indexes:
            outcomes[index] = await poll_one(
                targets[index], client=client, timeout_s=timeout_s, temperatures=temperatures
            )

    try:
        async with asyncio.TaskGroup() as group:
            for client in pool.clients[:workers]:
                group.create_task(worker(client))
    finally:
        if own_clients:
            await pool.aclose()
    return [outcome for outcome in outcomes if outcome is not None]
