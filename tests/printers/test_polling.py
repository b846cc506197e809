"""poll_many: fan-out, order, classification of every failure, offline after misses."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from printers.drivers import PrinterState
from printers.polling import (
    Liveness,
    PollClients,
    PollOutcome,
    PollResult,
    PollTarget,
    next_liveness,
    poll_many,
    slowest_first,
)
from printers.simulator import SimulatedFleet, serve_in_thread
from tests.fixtures.octoprint import OctoPrintServer, SimulatedPrinterHandle, free_port

pytestmark = pytest.mark.anyio

Take = Callable[[int], list[SimulatedPrinterHandle]]


def target(printer: SimulatedPrinterHandle, *, api_key: str | None = None) -> PollTarget:
    return PollTarget(
        printer_id=printer.number,
        kind="simulator",
        base_url=printer.base_url,
        api_key=printer.api_key if api_key is None else api_key,
    )


async def test_every_failure_is_classified(simulated_printers: Take) -> None:
    healthy, conflict, broken, slow, killed, wrong_key = simulated_printers(6)
    conflict.inject(http_status=409, message="Printer is not operational")
    broken.inject(http_status=500)
    slow.inject(delay_s=2.0)
    killed.kill()
    prefix = healthy.base_url.rsplit("/printers/", 1)[0]
    targets = [
        target(healthy),
        target(conflict),
        target(broken),
        target(slow),
        target(killed),
        target(wrong_key, api_key="not-the-key"),
        PollTarget("gone", "octoprint", f"http://127.0.0.1:{free_port()}", "key"),
        PollTarget("no-such-printer", "simulator", f"{prefix}/printers/9999", "key"),
        PollTarget("bad-url", "octoprint", "ftp://printer.example", "key"),
        PollTarget("bad-kind", "klipper", healthy.base_url, healthy.api_key),
    ]
    outcomes = await poll_many(targets, concurrency=4, timeout_s=0.5)

    assert [o.target for o in outcomes] == targets
    assert [o.result for o in outcomes] == [
        PollResult.OK,
        PollResult.REJECTED,  # 409: the printer answered; a person should look
        PollResult.FAULT,
        PollResult.TIMEOUT,
        PollResult.TIMEOUT,
        PollResult.AUTH_FAILED,
        PollResult.UNREACHABLE,
        PollResult.REJECTED,
        PollResult.REJECTED,
        PollResult.REJECTED,
    ]
    ok = outcomes[0]
    assert ok.status is not None
    assert ok.status.state is PrinterState.OPERATIONAL
    assert ok.error is None
    for outcome in outcomes[1:]:
        assert outcome.status is None
        assert outcome.error is not None
        assert str(outcome.error)
    assert [o.missed for o in outcomes[:5]] == [False, False, True, True, True]
    assert all(o.polled_at.tzinfo is UTC for o in outcomes)


async def test_large_batch_keeps_order_over_one_client() -> None:
    fleet = SimulatedFleet(300)
    with serve_in_thread(fleet) as running:
        targets = [
            PollTarget(a.number, "simulator", a.base_url, a.api_key) for a in running.addresses()
        ]
        async with PollClients(25) as clients:
            for _ in range(2):  # the second round reuses the kept-alive connections
                outcomes = await poll_many(targets, concurrency=25, timeout_s=10.0, clients=clients)
                assert [o.target.printer_id for o in outcomes] == list(range(1, 301))
                assert {o.result for o in outcomes} == {PollResult.OK}
            assert not clients.is_closed  # a caller's clients are left open
            with pytest.raises(ValueError, match="cannot carry"):
                await poll_many(targets, concurrency=26, clients=clients)
        assert clients.is_closed


async def test_empty_batch() -> None:
    assert await poll_many([], concurrency=10) == []
    with pytest.raises(ValueError, match="concurrency"):
        await poll_many([], concurrency=0)


async def test_killed_printer_goes_offline_after_misses_and_comes_back(
    simulated_printer: SimulatedPrinterHandle,
) -> None:
    targets = [target(simulated_printer)]
    liveness = Liveness()
    history: list[Liveness] = []

    async def round_() -> None:
        nonlocal liveness
        (outcome,) = await poll_many(targets, concurrency=1, timeout_s=0.3)
        liveness = next_liveness(liveness, outcome, offline_after_misses=3)
        history.append(liveness)

    await round_()
    simulated_printer.kill()
    for _ in range(4):
        await round_()
    simulated_printer.revive()
    await round_()
    assert history == [
        Liveness(0, False),
        Liveness(1, False),
        Liveness(2, False),
        Liveness(3, True),
        Liveness(4, True),
        Liveness(0, False),
    ]


@pytest.mark.octoprint
async def test_polls_real_octoprint_and_notices_it_freeze(
    octoprint_server: OctoPrintServer,
) -> None:
    targets = [PollTarget("real", "octoprint", octoprint_server.base_url, octoprint_server.api_key)]
    (answered,) = await poll_many(targets, concurrency=1, timeout_s=5.0)
    assert answered.result is PollResult.OK
    octoprint_server.freeze()
    try:
        (frozen,) = await poll_many(targets, concurrency=1, timeout_s=0.5)
    finally:
        octoprint_server.thaw()
    assert frozen.result is PollResult.TIMEOUT


def outcome_of(result: PollResult) -> PollOutcome:
    return PollOutcome(
        target=PollTarget(1, "simulator", "http://127.0.0.1:1", "k"),
        result=result,
        status=None,
        error=None,
        polled_at=datetime.now(UTC),
        duration_s=0.0,
    )


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        ([PollResult.TIMEOUT] * 2, Liveness(2, False)),
        ([PollResult.TIMEOUT, PollResult.UNREACHABLE, PollResult.FAULT], Liveness(3, True)),
        ([PollResult.TIMEOUT] * 3 + [PollResult.OK], Liveness(0, False)),
        # An answer, even a refusal, resets the count: the host is up.
        ([PollResult.TIMEOUT] * 2 + [PollResult.AUTH_FAILED], Liveness(0, False)),
        ([PollResult.TIMEOUT] * 2 + [PollResult.REJECTED, PollResult.TIMEOUT], Liveness(1, False)),
    ],
)
def test_liveness_counts_misses(results: list[PollResult], expected: Liveness) -> None:
    liveness = Liveness()
    for result in results:
        liveness = next_liveness(liveness, outcome_of(result), offline_after_misses=3)
    assert liveness == expected


def test_slowest_first_moves_only_the_slow() -> None:
    targets = [
        PollTarget(n, "simulator", f"http://127.0.0.1:1/printers/{n}", "k") for n in range(6)
    ]
    durations = {0: 0.01, 1: 4.0, 2: 0.02, 3: 1.5, 4: 0.005}  # 5: never polled
    ordered = slowest_first(targets, durations, slow_s=1.0)
    assert [t.printer_id for t in ordered] == [1, 3, 0, 2, 4, 5]


async def test_rounds_without_temperatures(simulated_printer: SimulatedPrinterHandle) -> None:
    targets = [target(simulated_printer)]
    (full,) = await poll_many(targets, concurrency=1, timeout_s=5.0)
    (light,) = await poll_many(targets, concurrency=1, timeout_s=5.0, temperatures=False)
    assert full.status is not None
    assert light.status is not None
    assert {"tool0", "bed"} <= full.status.temperatures_c.keys()
    assert light.status.temperatures_c == {}
    assert light.status.state is full.status.state is PrinterState.OPERATIONAL
