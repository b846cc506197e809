"""Reading OctoPrint's JSON: state texts, ``/api/job`` + ``/api/printer``, profiles.

Pure functions, shared by the driver and anything that gets the same bodies another way
(the SockJS push carries the same job/progress/state shapes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from printers.drivers.base import PrinterInfo, PrinterState, PrinterStatus

# OctoPrint's state strings (octoprint/util/comm.py getStateString, 1.11) by meaning.
_STATES: Final[Mapping[str, PrinterState]] = {
    "Operational": PrinterState.OPERATIONAL,
    "Printing": PrinterState.PRINTING,
    "Printing from SD": PrinterState.PRINTING,
    "Sending file to SD": PrinterState.PRINTING,
    "Starting": PrinterState.PRINTING,
    "Starting print from SD": PrinterState.PRINTING,
    "Starting to send file to SD": PrinterState.PRINTING,
    "Transferring file to SD": PrinterState.PRINTING,
    "Pausing": PrinterState.PRINTING,
    "Resuming": PrinterState.PRINTING,
    "Finishing": PrinterState.PRINTING,
    "Paused": PrinterState.PAUSED,
    "Cancelling": PrinterState.CANCELLING,
    "Error": PrinterState.ERROR,
    "Offline after error": PrinterState.ERROR,
    "Offline": PrinterState.OFFLINE,
    "Closed": PrinterState.OFFLINE,
    "Opening serial connection": PrinterState.OFFLINE,
    "Detecting serial connection": PrinterState.OFFLINE,
    "Connecting": PrinterState.OFFLINE,
}

# States in which the printer holds a job: starting another one must be refused.
BUSY_STATES: Final = frozenset(
    {PrinterState.PRINTING, PrinterState.PAUSED, PrinterState.CANCELLING}
)


def map_state(state_text: str) -> PrinterState:
    """OctoPrint's state text -> :class:`PrinterState`.

    An unknown text ("Unknown State (n)", a future state) maps to ERROR: a person should
    look, and the dispatcher must not start a print on a printer it does not understand.
    """
    if state_text.startswith("Offline after error") or state_text.startswith("Error"):
        return PrinterState.ERROR
    return _STATES.get(state_text, PrinterState.ERROR)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def parse_status(job: Mapping[str, Any], printer: Mapping[str, Any] | None) -> PrinterStatus:
    """Build a status from ``GET /api/job`` and, when connected, ``GET /api/printer``.

    Raises ``KeyError``/``TypeError``/``AttributeError`` on a body of the wrong shape;
    the driver turns those into :class:`PrinterFault`.
    """
    state_text = str(job["state"])
    state = map_state(state_text)
    file_info = (job.get("job") or {}).get("file") or {}
    progress = job.get("progress") or {}
    file_name = file_info.get("path") or file_info.get("name")
    error: str | None = None
    if state is PrinterState.ERROR:
        error = str(job.get("error") or "") or state_text
    temperatures: dict[str, tuple[float | None, float | None]] = {}
    if printer is not None:
        for sensor, reading in (printer.get("temperature") or {}).items():
            if isinstance(reading, Mapping) and sensor != "history":
                temperatures[str(sensor)] = (
                    _number(reading.get("actual")),
                    _number(reading.get("target")),
                )
    return PrinterStatus(
        state=state,
        state_text=state_text,
        file_name=str(file_name) if file_name else None,
        progress_pct=_number(progress.get("completion")),
        print_time_s=_number(progress.get("printTime")),
        print_time_left_s=_number(progress.get("printTimeLeft")),
        error=error,
        temperatures_c=temperatures,
    )


def parse_info(version: Mapping[str, Any], profiles: Mapping[str, Any] | None) -> PrinterInfo:
    """``/api/version`` + ``/api/printerprofiles`` -> :class:`PrinterInfo` (current profile)."""
    server_version = str(version.get("server") or version["text"])
    if not profiles:
        return PrinterInfo(server_version=server_version)
    candidates = list((profiles.get("profiles") or {}).values())
    profile = next((p for p in candidates if p.get("current")), None) or next(
        (p for p in candidates if p.get("default")), None
    )
    if profile is None:
        return PrinterInfo(server_version=server_version)
    volume = profile.get("volume") or {}
    extruder = profile.get("extruder") or {}
    return PrinterInfo(
        server_version=server_version,
        profile_name=str(profile.get("name") or profile.get("id") or "") or None,
        bed_x_mm=_number(volume.get("width")),
        bed_y_mm=_number(volume.get("depth")),
        max_z_mm=_number(volume.get("height")),
        nozzle_mm=_number(extruder.get("nozzleDiameter")),
    )
