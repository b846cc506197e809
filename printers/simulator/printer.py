"""One simulated printer: OctoPrint's job and connection states, advanced lazily.

Nothing runs between requests: every read first brings the state up to the clock
(``_advance``), so a thousand idle printers cost nothing. The rules and the texts are
those observed on OctoPrint 1.11.8 with its virtual printer (shared/notes/octoprint.md);
the contract suite in tests/printers checks them against a real server.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from printers.simulator.gcode import GcodeEstimate

# Transient states last this long on the virtual printer (measured: Pausing 0.28 s,
# Cancelling 0.04-0.05 s); kept so pollers meet them now and then, as with OctoPrint.
PAUSING_S: Final = 0.3
CANCELLING_S: Final = 0.05
AMBIENT_C: Final = 21.3
MIN_PRINT_S: Final = 0.5

# Error texts OctoPrint shows in /api/job "error" after each failure (verbatim).
ERROR_DROPPED: Final = "SerialTimeoutException: "
ERROR_FATAL: Final = (
    "Thermal Runaway, system stopped! Heater_ID: bed - Printer halted. kill() called!"
)
ERROR_ESTOP: Final = "Closing serial port due to emergency stop M112."
ERROR_AWOL: Final = "Too many consecutive timeouts, printer still connected and alive?"


class Refused(Exception):
    """A request OctoPrint refuses: carries its HTTP status and its ``error`` text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


NOT_OPERATIONAL = "Printer is not operational"


@dataclass(frozen=True, slots=True)
class Profile:
    """The subset of an OctoPrint printer profile distrifab reads."""

    id: str
    name: str
    model: str
    width_mm: float
    depth_mm: float
    height_mm: float
    nozzle_mm: float = 0.4
    heated_bed: bool = True


DEFAULT_PROFILE: Final = Profile("_default", "Default", "Generic RepRap Printer", 200, 200, 200)


@dataclass(slots=True)
class StoredFile:
    name: str
    size: int
    date: int  # epoch seconds, as OctoPrint reports it
    sha1: str
    estimate: GcodeEstimate
    print_times_s: list[float] = field(default_factory=list)


@dataclass(slots=True)
class Run:
    """The selected file's print: OctoPrint's job, from start to its end."""

    file: StoredFile
    duration_s: float  # simulated wall time
    started_at: float
    phase: str = "printing"  # printing | pausing | paused | cancelling | done | cancelled
    phase_until: float = 0.0  # end of a transient phase
    paused_at: float | None = None
    paused_total_s: float = 0.0
    awol_at: float | None = None  # the printer went silent: progress freezes

    def active_s(self, now: float) -> float:
        stop = now
        if self.paused_at is not None:
            stop = self.paused_at
        if self.awol_at is not None:
            stop = min(stop, self.awol_at)
        return max(0.0, stop - self.started_at - self.paused_total_s)


