"""The JSON bodies a simulated printer answers, shaped as OctoPrint 1.11.8's.

Pure functions of a :class:`SimulatedPrinter` (or its parts): the keys and the types are
checked against a real server by tests/printers/test_rest_api.py.
"""

from __future__ import annotations

from typing import Any

from printers.simulator.gcode import GcodeEstimate
from printers.simulator.printer import (
    AMBIENT_C,
    NOT_OPERATIONAL,
    Profile,
    Refused,
    SimulatedPrinter,
    StoredFile,
)


def job_body(printer: SimulatedPrinter) -> dict[str, Any]:
    """``GET /api/job``."""
    state = printer.state_text()
    now = printer.now()
    run = printer.run
    chosen = printer.selected if printer.connected else None
    body: dict[str, Any] = {
        "job": {
            "averagePrintTime": None,
            "estimatedPrintTime": None,
            "filament": None,
            "file": {
                "date": None,
                "display": None,
                "name": None,
                "origin": None,
                "path": None,
                "size": None,
            },
            "lastPrintTime": None,
            "user": None,
        },
        "progress": {
            "completion": None,
            "filepos": None,
            "printTime": None,
            "printTimeLeft": None,
            "printTimeLeftOrigin": None,
        },
        "state": state,
    }
    if printer.error:
        body["error"] = printer.error
    if chosen is not None:
        times = chosen.print_times_s
        body["job"] = {
            "averagePrintTime": sum(times) / len(times) if times else None,
            "estimatedPrintTime": chosen.estimate.print_s,
            "filament": {"tool0": {"length": chosen.estimate.filament_mm, "volume": 0.0}},
            "file": {
                "date": chosen.date,
                "display": chosen.name,
                "name": chosen.name,
                "origin": "local",
                "path": chosen.name,
                "size": chosen.size,
            },
            "lastPrintTime": times[-1] if times else None,
            "user": "admin",
        }
    if run is not None and run.phase in {"printing", "pausing", "paused", "done"}:
        done = run.phase == "done"
        active_s = run.duration_s if done else min(run.active_s(now), run.duration_s)
        fraction = 1.0 if done else active_s / run.duration_s
        body["progress"] = {
            "completion": fraction * 100.0,
            "filepos": int(run.file.size * fraction),
            "printTime": int(active_s),
            # The simulated wall time left: what OctoPrint estimates for a real printer.
            "printTimeLeft": int(run.duration_s - active_s),
            "printTimeLeftOrigin": None if done else "estimate",
        }
    return body


def temperatures(printer: SimulatedPrinter) -> dict[str, dict[str, float]]:
    hotend = bed = 0.0
    if printer.run is not None and printer.state_text() in {"Printing", "Pausing", "Paused"}:
        hotend = printer.run.file.estimate.hotend_c or 0.0
        bed = printer.run.file.estimate.bed_c or 0.0
    readings = {"tool0": hotend}
    if printer.profile.heated_bed:
        readings["bed"] = bed
    # Heating is not simulated: a heater with a target is at it, the others ambient.
    return {
        sensor: {"actual": target or AMBIENT_C, "offset": 0, "target": target}
        for sensor, target in readings.items()
    }


def printer_body(printer: SimulatedPrinter, exclude: set[str]) -> dict[str, Any]:
    """``GET /api/printer``; raises :class:`Refused` (409) when not connected."""
    state = printer.state_text()
    if not printer.connected:
        raise Refused(409, NOT_OPERATIONAL)
    body: dict[str, Any] = {}
    if "sd" not in exclude:
        body["sd"] = {"ready": True}
    if "state" not in exclude:
        printing = state in {"Printing", "Pausing", "Cancelling"}
        body["state"] = {
            "error": "",
            "flags": {
                "cancelling": state == "Cancelling",
                "closedOrError": False,
                "error": False,
                "finishing": False,
                "operational": True,
                "paused": state == "Paused",
                "pausing": state == "Pausing",
                "printing": printing,
                "ready": state == "Operational",
                "resuming": False,
                "sdReady": True,
            },
            "text": state,
        }
    if "temperature" not in exclude:
        body["temperature"] = temperatures(printer)
    return body


