"""Helpers shared by the printer tests: endpoints under test and waiting on a status."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import anyio

from printers.drivers import OctoPrintDriver, PrinterStatus, make_driver

# Generous: a loaded shared machine slows OctoPrint; tests wait on states, never on time.
WAIT_S = 60.0


@dataclass(frozen=True)
class Endpoint:
    """A printer under test: the real OctoPrint or the simulator, same REST API."""

    kind: str  # "octoprint" | "simulator"
    base_url: str
    api_key: str

    def driver(self, *, api_key: str | None = None, timeout_s: float = 10.0) -> OctoPrintDriver:
        return make_driver(
            self.kind,
            self.base_url,
            self.api_key if api_key is None else api_key,
            timeout_s=timeout_s,
        )


async def wait_for(
    driver: OctoPrintDriver,
    accept: Callable[[PrinterStatus], bool],
    *,
    what: str,
    timeout_s: float = WAIT_S,
) -> PrinterStatus:
    """Poll ``driver.status()`` every 50 ms until ``accept`` says yes."""
    status = await driver.status()
    with anyio.move_on_after(timeout_s):
        while not accept(status):
            await anyio.sleep(0.05)
            status = await driver.status()
        return status
    raise AssertionError(f"{driver.base_url} never reached {what}; last status {status}")
