"""The one interface distrifab uses to talk to a printer.

Every driver (OctoPrint over REST, the simulator which answers the same HTTP
API) maps its transport failures onto the errors of ``printers/errors.py`` at
this boundary, so nothing above it sees httpx or socket exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class PrinterState(StrEnum):
    OFFLINE = "offline"  # not connected to the machine, or the server does not answer
    OPERATIONAL = "operational"  # idle and ready
    PRINTING = "printing"  # printing, pausing, finishing, starting
    PAUSED = "paused"
    CANCELLING = "cancelling"
    ERROR = "error"  # "Offline after error" and the like: needs a person


@dataclass(frozen=True, slots=True)
class PrinterStatus:
    state: PrinterState
    state_text: str  # what the printer said, verbatim
    file_name: str | None = None  # file selected or printing
    progress_pct: float | None = None  # 0..100; None when unknown (cancelled prints lose it)
    print_time_s: float | None = None
    print_time_left_s: float | None = None
    error: str | None = None
    temperatures_c: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PrinterInfo:
    server_version: str
    profile_name: str | None = None
    bed_x_mm: float | None = None
    bed_y_mm: float | None = None
    max_z_mm: float | None = None
    nozzle_mm: float | None = None


class PrinterDriver(Protocol):
    """Async so that one worker can follow many printers at once."""

    async def check(self) -> PrinterInfo: ...
    async def status(self) -> PrinterStatus: ...
    async def connect(self) -> None: ...
    async def upload(self, file_name: str, gcode: bytes) -> None: ...
    async def start(self, file_name: str) -> None: ...
    async def pause(self) -> None: ...
    async def resume(self) -> None: ...
    async def cancel(self) -> None: ...
    async def has_file(self, file_name: str) -> bool: ...
    async def aclose(self) -> None: ...