def connection_body(printer: SimulatedPrinter) -> dict[str, Any]:
    """``GET /api/connection``: the virtual port only."""
    state = printer.state_text()
    closed = not printer.connected
    return {
        "current": {
            "baudrate": None if closed else 115200,
            "port": None if closed else "VIRTUAL",
            "printerProfile": printer.profile.id,
            "state": "Closed" if closed else state,
        },
        "options": {
            "baudratePreference": 115200,
            "baudrates": [250000, 230400, 115200, 57600, 38400, 19200, 9600],
            "portPreference": "VIRTUAL",
            "ports": ["VIRTUAL"],
            "printerProfilePreference": printer.profile.id,
            "printerProfiles": [{"id": printer.profile.id, "name": printer.profile.name}],
        },
    }


def profiles_body(profile: Profile, base_url: str) -> dict[str, Any]:
    """``GET /api/printerprofiles``: one profile, current and default."""
    return {
        "profiles": {
            profile.id: {
                "id": profile.id,
                "name": profile.name,
                "model": profile.model,
                "color": "default",
                "current": True,
                "default": True,
                "heatedBed": profile.heated_bed,
                "heatedChamber": False,
                "extruder": {
                    "count": 1,
                    "nozzleDiameter": profile.nozzle_mm,
                    "offsets": [[0.0, 0.0]],
                    "sharedNozzle": False,
                },
                "volume": {
                    "custom_box": False,
                    "depth": profile.depth_mm,
                    "formFactor": "rectangular",
                    "height": profile.height_mm,
                    "origin": "lowerleft",
                    "width": profile.width_mm,
                },
                "resource": f"{base_url}/api/printerprofiles/{profile.id}",
            }
        }
    }


def file_entry(stored: StoredFile, base_url: str) -> dict[str, Any]:
    """One file of ``GET /api/files`` and ``GET /api/files/local/<name>``."""
    times = stored.print_times_s
    entry: dict[str, Any] = {
        "date": stored.date,
        "display": stored.name,
        "gcodeAnalysis": analysis(stored.estimate),
        "hash": stored.sha1,
        "name": stored.name,
        "origin": "local",
        "path": stored.name,
        "refs": {
            "download": f"{base_url}/downloads/files/local/{stored.name}",
            "resource": f"{base_url}/api/files/local/{stored.name}",
        },
        "size": stored.size,
        "type": "machinecode",
        "typePath": ["machinecode", "gcode"],
        "user": "admin",
    }
    if times:
        entry["prints"] = {"failure": 0, "last": {"success": True}, "success": len(times)}
        entry["statistics"] = {"averagePrintTime": {"_default": sum(times) / len(times)}}
    return entry


def analysis(found: GcodeEstimate) -> dict[str, Any]:
    """OctoPrint's ``gcodeAnalysis`` block: estimate, filament, areas and their sizes."""
    body: dict[str, Any] = {
        "estimatedPrintTime": found.print_s,
        "filament": {"tool0": {"length": found.filament_mm, "volume": 0.0}},
    }
    for key, dims_key, area in (
        ("printingArea", "dimensions", found.printing_area),
        ("travelArea", "travelDimensions", found.travel_area),
    ):
        if area is not None:
            low_x, low_y, low_z, high_x, high_y, high_z = area
            body[key] = {
                "maxX": high_x,
                "maxY": high_y,
                "maxZ": high_z,
                "minX": low_x,
                "minY": low_y,
                "minZ": low_z,
            }
            body[dims_key] = {
                "depth": high_y - low_y,
                "height": high_z - low_z,
                "width": high_x - low_x,
            }
    return body
