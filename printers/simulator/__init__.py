"""A fleet of simulated printers answering OctoPrint's REST API, for scale tests and demos.

    fleet = SimulatedFleet(1000, time_scale=60)
    with serve_in_thread(fleet) as running:
        address = running.address(1)  # base_url .../printers/1 and its api_key

or as a process: ``python -m printers.simulator --count 1000 --port 8500``. The ASGI
app is ``create_app(fleet)``.
"""

from printers.simulator.app import create_app
from printers.simulator.fleet import (
    DEMO_PROFILES,
    Faults,
    RunningSimulator,
    SimulatedFleet,
    SimulatedPrinterAddress,
    make_server,
    serve_in_thread,
)
from printers.simulator.printer import Profile, SimulatedPrinter

__all__ = [
    "DEMO_PROFILES",
    "Faults",
    "Profile",
    "RunningSimulator",
    "SimulatedFleet",
    "SimulatedPrinter",
    "SimulatedPrinterAddress",
    "create_app",
    "make_server",
    "serve_in_thread",
]