class SimulatedPrinter:
    """State of one printer behind a simulated OctoPrint."""

    def __init__(
        self,
        number: int,
        api_key: str,
        *,
        profile: Profile = DEFAULT_PROFILE,
        time_scale: float = 20.0,
        awol_timeout_s: float = 6.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.number = number
        self.api_key = api_key
        self.profile = profile
        # 20x: the virtual printer runs a 601 s file in ~32 s (measured), close to this.
        self.time_scale = time_scale
        self.awol_timeout_s = awol_timeout_s
        self._clock = clock
        self._wall_clock = wall_clock
        self.connected = True  # autoconnect, like the test servers
        # OctoPrint keeps the last error text until the next connect.
        self.error: str | None = None
        self.closed_by_error = False
        self.files: dict[str, StoredFile] = {}
        self.selected: StoredFile | None = None
        self.run: Run | None = None

    def now(self) -> float:
        return self._clock()

    # -- state ----------------------------------------------------------------------------

    def _advance(self) -> float:
        now = self._clock()
        run = self.run
        if run is None or not self.connected:
            return now
        if run.awol_at is not None and now >= run.awol_at + self.awol_timeout_s:
            self._fail(ERROR_AWOL)
        elif run.phase == "printing" and run.active_s(now) >= run.duration_s:
            run.phase = "done"
            run.file.print_times_s.append(run.duration_s)
        elif run.phase == "pausing" and now >= run.phase_until:
            run.phase = "paused"
        elif run.phase == "cancelling" and now >= run.phase_until:
            run.phase = "cancelled"
        return now

    def state_text(self) -> str:
        self._advance()
        if not self.connected:
            return "Offline after error" if self.closed_by_error else "Offline"
        run = self.run
        if run is None or run.phase in {"done", "cancelled"}:
            return "Operational"
        return {
            "printing": "Printing",
            "pausing": "Pausing",
            "paused": "Paused",
            "cancelling": "Cancelling",
        }[run.phase]

    def _holds_job(self) -> bool:
        return self.state_text() in {"Printing", "Pausing", "Paused", "Cancelling"}

    def _fail(self, message: str) -> None:
        """Firmware error or lost serial line: OctoPrint closes the port, the job is lost."""
        self.connected = False
        self.error = message
        self.closed_by_error = True
        self.selected = None
        self.run = None

    # -- connection -----------------------------------------------------------------------

    def connect(self) -> None:
        self._advance()
        if not self.connected:
            self.connected = True
            self.error = None
            self.closed_by_error = False

    def disconnect(self) -> None:
        """A print in progress is abandoned without error; a no-op once closed, which
        leaves "Offline after error" and its text as they are (seen on 1.11.8)."""
        self._advance()
        if not self.connected:
            return
        self.connected = False
        self.closed_by_error = False
        self.selected = None
        self.run = None

    def restart_server(self) -> None:
        """The OctoPrint host came back after a crash: files kept, job forgotten."""
        self.connected = True
        self.error = None
        self.closed_by_error = False
        self.selected = None
        self.run = None

    def reset(self) -> None:
        """Back to a connected, idle printer without files (between tests)."""
        self.restart_server()
        self.files.clear()

    # -- files ----------------------------------------------------------------------------

    def store(self, name: str, gcode: bytes, estimate: GcodeEstimate) -> None:
        if self._holds_job() and self.selected is not None and self.selected.name == name:
            raise Refused(409, "Trying to overwrite file that is currently being printed")
        stored = StoredFile(
            name=name,
            size=len(gcode),
            date=int(self._wall_clock()),
            sha1=hashlib.sha1(gcode, usedforsecurity=False).hexdigest(),
            estimate=estimate,
        )
        self.files[name] = stored
        if self.selected is not None and self.selected.name == name:
            self.selected = stored  # OctoPrint reselects a re-uploaded selected file
            self.run = None

    def delete(self, name: str) -> None:
        if name not in self.files:
            raise Refused(404, "")
        if self._holds_job() and self.selected is not None and self.selected.name == name:
            raise Refused(409, "Trying to delete a file that is currently in use")
        del self.files[name]
        if self.selected is not None and self.selected.name == name:
            self.selected = None
            self.run = None

    def select(self, name: str, *, start: bool) -> None:
        if name not in self.files:
            raise Refused(404, "")
        if self._holds_job() or not self.connected:
            # OctoPrint's text, misleading when disconnected, kept for fidelity.
            raise Refused(409, "Printer is already printing, cannot select a new file")
        self.selected = self.files[name]
        self.run = None
        if start:
            self._start()

    def _start(self) -> None:
        assert self.selected is not None
        duration_s = max(MIN_PRINT_S, self.selected.estimate.print_s / self.time_scale)
        self.run = Run(file=self.selected, duration_s=duration_s, started_at=self._clock())

    # -- job ------------------------------------------------------------------------------

    def job_command(self, command: str, action: str) -> None:
        state = self.state_text()
        if not self.connected:
            raise Refused(409, NOT_OPERATIONAL)
        active = state in {"Printing", "Pausing", "Paused", "Cancelling"}
        if command == "start":
            if active:
                raise Refused(
                    409, "Printer already has an active print job, did you mean 'restart'?"
                )
            if self.selected is not None:  # OctoPrint answers 204 and does nothing otherwise
                self._start()
        elif command == "restart":
            if state != "Paused":
                raise Refused(409, "Printer does not have an active print job or is not paused")
            self._start()
        elif command in {"pause", "cancel"} and not active:
            raise Refused(
                409,
                f"Printer is neither printing nor paused, '{command}' command cannot be performed",
            )
        elif command == "pause":
            if action == "toggle":
                action = "resume" if state in {"Paused", "Pausing"} else "pause"
            if action == "pause":
                self._pause()
            elif action == "resume":
                self._resume()
            else:
                raise Refused(400, "Unknown action")
        elif command == "cancel":
            assert self.run is not None
            if self.run.phase != "cancelling":
                self.run.phase = "cancelling"
                self.run.phase_until = self._clock() + CANCELLING_S
        else:
            raise Refused(400, "command is invalid")

    def _pause(self) -> None:
        run = self.run
        if run is None or run.phase != "printing":
            return  # pausing a paused print is a no-op
        now = self._clock()
        run.phase = "pausing"
        run.phase_until = now + PAUSING_S
        run.paused_at = now

    def _resume(self) -> None:
        run = self.run
        if run is None or run.phase not in {"pausing", "paused"} or run.paused_at is None:
            return
        run.paused_total_s += self._clock() - run.paused_at
        run.paused_at = None
        run.phase = "printing"

    def gcode_commands(self, commands: list[str]) -> None:
        """``/api/printer/command``: ``!!DEBUG:`` fault triggers as on the virtual printer."""
        self._advance()
        if not self.connected:
            raise Refused(409, NOT_OPERATIONAL)
        for command in commands:
            line = command.strip()
            if line == "!!DEBUG:drop_connection":
                self._fail(ERROR_DROPPED)
            elif line == "!!DEBUG:trigger_fatal_error_marlin":
                self._fail(ERROR_FATAL)
            elif line.split(None, 1)[:1] == ["M112"]:
                self._fail(ERROR_ESTOP)
            elif line == "!!DEBUG:action_pause":
                self._pause()
            elif line == "!!DEBUG:action_resume":
                self._resume()
            elif line == "!!DEBUG:go_awol" and self.run is not None:
                self.run.awol_at = self._clock()
            if not self.connected:
                return  # the port is closed: the rest is never sent
