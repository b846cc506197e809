"""OctoPrint driver: its REST API over ``httpx.AsyncClient`` with the ``X-Api-Key`` header.

Why httpx and not the ``octoprint_client`` module shipped in the OctoPrint wheel: that
module is synchronous (``requests``), opens a new session per call (no keep-alive), raises
nothing and parses nothing, and would make the engine depend on all of OctoPrint (204 MB,
AGPL server code). Async clients, one per concurrent poll (printers/polling.py), are
what let one worker follow a thousand printers.

Every httpx exception and every unwanted HTTP status is turned into the errors of
``printers/errors.py`` in :meth:`OctoPrintDriver._request`, the only place that calls
httpx. Messages name the printer URL, never its API key nor a password in the URL.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Sequence
from typing import Any, Final
from urllib.parse import quote

import httpx

from printers.drivers.base import PrinterInfo, PrinterState, PrinterStatus
from printers.drivers.octoprint_json import BUSY_STATES, map_state, parse_info, parse_status
from printers.errors import (
    PrinterAddressInvalid,
    PrinterAuthFailed,
    PrinterBusy,
    PrinterError,
    PrinterFault,
    PrinterFileMissing,
    PrinterRejected,
    PrinterTimeout,
    PrinterUnreachable,
)

DEFAULT_TIMEOUT_S: Final = 10.0
# A 20 MB G-code file over a fablab's uplink (~1 Mbit/s) needs minutes, not seconds.
DEFAULT_UPLOAD_TIMEOUT_S: Final = 300.0

__all__ = [
    "BUSY_STATES",
    "DEFAULT_TIMEOUT_S",
    "DEFAULT_UPLOAD_TIMEOUT_S",
    "OctoPrintDriver",
    "map_state",
    "parse_info",
    "parse_status",
]


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's default verifying context, built once per process: building it loads the
    CA bundle, 20-30 ms of CPU for every client (every dispatch and every printer
    command made a client; the load benchmark starts several prints a second)."""
    return httpx.create_ssl_context()


