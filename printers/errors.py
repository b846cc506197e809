"""Printer errors, one tree, raised by drivers at their boundary."""

from __future__ import annotations

from core.errors import Conflict, DomainError, Invalid, NotFound, Unavailable


class PrinterError(DomainError):
    code = "printer_error"


class PrinterUnreachable(PrinterError, Unavailable):
    """Connection refused, DNS failure, network down."""

    code = "printer_unreachable"


class PrinterTimeout(PrinterUnreachable):
    code = "printer_timeout"


class PrinterAuthFailed(PrinterError, Invalid):
    """The server answered but refused the API key."""

    code = "printer_auth_failed"


class PrinterBusy(PrinterError, Conflict):
    """The printer is not in a state that allows the command (HTTP 409 from OctoPrint)."""

    code = "printer_busy"


class PrinterRejected(PrinterError, Invalid):
    """The printer refused the request itself (bad file type, file too large, bad command)."""

    code = "printer_rejected"


class PrinterFault(PrinterError, Unavailable):
    """The printer's server failed (HTTP 5xx) or answered something unreadable."""

    code = "printer_fault"


class PrinterFileMissing(PrinterError, NotFound):
    """The printer has no file of that name (HTTP 404 on a file): upload it first."""

    code = "printer_file_missing"


class PrinterAddressInvalid(PrinterError, Invalid):
    """The printer's base URL cannot be used (no http/https scheme, no host)."""

    code = "printer_address_invalid"
