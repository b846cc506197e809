"""A fleet of simulated printers and the server that exposes it.

``SimulatedFleet(count)`` numbers printers 1..count; printer ``n`` answers under
``<server>/printers/<n>`` with its own key (:meth:`SimulatedFleet.api_key`, derived from
the seed so a demo can register the same fleet again after a restart).
:func:`serve_in_thread` runs it with uvicorn on a loopback port for tests and the demo.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

import uvicorn

from printers.simulator.printer import DEFAULT_PROFILE, Profile, SimulatedPrinter

# A few common machines so that a demo fleet is not uniform (bed sizes from the makers).
DEMO_PROFILES: Final = (
    DEFAULT_PROFILE,
    Profile("prusa_mk4", "Prusa MK4", "Original Prusa MK4", 250, 210, 220),
    Profile("ender3_v2", "Ender-3 V2", "Creality Ender-3 V2", 220, 220, 250),
    Profile("bambu_p1s", "Bambu P1S", "Bambu Lab P1S", 256, 256, 256),
)
START_TIMEOUT_S: Final = 30.0


@dataclass(slots=True)
class Faults:
    """Failures injected into one printer's HTTP answers (see the app's ``_sim`` routes)."""

    http_status: int = 0  # answer every API call with this status (409, 500, ...)
    message: str = ""
    delay_s: float = 0.0  # answer this late
    down: bool = False  # never answer


class SimulatedFleet:
    """Printers 1..count with their fault switches; owned by the server's event loop."""

    def __init__(
        self,
        count: int,
        *,
        seed: str = "distrifab",
        time_scale: float = 20.0,
        profiles: Sequence[Profile] = (DEFAULT_PROFILE,),
        awol_timeout_s: float = 6.0,
    ) -> None:
        if count < 1:
            raise ValueError("a fleet needs at least one printer")
        self.seed = seed
        self.printers: dict[int, SimulatedPrinter] = {
            n: SimulatedPrinter(
                n,
                self.api_key(n),
                profile=profiles[(n - 1) % len(profiles)],
                time_scale=time_scale,
                awol_timeout_s=awol_timeout_s,
            )
            for n in range(1, count + 1)
        }
        self.faults: dict[int, Faults] = {n: Faults() for n in self.printers}

    def api_key(self, number: int) -> str:
        digest = hashlib.sha256(f"{self.seed}:{number}".encode()).hexdigest()
        return f"sim-{number}-{digest[:24]}"


@dataclass(frozen=True, slots=True)
class SimulatedPrinterAddress:
    number: int
    base_url: str
    api_key: str


class RunningSimulator:
    """A fleet being served; ``address(n)`` says where printer ``n`` answers."""

    def __init__(self, fleet: SimulatedFleet, server: uvicorn.Server, port: int) -> None:
        self.fleet = fleet
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._server = server

    def address(self, number: int) -> SimulatedPrinterAddress:
        return SimulatedPrinterAddress(
            number, f"{self.url}/printers/{number}", self.fleet.api_key(number)
        )

    def addresses(self) -> list[SimulatedPrinterAddress]:
        return [self.address(n) for n in self.fleet.printers]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_server(fleet: SimulatedFleet, *, host: str, port: int) -> uvicorn.Server:
    from printers.simulator.app import create_app  # the app imports this module

    config = uvicorn.Config(
        create_app(fleet),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        # Pollers keep connections alive between rounds 5 s apart; uvicorn's 5 s default
        # would close them just as they are reused.
        timeout_keep_alive=75,
        backlog=4096,
        # Requests held by "down" printers must not keep a stopping server alive.
        timeout_graceful_shutdown=2,
    )
    return uvicorn.Server(config)


@contextmanager
def serve_in_thread(
    fleet: SimulatedFleet, *, host: str = "127.0.0.1", port: int = 0
) -> Iterator[RunningSimulator]:
    """Serve ``fleet`` from a daemon thread until the block ends (``port=0``: a free one)."""
    port = port or _free_port()
    server = make_server(fleet, host=host, port=port)
    thread = threading.Thread(target=server.run, name=f"simulator-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the printer simulator did not start on {host}:{port}")
        time.sleep(0.01)
    try:
        yield RunningSimulator(fleet, server, port)
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT_S)
