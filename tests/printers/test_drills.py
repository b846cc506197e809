"""Failure drills at the transport level: what the driver raises when printers misbehave.

The simulator injects what a real server does only by accident (HTTP 409/500 on any
call, slowness, a host that stops answering); the real OctoPrint is frozen (SIGSTOP) and
killed (SIGKILL) to check the same errors come out of a genuine server.
"""

from __future__ import annotations

import signal

import pytest

from printers.drivers import OctoPrintDriver, PrinterState, make_driver
from printers.errors import (
    PrinterBusy,
    PrinterFault,
    PrinterTimeout,
    PrinterUnreachable,
)
from printers.simulator import SimulatedFleet, serve_in_thread
from tests.fixtures.octoprint import (
    OctoPrintServer,
    SimulatedPrinterHandle,
    free_port,
    sample_gcode,
)
from tests.printers.support import wait_for

pytestmark = pytest.mark.anyio

LONG_GCODE = sample_gcode(600)


def sim_driver(printer: SimulatedPrinterHandle, timeout_s: float = 10.0) -> OctoPrintDriver:
    return make_driver("simulator", printer.base_url, printer.api_key, timeout_s=timeout_s)


async def test_http_409_from_the_printer_is_busy(simulated_printer: SimulatedPrinterHandle) -> None:
    simulated_printer.inject(http_status=409, message="Printer is not operational")
    async with sim_driver(simulated_printer) as driver:
        with pytest.raises(PrinterBusy) as raised:
            await driver.status()
    assert "Printer is not operational" in str(raised.value)
    assert raised.value.context["status_code"] == 409


async def test_http_500_from_the_printer_is_a_fault(
    simulated_printer: SimulatedPrinterHandle,
) -> None:
    simulated_printer.inject(http_status=500)
    async with sim_driver(simulated_printer) as driver:
        for call in (driver.check, driver.status, driver.cancel):
            with pytest.raises(PrinterFault) as raised:
                await call()
            assert simulated_printer.base_url in str(raised.value)
        simulated_printer.clear_faults()
        assert (await driver.status()).state is PrinterState.OPERATIONAL


async def test_slow_printer_times_out_and_recovers(
    simulated_printer: SimulatedPrinterHandle,
) -> None:
    simulated_printer.inject(delay_s=1.0)
    async with sim_driver(simulated_printer, timeout_s=0.2) as hasty:
        with pytest.raises(PrinterTimeout) as raised:
            await hasty.status()
    assert "did not answer in time" in str(raised.value)
    # Slow is not dead: a client that waits long enough gets its answer.
    async with sim_driver(simulated_printer, timeout_s=10.0) as patient:
        assert (await patient.status()).state is PrinterState.OPERATIONAL


async def test_printer_killed_mid_print_then_restarted(
    simulated_printer: SimulatedPrinterHandle,
) -> None:
    async with sim_driver(simulated_printer, timeout_s=0.5) as driver:
        await driver.upload("long.gcode", LONG_GCODE)
        await driver.start("long.gcode")
        await wait_for(driver, lambda s: s.state is PrinterState.PRINTING, what="printing")
        simulated_printer.kill()
        with pytest.raises(PrinterTimeout):
            await driver.status()
        simulated_printer.revive()
        # Back after a restart: the job is lost (no file selected), the files are kept.
        status = await driver.status()
        assert status.state is PrinterState.OPERATIONAL
        assert status.file_name is None
        assert status.progress_pct is None
        assert await driver.has_file("long.gcode")


async def test_simulator_process_gone_is_unreachable_until_back() -> None:
    fleet = SimulatedFleet(1)
    with serve_in_thread(fleet) as running:
        address = running.address(1)
        port = running.port
    async with make_driver("simulator", address.base_url, address.api_key) as driver:
        with pytest.raises(PrinterUnreachable) as raised:
            await driver.status()
        assert address.base_url in str(raised.value)
        assert address.api_key not in str(raised.value)
        with serve_in_thread(fleet, port=port):
            assert (await driver.status()).state is PrinterState.OPERATIONAL


@pytest.mark.octoprint
async def test_frozen_octoprint_times_out(octoprint_server: OctoPrintServer) -> None:
    async with make_driver(
        "octoprint", octoprint_server.base_url, octoprint_server.api_key, timeout_s=0.5
    ) as driver:
        octoprint_server.freeze()
        try:
            with pytest.raises(PrinterTimeout):
                await driver.status()
        finally:
            octoprint_server.thaw()
        assert (await driver.status()).state is PrinterState.OPERATIONAL


@pytest.mark.octoprint
async def test_octoprint_killed_mid_print_is_unreachable(octoprint_server: OctoPrintServer) -> None:
    async with make_driver(
        "octoprint", octoprint_server.base_url, octoprint_server.api_key, timeout_s=5.0
    ) as driver:
        await driver.upload("long.gcode", LONG_GCODE)
        await driver.start("long.gcode")
        await wait_for(driver, lambda s: s.state is PrinterState.PRINTING, what="printing")
        octoprint_server.process.send_signal(signal.SIGKILL)
        octoprint_server.process.wait(10)
        with pytest.raises(PrinterUnreachable) as raised:
            await driver.status()
    assert not isinstance(raised.value, PrinterTimeout)  # refused at once, not a wait
    octoprint_server.stop()  # the fleet starts a fresh server for the next test


async def test_messages_never_show_secrets() -> None:
    async with make_driver(
        "octoprint", f"http://admin:hunter2@127.0.0.1:{free_port()}", "the-api-key"
    ) as driver:
        with pytest.raises(PrinterUnreachable) as raised:
            await driver.check()
    message = str(raised.value)
    assert "127.0.0.1" in message
    assert "hunter2" not in message
    assert "the-api-key" not in message
    assert "hunter2" not in repr(driver)
