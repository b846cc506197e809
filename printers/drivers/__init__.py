"""Printer drivers and the factory that picks one for a printer record."""

from __future__ import annotations

from typing import Final

import httpx

from printers.drivers.base import PrinterDriver, PrinterInfo, PrinterState, PrinterStatus
from printers.drivers.octoprint import DEFAULT_TIMEOUT_S, OctoPrintDriver

__all__ = [
    "DRIVER_KINDS",
    "OctoPrintDriver",
    "PrinterDriver",
    "PrinterInfo",
    "PrinterState",
    "PrinterStatus",
    "make_driver",
]

# "simulator" printers answer OctoPrint's REST API (printers/simulator), so the same
# driver serves both: the contract suite checks that this stays true.
DRIVER_KINDS: Final = ("octoprint", "simulator")


def make_driver(
    kind: str,
    base_url: str,
    api_key: str,
    *,
    client: httpx.AsyncClient | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> OctoPrintDriver:
    """The driver for a printer of ``kind``.

    ``client`` is shared and left open (pass the poller's); without it the driver owns a
    client, closed by ``aclose()``. Raises ``ValueError`` for an unknown kind and
    :class:`printers.errors.PrinterAddressInvalid` for a URL that is not http(s).
    """
    if kind not in DRIVER_KINDS:
        raise ValueError(f"unknown printer kind {kind!r}; expected one of {DRIVER_KINDS}")
    return OctoPrintDriver(base_url, api_key, client=client, timeout_s=timeout_s)
