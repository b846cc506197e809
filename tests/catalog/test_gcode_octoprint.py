"""Our G-code through OctoPrint: its own analysis, and a print on its virtual printer."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trimesh

from catalog import demo_parts
from catalog.profiles import get_material, get_profile
from catalog.slicer import slice_mesh
from catalog.types import SliceSettings
from tests.fixtures.octoprint import OctoPrintServer

MK3S = get_profile("prusa-mk3s")


def _analyse(path: Path) -> str:
    # The exact command OctoPrint runs on every upload (shared/notes/octoprint.md).
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "octoprint",
            "analysis",
            "gcode",
            "--speed-x=6000",
            "--speed-y=6000",
            "--max-t=10",
            "--throttle=0.0",
            "--throttle-lines=100",
            "--bed-z=0.0",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout


def test_octoprint_analysis_reads_our_headband(tmp_path: Path) -> None:
    result = slice_mesh(
        demo_parts.face_shield_headband(height_mm=2.0), MK3S, get_material("PLA"), SliceSettings()
    )
    path = tmp_path / "headband.gcode"
    path.write_text(result.gcode)
    report = _analyse(path)
    length = float(re.search(r"extrusion_length:\s*\n-\s*([\d.]+)", report).group(1))  # type: ignore[union-attr]
    assert length == pytest.approx(result.filament_mm, rel=1e-4)
    height = float(re.search(r"dimensions:(?:\n .*)*?\n  height: ([\d.]+)", report).group(1))  # type: ignore[union-attr]
    assert height == pytest.approx(2.0, abs=0.01)
    minutes = float(re.search(r"total_time: ([\d.]+)", report).group(1))  # type: ignore[union-attr]
    # OctoPrint sums distance / feed without acceleration: shorter than our planner's time.
    assert 0.5 * result.print_time_s < minutes * 60 < result.print_time_s


@pytest.mark.octoprint
@pytest.mark.slow
def test_virtual_printer_prints_our_gcode(octoprint_server: OctoPrintServer) -> None:
    coupon = trimesh.creation.box(extents=(20.0, 20.0, 0.6))
    settings = SliceSettings(infill=0.0, skirt_loops=0)
    result = slice_mesh(coupon, MK3S, get_material("PLA"), settings)
    assert result.gcode.count("\n") < 1000  # the virtual printer runs ~200 lines/s
    with octoprint_server.client(timeout_s=30.0) as client:
        response = client.post(
            "/api/files/local",
            files={"file": ("coupon.gcode", result.gcode.encode(), "application/octet-stream")},
            data={"select": "true", "print": "true"},
        )
        assert response.status_code == 201, response.text
        assert response.json()["effectivePrint"] is True
        octoprint_server.wait_for_state(lambda s: s == "Printing", what="Printing", timeout_s=30)
        octoprint_server.wait_for_state(lambda s: s == "Operational", what="the end", timeout_s=180)
        job = client.get("/api/job").json()
        assert job["progress"]["completion"] == pytest.approx(100.0)
        deadline = time.monotonic() + 30
        analysis: dict[str, object] = {}
        while time.monotonic() < deadline and not analysis:
            analysis = client.get("/api/files/local/coupon.gcode").json().get("gcodeAnalysis", {})
            time.sleep(0.2)
        filament = analysis["filament"]["tool0"]["length"]  # type: ignore[index]
        assert filament == pytest.approx(result.filament_mm, rel=1e-4)