class OctoPrintDriver:
    """One OctoPrint server (or the simulator, which answers the same API).

    Pass ``client`` to share its connections with other drivers (the poller does); the
    driver then never closes it. Each request carries this printer's key.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        client: httpx.AsyncClient | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        upload_timeout_s: float = DEFAULT_UPLOAD_TIMEOUT_S,
    ) -> None:
        url = base_url.strip().rstrip("/")
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise PrinterAddressInvalid(
                f"The printer address {url!r} is not a valid URL.", printer_url=url
            ) from exc
        if parsed.scheme not in {"http", "https"} or not parsed.host:
            raise PrinterAddressInvalid(
                f"The printer address {url!r} must start with http:// or https:// and name a host.",
                printer_url=url,
            )
        self.base_url = url
        # What messages show: a reverse proxy's user:password@ stays out of logs.
        self.printer_url = (
            str(parsed.copy_with(username=None, password=None)) if (parsed.userinfo) else url
        )
        self._headers = {"X-Api-Key": api_key}
        self._timeout = httpx.Timeout(timeout_s)
        self._upload_timeout = httpx.Timeout(upload_timeout_s, connect=timeout_s)
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(verify=tls_context())

    def __repr__(self) -> str:
        return f"OctoPrintDriver({self.printer_url!r})"  # never the key

    async def __aenter__(self) -> OctoPrintDriver:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    # -- the protocol -------------------------------------------------------------------

    async def check(self) -> PrinterInfo:
        """Reachable, key accepted, profile read. Raises the printer error that says why not."""
        try:
            version = await self._json("GET", "/api/version")
        except PrinterFileMissing as exc:
            raise PrinterFault(
                f"The server at {self.printer_url} has no /api/version (HTTP 404): it is not "
                "an OctoPrint server, or it is still starting.",
                printer_url=self.printer_url,
            ) from exc
        try:
            profiles = await self._json("GET", "/api/printerprofiles")
        except PrinterFileMissing:
            profiles = None  # servers answering a subset of the API (404) have no profiles
        try:
            return parse_info(version, profiles)
        except (KeyError, TypeError, AttributeError) as exc:
            raise self._unreadable("/api/version", exc) from exc

    async def status(self, *, temperatures: bool = True) -> PrinterStatus:
        """State, selected file, progress, error and, unless told not to, temperatures.

        Reads ``/api/job`` first because ``/api/printer`` answers 409 whenever the
        printer is not connected, error states included. ``temperatures=False`` skips
        ``/api/printer`` (``temperatures_c`` is then empty): half the requests.
        """
        job = await self._json("GET", "/api/job")
        printer: dict[str, Any] | None = None
        try:
            state = map_state(str(job.get("state")))
            if temperatures and state not in {PrinterState.OFFLINE, PrinterState.ERROR}:
                try:
                    printer = await self._json(
                        "GET", "/api/printer", params={"exclude": "sd,state"}
                    )
                except PrinterBusy:
                    printer = None  # disconnected between the two requests
            return parse_status(job, printer)
        except (KeyError, TypeError, AttributeError) as exc:
            raise self._unreadable("/api/job", exc) from exc

    async def connect(self) -> None:
        """Connect OctoPrint to the printer with its saved port and baud rate."""
        await self._request("POST", "/api/connection", json={"command": "connect"})

    async def disconnect(self) -> None:
        await self._request("POST", "/api/connection", json={"command": "disconnect"})

    async def upload(self, file_name: str, gcode: bytes) -> None:
        """Store ``gcode`` as ``file_name``; never selects or starts it.

        Idempotent: uploading the same name again overwrites it. Raises
        :class:`PrinterBusy` (context ``file_name``) while that very file is printing.
        """
        try:
            response = await self._request(
                "POST",
                "/api/files/local",
                files={"file": (file_name, gcode, "application/octet-stream")},
                timeout=self._upload_timeout,
            )
        except PrinterBusy as exc:
            # The only 409 of an upload: this very file is being printed right now.
            exc.context["file_name"] = file_name
            raise
        stored = self._decode(response, "/api/files/local")
        try:
            stored_name = stored["files"]["local"]["path"]
        except (KeyError, TypeError) as exc:
            raise self._unreadable("/api/files/local", exc) from exc
        if stored_name != file_name:
            raise PrinterRejected(
                f"The printer at {self.printer_url} stored the file as {stored_name!r} "
                f"instead of {file_name!r}; use names of letters, digits, '-', '_' and '.'.",
                printer_url=self.printer_url,
                file_name=file_name,
            )

    async def start(self, file_name: str) -> None:
        """Select ``file_name`` and print it.

        Never starts a second print: raises :class:`PrinterBusy` (context ``file_name`` =
        what it prints) if the printer holds a job, and when it is not operational.
        Raises :class:`PrinterFileMissing` if the file is not on the printer.
        """
        current = await self.status()
        if current.state in BUSY_STATES:
            raise PrinterBusy(
                f"The printer at {self.printer_url} is {current.state_text.lower()} "
                f"{current.file_name or 'a job'}; it will not start {file_name}.",
                printer_url=self.printer_url,
                file_name=current.file_name,
                state=current.state.value,
            )
        if current.state is not PrinterState.OPERATIONAL:
            raise PrinterBusy(
                f"The printer at {self.printer_url} is not ready to print "
                f"(state: {current.state_text}).",
                printer_url=self.printer_url,
                file_name=current.file_name,
                state=current.state.value,
            )
        # OctoPrint's own 409 still guards the window between the check and this call.
        await self._request(
            "POST", self._file_path(file_name), json={"command": "select", "print": True}
        )

    async def pause(self) -> None:
        """Raises :class:`PrinterBusy` when nothing is printing. Pausing twice is a no-op."""
        await self._request("POST", "/api/job", json={"command": "pause", "action": "pause"})

    async def resume(self) -> None:
        await self._request("POST", "/api/job", json={"command": "pause", "action": "resume"})

    async def cancel(self) -> None:
        """Raises :class:`PrinterBusy` when nothing is printing or paused."""
        await self._request("POST", "/api/job", json={"command": "cancel"})

    async def has_file(self, file_name: str) -> bool:
        try:
            await self._request("GET", self._file_path(file_name))
        except PrinterFileMissing:
            return False
        return True

    # -- beyond the protocol: maintenance and failure drills ----------------------------

    async def delete_file(self, file_name: str) -> None:
        """Raises :class:`PrinterBusy` for the file being printed, PrinterFileMissing."""
        await self._request("DELETE", self._file_path(file_name))

    async def send_commands(self, commands: Sequence[str]) -> None:
        """Send raw G-code lines (``!!DEBUG:...`` lines inject faults on virtual printers)."""
        await self._request("POST", "/api/printer/command", json={"commands": list(commands)})

    # -- the boundary -------------------------------------------------------------------

    def _file_path(self, file_name: str) -> str:
        return "/api/files/local/" + quote(file_name, safe="")

    async def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return self._decode(await self._request(method, path, **kwargs), path)

    def _decode(self, response: httpx.Response, path: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError as exc:
            raise self._unreadable(path, exc) from exc
        if not isinstance(body, dict):
            raise self._unreadable(path, TypeError(type(body).__name__))
        return body

    def _unreadable(self, path: str, exc: BaseException) -> PrinterFault:
        return PrinterFault(
            f"The printer at {self.printer_url} answered {path} with something that is not "
            f"OctoPrint's JSON ({type(exc).__name__}).",
            printer_url=self.printer_url,
        )

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The one place httpx is called: its errors and bad statuses become ours."""
        url = self.base_url + path
        kwargs.setdefault("timeout", self._timeout)
        try:
            response = await self._client.request(method, url, headers=self._headers, **kwargs)
        except httpx.TimeoutException as exc:
            raise PrinterTimeout(
                f"The printer at {self.printer_url} did not answer in time "
                f"({type(exc).__name__} on {path}).",
                printer_url=self.printer_url,
            ) from exc
        except (httpx.TransportError, httpx.DecodingError) as exc:
            # Refused, reset, DNS failure, connection dropped mid-answer.
            raise PrinterUnreachable(
                f"The printer at {self.printer_url} cannot be reached ({type(exc).__name__}: "
                f"{exc or 'no detail'}).",
                printer_url=self.printer_url,
            ) from exc
        if response.is_success:
            return response
        raise self._status_error(response, path)

    def _status_error(self, response: httpx.Response, path: str) -> PrinterError:
        status = response.status_code
        said = _error_text(response)
        context = {"printer_url": self.printer_url, "status_code": status}
        # Without a valid key OctoPrint treats a POST as a browser form and answers
        # 400 "CSRF validation failed" before looking at permissions (seen on 1.11.8).
        if status in {401, 403} or (status == 400 and "CSRF" in said):
            return PrinterAuthFailed(
                f"The printer at {self.printer_url} refused the API key (HTTP {status}); "
                "check the key in OctoPrint's user settings.",
                **context,
            )
        if status == 409:
            return PrinterBusy(
                f"The printer at {self.printer_url} refused {path} in its current state: "
                f"{said or 'HTTP 409'}.",
                **context,
            )
        if status == 404:
            return PrinterFileMissing(
                f"The printer at {self.printer_url} has no {path} (HTTP 404).", **context
            )
        if status >= 500:
            return PrinterFault(
                f"The printer at {self.printer_url} failed on {path} (HTTP {status}"
                + (f": {said}" if said else "")
                + ").",
                **context,
            )
        # 400 (an empty body means the upload exceeded the server's size limit), 413, 415.
        return PrinterRejected(
            f"The printer at {self.printer_url} rejected {path} (HTTP {status}: "
            f"{said or 'no reason given, often a file larger than its upload limit'}).",
            **context,
        )


def _error_text(response: httpx.Response) -> str:
    """OctoPrint's ``{"error": "..."}`` text, or a short plain body, or ''."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200]
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    return ""
