"""The driver contract, run against a real OctoPrint server and against the simulator.

The simulator is the project's only fake: every behaviour the engine relies on is
asserted here on both, so the simulator cannot drift from OctoPrint unnoticed.
"""

from __future__ import annotations

import pytest

from printers.drivers import OctoPrintDriver, PrinterState, make_driver
from printers.errors import (
    PrinterAuthFailed,
    PrinterBusy,
    PrinterFileMissing,
    PrinterRejected,
    PrinterUnreachable,
)
from tests.fixtures.octoprint import free_port, sample_gcode
from tests.printers.support import Endpoint, wait_for

pytestmark = pytest.mark.anyio

# ~32 s on the virtual printer (measured): outlasts every step of the tests that use it.
LONG_GCODE = sample_gcode(600)
# ~2 s: a print the tests can watch finish.
SHORT_GCODE = sample_gcode(40)


def is_printing(status: object) -> bool:
    return getattr(status, "state", None) is PrinterState.PRINTING


async def start_long_print(driver: OctoPrintDriver, name: str = "long.gcode") -> None:
    await driver.upload(name, LONG_GCODE)
    await driver.start(name)
    await wait_for(driver, is_printing, what="printing")


async def test_check_reads_version_and_profile(driver: OctoPrintDriver) -> None:
    info = await driver.check()
    assert info.server_version.startswith("1.")
    assert info.profile_name
    assert info.bed_x_mm
    assert info.bed_x_mm > 0
    assert info.bed_y_mm
    assert info.bed_y_mm > 0
    assert info.max_z_mm
    assert info.max_z_mm > 0
    assert info.nozzle_mm
    assert 0 < info.nozzle_mm < 2


async def test_idle_status_shape(driver: OctoPrintDriver) -> None:
    # Temperatures arrive with the first report after connecting, hence the wait.
    status = await wait_for(
        driver, lambda s: {"tool0", "bed"} <= s.temperatures_c.keys(), what="temperatures"
    )
    assert status.state is PrinterState.OPERATIONAL
    assert status.state_text == "Operational"
    assert status.file_name is None
    assert status.progress_pct is None
    assert status.error is None
    for actual, target in status.temperatures_c.values():
        assert isinstance(actual, float)
        assert isinstance(target, float)


async def test_upload_stores_without_starting(driver: OctoPrintDriver) -> None:
    assert not await driver.has_file("part.gcode")
    await driver.upload("part.gcode", SHORT_GCODE)
    assert await driver.has_file("part.gcode")
    status = await driver.status()
    assert status.state is PrinterState.OPERATIONAL
    assert status.file_name is None
    # Same name again overwrites: uploads are idempotent.
    await driver.upload("part.gcode", SHORT_GCODE)
    assert await driver.has_file("part.gcode")


async def test_start_unknown_file_is_missing(driver: OctoPrintDriver) -> None:
    with pytest.raises(PrinterFileMissing):
        await driver.start("nowhere.gcode")
    assert (await driver.status()).state is PrinterState.OPERATIONAL


async def test_upload_of_wrong_type_is_rejected(driver: OctoPrintDriver) -> None:
    with pytest.raises(PrinterRejected):
        await driver.upload("notes.txt", b"not gcode")
    assert not await driver.has_file("notes.txt")


async def test_printing_status_shape(driver: OctoPrintDriver) -> None:
    await start_long_print(driver)
    status = await wait_for(
        driver,
        lambda s: (s.progress_pct or 0) > 0 and {"tool0", "bed"} <= s.temperatures_c.keys(),
        what="progress and temperatures",
    )
    assert status.state is PrinterState.PRINTING
    assert status.state_text == "Printing"
    assert status.file_name == "long.gcode"
    assert status.progress_pct is not None
    assert 0 < status.progress_pct < 100
    assert status.print_time_s is not None
    assert status.print_time_s >= 0
    assert status.error is None


