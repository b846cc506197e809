"""The simulator's own rules: print time from the G-code, progress on its clock, the CLI.

What it shares with OctoPrint is in the contract suite; here is what only it has.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from printers.simulator import SimulatedPrinter
from printers.simulator.gcode import estimate
from printers.simulator.printer import CANCELLING_S, PAUSING_S
from printers.simulator.shapes import job_body, temperatures
from tests.fixtures.octoprint import free_port, sample_gcode


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def printer_with(clock: FakeClock, *, time_scale: float = 10.0) -> SimulatedPrinter:
    return SimulatedPrinter(1, "key", time_scale=time_scale, clock=clock)


def test_estimate_sums_moves_like_octoprint() -> None:
    # OctoPrint's analysis of the same files: 60.118 s and 601.281 s (shared notes).
    assert estimate(sample_gcode(60)).print_s == pytest.approx(60.118, abs=0.01)
    assert estimate(sample_gcode(600)).print_s == pytest.approx(601.281, abs=0.01)
    found = estimate(sample_gcode(60))
    assert found.lines == 69
    assert found.filament_mm == pytest.approx(198.0)
    assert found.printing_area == (0.0, 0.0, 0.2, 100.0, 49.0, 0.2)
    assert not found.from_slicer


def test_estimate_prefers_the_slicer_figure() -> None:
    found = estimate(b"; sliced\nM73 P0 R12\nM109 S215\nM190 S60\nG1X10Y10E1F600\nM73 P50 R6\n")
    assert found.print_s == 720.0
    assert found.from_slicer
    assert (found.hotend_c, found.bed_c) == (215.0, 60.0)


def test_estimate_honours_speed_factor_relative_moves_and_dwell() -> None:
    base = b"G21\nG91\nG1 X60 F3600\nG1 X60\n"  # two 60 mm moves at 60 mm/s: 2 s
    assert estimate(base).print_s == pytest.approx(2.0)
    assert estimate(b"M220 S200\n" + base).print_s == pytest.approx(1.0)
    assert estimate(base + b"G4 P500\nG4 S1\n").print_s == pytest.approx(3.5)
    inches = estimate(b"G20\nG1 X1 F60\n")  # 1 inch at 60 inch/min
    assert inches.print_s == pytest.approx(1.0)
    assert inches.travel_area is not None
    assert inches.travel_area[3] == pytest.approx(25.4)


@given(st.binary(max_size=2000))
def test_estimate_never_fails_on_garbage(gcode: bytes) -> None:
    found = estimate(gcode)
    assert found.print_s >= 0
    assert found.lines >= 0


def test_progress_follows_the_clock_and_time_scale() -> None:
    clock = FakeClock()
    printer = printer_with(clock, time_scale=10.0)
    printer.store("p.gcode", sample_gcode(600), estimate(sample_gcode(600)))
    printer.select("p.gcode", start=True)
    duration_s = 601.281 / 10.0
    clock.now += duration_s / 2
    job = job_body(printer)
    assert job["state"] == "Printing"
    assert job["progress"]["completion"] == pytest.approx(50.0, abs=0.1)
    assert job["progress"]["printTimeLeft"] == pytest.approx(duration_s / 2, abs=1)

    printer.job_command("pause", "pause")
    assert printer.state_text() == "Pausing"
    clock.now += PAUSING_S
    assert printer.state_text() == "Paused"
    clock.now += 1000.0  # paused time does not count
    assert job_body(printer)["progress"]["completion"] == pytest.approx(50.0, abs=0.1)
    printer.job_command("pause", "resume")
    clock.now += duration_s / 2
    done = job_body(printer)
    assert done["state"] == "Operational"
    assert done["progress"]["completion"] == 100.0
    assert done["job"]["lastPrintTime"] == pytest.approx(duration_s)
    assert done["job"]["file"]["name"] == "p.gcode"


def test_cancel_passes_through_cancelling() -> None:
    clock = FakeClock()
    printer = printer_with(clock)
    printer.store("p.gcode", sample_gcode(600), estimate(sample_gcode(600)))
    printer.select("p.gcode", start=True)
    printer.job_command("cancel", "")
    assert printer.state_text() == "Cancelling"
    clock.now += CANCELLING_S
    job = job_body(printer)
    assert job["state"] == "Operational"
    assert job["progress"]["completion"] is None
    assert job["job"]["file"]["name"] == "p.gcode"


def test_silent_printer_fails_after_its_timeout() -> None:
    clock = FakeClock()
    printer = SimulatedPrinter(1, "key", awol_timeout_s=6.0, clock=clock)
    printer.store("p.gcode", sample_gcode(600), estimate(sample_gcode(600)))
    printer.select("p.gcode", start=True)
    clock.now += 1.0
    printer.gcode_commands(["!!DEBUG:go_awol"])
    frozen = job_body(printer)["progress"]["completion"]
    clock.now += 5.0
    assert printer.state_text() == "Printing"
    assert job_body(printer)["progress"]["completion"] == frozen
    clock.now += 1.0
    assert printer.state_text() == "Offline after error"


def test_temperatures_follow_the_gcode_targets() -> None:
    clock = FakeClock()
    printer = printer_with(clock)
    gcode = b"M73 P0 R10\nM104 S215\nM140 S60\nG1 X10 F600\n"
    printer.store("t.gcode", gcode, estimate(gcode))
    assert temperatures(printer)["tool0"]["target"] == 0.0
    printer.select("t.gcode", start=True)
    readings = temperatures(printer)
    assert readings["tool0"] == {"actual": 215.0, "offset": 0, "target": 215.0}
    assert readings["bed"]["target"] == 60.0


def test_command_line_serves_the_listed_printers() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "printers.simulator", "--count", "3", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        listed = [json.loads(process.stdout.readline()) for _ in range(3)]
        assert [entry["number"] for entry in listed] == [1, 2, 3]
        third = listed[2]
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(
                    f"{third['base_url']}/api/version", headers={"X-Api-Key": third["api_key"]}
                )
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        assert response.status_code == 200
        wrong = httpx.get(
            f"{third['base_url']}/api/version", headers={"X-Api-Key": listed[0]["api_key"]}
        )
        assert wrong.status_code == 403  # each printer has its own key
    finally:
        process.terminate()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()