async def test_start_while_printing_is_busy(driver: OctoPrintDriver) -> None:
    await start_long_print(driver)
    await driver.upload("second.gcode", SHORT_GCODE)
    with pytest.raises(PrinterBusy) as raised:
        await driver.start("second.gcode")
    assert raised.value.context["file_name"] == "long.gcode"
    # And again for the very same file: a repeated dispatch never restarts it.
    with pytest.raises(PrinterBusy):
        await driver.start("long.gcode")
    status = await driver.status()
    assert status.state is PrinterState.PRINTING
    assert status.file_name == "long.gcode"


async def test_printing_file_cannot_be_overwritten_or_deleted(driver: OctoPrintDriver) -> None:
    await start_long_print(driver)
    with pytest.raises(PrinterBusy) as raised:
        await driver.upload("long.gcode", SHORT_GCODE)
    assert raised.value.context["file_name"] == "long.gcode"
    with pytest.raises(PrinterBusy):
        await driver.delete_file("long.gcode")
    assert (await driver.status()).file_name == "long.gcode"


async def test_pause_resume_cancel(driver: OctoPrintDriver) -> None:
    await start_long_print(driver)
    await driver.pause()
    paused = await wait_for(driver, lambda s: s.state is PrinterState.PAUSED, what="paused")
    assert paused.state_text == "Paused"
    assert paused.file_name == "long.gcode"
    assert paused.progress_pct is not None
    await driver.pause()  # pausing a paused print is a no-op, not an error
    assert (await driver.status()).state is PrinterState.PAUSED

    await driver.resume()
    await wait_for(driver, is_printing, what="printing again")

    await driver.cancel()
    cancelled = await wait_for(
        driver, lambda s: s.state is PrinterState.OPERATIONAL, what="operational"
    )
    # A cancelled print keeps its file selected and loses its progress.
    assert cancelled.file_name == "long.gcode"
    assert cancelled.progress_pct is None
    assert cancelled.error is None


async def test_pause_and_cancel_when_idle_are_busy(driver: OctoPrintDriver) -> None:
    with pytest.raises(PrinterBusy):
        await driver.pause()
    with pytest.raises(PrinterBusy):
        await driver.cancel()


async def test_finished_print_is_operational_at_100(driver: OctoPrintDriver) -> None:
    await driver.upload("short.gcode", SHORT_GCODE)
    await driver.start("short.gcode")
    done = await wait_for(
        driver,
        lambda s: s.state is PrinterState.OPERATIONAL and s.progress_pct == 100,
        what="finished",
    )
    assert done.file_name == "short.gcode"
    assert done.error is None
    # The finished file may be printed again (the dispatcher decides whether it should).
    await driver.start("short.gcode")
    await wait_for(
        driver,
        lambda s: s.state is PrinterState.PRINTING or s.progress_pct == 100,
        what="printing or finished again",
    )


async def test_dropped_serial_connection_is_an_error_until_reconnected(
    driver: OctoPrintDriver,
) -> None:
    await start_long_print(driver)
    await driver.send_commands(["!!DEBUG:drop_connection"])
    failed = await wait_for(driver, lambda s: s.state is PrinterState.ERROR, what="error")
    assert failed.state_text == "Offline after error"
    assert failed.error
    assert failed.file_name is None
    assert failed.progress_pct is None
    assert failed.temperatures_c == {}
    with pytest.raises(PrinterBusy):
        await driver.start("long.gcode")
    with pytest.raises(PrinterBusy):
        await driver.send_commands(["M105"])

    await driver.connect()
    back = await wait_for(driver, lambda s: s.state is PrinterState.OPERATIONAL, what="operational")
    assert back.error is None


async def test_disconnected_printer_is_offline(driver: OctoPrintDriver) -> None:
    await driver.disconnect()
    status = await wait_for(driver, lambda s: s.state is PrinterState.OFFLINE, what="offline")
    assert status.state_text == "Offline"
    assert status.error is None
    await driver.upload("part.gcode", SHORT_GCODE)  # files can still be sent
    with pytest.raises(PrinterBusy):
        await driver.start("part.gcode")
    await driver.connect()
    await wait_for(driver, lambda s: s.state is PrinterState.OPERATIONAL, what="operational")


async def test_wrong_key_is_refused_without_leaking_it(endpoint: Endpoint) -> None:
    wrong_key = "wrong-key-0123456789"
    async with endpoint.driver(api_key=wrong_key) as driver:
        for call in (driver.check, driver.status, driver.pause):
            with pytest.raises(PrinterAuthFailed) as raised:
                await call()
            assert endpoint.base_url in str(raised.value)
            assert wrong_key not in str(raised.value)
            assert endpoint.api_key not in str(raised.value)


async def test_nobody_listening_is_unreachable(endpoint: Endpoint) -> None:
    async with make_driver(
        endpoint.kind, f"http://127.0.0.1:{free_port()}", endpoint.api_key
    ) as driver:
        with pytest.raises(PrinterUnreachable) as raised:
            await driver.check()
    assert "127.0.0.1" in str(raised.value)


@pytest.mark.parametrize(
    ("command", "error_text"),
    [
        (
            "!!DEBUG:trigger_fatal_error_marlin",
            "Thermal Runaway, system stopped! Heater_ID: bed - Printer halted. kill() called!",
        ),
        ("M112", "Closing serial port due to emergency stop M112."),
    ],
)
async def test_firmware_errors_end_in_error_with_their_text(
    driver: OctoPrintDriver, command: str, error_text: str
) -> None:
    await start_long_print(driver)
    await driver.send_commands([command])
    # OctoPrint passes through a short "Error" state (file still selected) on its way
    # to "Offline after error": wait for where it settles.
    failed = await wait_for(
        driver,
        lambda s: s.state is PrinterState.ERROR and s.state_text != "Error",
        what="error",
    )
    assert failed.state_text == "Offline after error"
    assert failed.error == error_text
    assert failed.file_name is None


async def test_printer_initiated_pause(driver: OctoPrintDriver) -> None:
    await start_long_print(driver)
    await driver.send_commands(["!!DEBUG:action_pause"])
    paused = await wait_for(driver, lambda s: s.state is PrinterState.PAUSED, what="paused")
    assert paused.file_name == "long.gcode"
    await driver.resume()
    await wait_for(driver, is_printing, what="printing again")


@pytest.mark.slow
async def test_silent_printer_ends_in_error(driver: OctoPrintDriver) -> None:
    # The test servers give up after 2 silent periods of 3 s (fixture config).
    await start_long_print(driver)
    await driver.send_commands(["!!DEBUG:go_awol"])
    failed = await wait_for(driver, lambda s: s.state is PrinterState.ERROR, what="error")
    assert failed.error == "Too many consecutive timeouts, printer still connected and alive?"


@pytest.mark.parametrize("name", ["part 2 (v1).gcode", "50% infill #3.gcode"])
async def test_names_with_spaces_and_signs(driver: OctoPrintDriver, name: str) -> None:
    await driver.upload(name, SHORT_GCODE)
    assert await driver.has_file(name)
    await driver.start(name)
    status = await wait_for(
        driver,
        lambda s: (
            (s.file_name == name and s.state is not PrinterState.OPERATIONAL)
            or s.progress_pct == 100
        ),
        what="the file printing",
    )
    assert status.file_name == name


async def test_heat_waits_pass_and_targets_show(driver: OctoPrintDriver) -> None:
    # Sliced G-code waits for its temperatures; the test servers must not stall on them.
    heated = LONG_GCODE.replace(b"M104 S0", b"M109 S215").replace(b"M140 S0", b"M190 S60")
    await driver.upload("heated.gcode", heated)
    await driver.start("heated.gcode")
    status = await wait_for(
        driver,
        lambda s: (
            (s.progress_pct or 0) > 0
            and s.temperatures_c.get("tool0", (None, None))[1] == 215.0
            and s.temperatures_c.get("bed", (None, None))[1] == 60.0
        ),
        what="printing at 215/60 °C",
    )
    assert status.state is PrinterState.PRINTING
