"""The HTTP face of a simulated fleet: OctoPrint's REST subset under ``/printers/<n>``.

One ASGI app serves every printer of the fleet, each under its own path prefix with its
own API key, answering the status codes and JSON shapes of OctoPrint 1.11.8. Beyond
OctoPrint, ``/printers/<n>/_sim/...`` injects failures no real server offers on demand
(see :func:`_sim_control`).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any, Final

import anyio
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from printers.simulator import shapes
from printers.simulator.fleet import Faults, SimulatedFleet
from printers.simulator.gcode import estimate
from printers.simulator.printer import Refused, SimulatedPrinter

OCTOPRINT_VERSION: Final = "1.11.8"
MACHINECODE_SUFFIXES: Final = (".gcode", ".gco", ".g")
TRUE_WORDS: Final = frozenset({"true", "yes", "y", "1"})
# Flask's texts, verbatim, for the answers OctoPrint gives without a reason of its own.
NOT_FOUND_TEXT: Final = (
    "The requested URL was not found on the server. If you entered the URL manually "
    "please check your spelling and try again."
)
FORBIDDEN_TEXT: Final = (
    "You don't have the permission to access the requested resource. It is either "
    "read-protected or not readable by the server."
)
SERVER_ERROR_HTML: Final = (
    "<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n"
    "<h1>Internal Server Error</h1>\n<p>The server encountered an internal error and was "
    "unable to complete your request.</p>\n"
)
# A "down" printer holds the request until the client gives up, at most this long.
DOWN_HOLD_S: Final = 600.0

Handler = Callable[[Request, SimulatedPrinter, str], Awaitable[Response]]


def error(status: int, message: str) -> Response:
    if status >= 500:
        return Response(SERVER_ERROR_HTML, status, media_type="text/html; charset=utf-8")
    if status == 400 and not message:
        return Response(b"", 400)  # what tornado sends for an upload over the size limit
    return JSONResponse({"error": message or NOT_FOUND_TEXT}, status)


NO_CONTENT: Final = Response(status_code=204)


def _api_key(request: Request) -> str:
    key = request.headers.get("x-api-key")
    if key is None:
        auth = request.headers.get("authorization", "")
        key = auth[7:] if auth.lower().startswith("bearer ") else None
    return key or request.query_params.get("apikey", "")


async def _json_body(request: Request) -> dict[str, Any]:
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise Refused(400, "Expected content-type JSON")
    try:
        body = await request.json()
    except ValueError as exc:
        raise Refused(400, "Malformed JSON body or wrong content-type in request") from exc
    if not isinstance(body, dict):
        raise Refused(400, "Malformed JSON body or wrong content-type in request")
    return body


async def _command(request: Request, valid: set[str]) -> tuple[str, dict[str, Any]]:
    body = await _json_body(request)
    command = body.get("command")
    if command not in valid:
        raise Refused(400, "command is invalid")
    return str(command), body


class SimulatorApp:
    """ASGI app over a :class:`SimulatedFleet`; all state lives on the server's loop."""

    def __init__(self, fleet: SimulatedFleet, *, max_upload_bytes: int = 1 << 30) -> None:
        self.fleet = fleet
        self.max_upload_bytes = max_upload_bytes
        self._routes: dict[tuple[str, str], Handler] = {
            ("GET", "api/version"): self._version,
            ("GET", "api/connection"): self._connection,
            ("POST", "api/connection"): self._connection_command,
            ("GET", "api/printer"): self._printer,
            ("POST", "api/printer/command"): self._printer_command,
            ("GET", "api/job"): self._job,
            ("POST", "api/job"): self._job_command,
            ("GET", "api/printerprofiles"): self._profiles,
            ("GET", "api/files"): self._files,
            ("GET", "api/files/local"): self._files,
            ("POST", "api/files/local"): self._upload,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan and websockets: nothing to set up, nothing served
        request = Request(scope, receive)
        response = await self._dispatch(request)
        await response(scope, receive, send)

    async def _dispatch(self, request: Request) -> Response:
        parts = request.scope["path"].strip("/").split("/", 2)  # ASGI: percent-decoded
        if len(parts) < 3 or parts[0] != "printers" or not parts[1].isdigit():
            return error(404, "")
        printer = self.fleet.printers.get(int(parts[1]))
        if printer is None:
            return error(404, "")
        rest = parts[2]
        faults = self.fleet.faults[printer.number]
        if rest.startswith("_sim/"):
            return await self._sim_control(request, printer, rest[5:])
        if faults.down:
            await _hold_until_client_leaves(request)
            return error(500, "")
        if faults.delay_s:
            await anyio.sleep(faults.delay_s)
        if not hmac.compare_digest(_api_key(request).encode(), printer.api_key.encode()):
            # Without a valid key OctoPrint checks CSRF first on anything but a read.
            if request.method in {"GET", "HEAD", "OPTIONS"}:
                return error(403, FORBIDDEN_TEXT)
            return error(400, "CSRF validation failed")
        if faults.http_status:
            return error(faults.http_status, faults.message)
        try:
            handler = self._routes.get((request.method, rest))
            if handler is not None:
                return await handler(request, printer, rest)
            if rest.startswith("api/files/local/"):
                return await self._file(request, printer, rest[16:])
            return error(404, "")
        except Refused as refused:
            return error(refused.status, refused.message)

    # -- OctoPrint ------------------------------------------------------------------------

    async def _version(self, request: Request, printer: SimulatedPrinter, _: str) -> Response:
        return JSONResponse(
            {"api": "0.1", "server": OCTOPRINT_VERSION, "text": f"OctoPrint {OCTOPRINT_VERSION}"}
        )

    async def _connection(self, request: Request, printer: SimulatedPrinter, _: str) -> Response:
        return JSONResponse(shapes.connection_body(printer))

    async def _connection_command(
        self, request: Request, printer: SimulatedPrinter, _: str
    ) -> Response:
        command, body = await _command(request, {"connect", "disconnect", "fake_ack"})
        if command == "connect":
            if "port" in body and body["port"] not in {"VIRTUAL", "AUTO"}:
                raise Refused(400, "port is invalid")
            printer.connect()
        elif command == "disconnect":
            printer.disconnect()
        return NO_CONTENT

    async def _printer(self, request: Request, printer: SimulatedPrinter, _: str) -> Response:
        exclude = {part.strip() for part in request.query_params.get("exclude", "").split(",")}
        return JSONResponse(shapes.printer_body(printer, exclude))

    async def _printer_command(
        self, request: Request, printer: SimulatedPrinter, _: str
    ) -> Response:
        if not printer.connected:
            raise Refused(409, "Printer is not operational")
        body = await _json_body(request)
        if "command" in body and "commands" in body:
            raise Refused(400, "'command' and 'commands' are mutually exclusive")
        if "command" in body:
            commands = [str(body["command"])]
        elif isinstance(body.get("commands"), list):
            commands = [str(line) for line in body["commands"]]
        else:
            raise Refused(400, "Need one of 'command', 'commands' or 'script'")
        printer.gcode_commands(commands)
        return NO_CONTENT

    async def _job(self, request: Request, printer: SimulatedPrinter, _: str) -> Response:
        return JSONResponse(shapes.job_body(printer))

    async def _job_command(self, request: Request, printer: SimulatedPrinter, _: str) -> Response:
        if not printer.connected:
            raise Refused(409, "Printer is not operational")
        command, body = await _command(request, {"start", "restart", "pause", "cancel"})
        printer.job_command(command, str(body.get("action", "toggle")))
        return NO_CONTENT

    async def _profiles(self, request: Request, printer: SimulatedPrinter, _: str) -> Response:
        return JSONResponse(shapes.profiles_body(printer.profile, self._base(request, printer)))

    def _base(self, request: Request, printer: SimulatedPrinter) -> str:
        return f"{request.url.scheme}://{request.url.netloc}/printers/{printer.number}"

    async def _files(self, request: Request, printer: SimulatedPrinter, _: str) -> Response:
        entries = [
            shapes.file_entry(printer.files[name], self._base(request, printer))
            for name in sorted(printer.files)
        ]
        used = sum(f.size for f in printer.files.values())
        return JSONResponse({"files": entries, "free": (1 << 34) - used, "total": 1 << 34})

    async def _upload(self, request: Request, printer: SimulatedPrinter, _: str) -> Response:
        if int(request.headers.get("content-length") or 0) > self.max_upload_bytes:
            raise Refused(400, "")
        form = await request.form()
        try:
            upload = form.get("file")
            if not isinstance(upload, UploadFile) or not upload.filename:
                raise Refused(400, "No file to upload and no folder to create")
            name = _sanitize(upload.filename)
            if not name:
                raise Refused(400, "Can not upload file, invalid file name")
            if not name.lower().endswith(MACHINECODE_SUFFIXES):
                raise Refused(415, "Could not upload file, invalid type")
            gcode = await upload.read()
            select = str(form.get("select", "")).lower() in TRUE_WORDS
            start = str(form.get("print", "")).lower() in TRUE_WORDS
        finally:
            await form.close()
        # Reading a large file takes tenths of a second: keep the other printers answering.
        found = await anyio.to_thread.run_sync(estimate, gcode)
        printer.store(name, gcode, found)
        # Like OctoPrint: select/print only take effect on an idle, connected printer.
        effective = (select or start) and printer.state_text() == "Operational"
        if effective:
            printer.select(name, start=start)
        base = self._base(request, printer)
        return JSONResponse(
            {
                "done": True,
                "effectivePrint": effective and start,
                "effectiveSelect": effective,
                "files": {
                    "local": {
                        "name": name,
                        "origin": "local",
                        "path": name,
                        "refs": {
                            "download": f"{base}/downloads/files/local/{name}",
                            "resource": f"{base}/api/files/local/{name}",
                        },
                    }
                },
            },
            201,
            headers={"Location": f"{base}/api/files/local/{name}"},
        )

    async def _file(self, request: Request, printer: SimulatedPrinter, name: str) -> Response:
        if request.method == "GET":
            if name not in printer.files:
                raise Refused(404, "")
            return JSONResponse(
                shapes.file_entry(printer.files[name], self._base(request, printer))
            )
        if request.method == "DELETE":
            printer.delete(name)
            return NO_CONTENT
        if request.method == "POST":
            command, body = await _command(request, {"select", "unselect"})
            if command == "select":
                if name not in printer.files:
                    raise Refused(404, "")
                start = (
                    str(body.get("print", "")).lower() in TRUE_WORDS or body.get("print") is True
                )
                if start and not printer.connected:
                    raise Refused(409, "Printer is already printing, cannot select a new file")
                printer.select(name, start=start)
            return NO_CONTENT
        raise Refused(405, "The method is not allowed for the requested URL.")

    # -- beyond OctoPrint: failure drills -------------------------------------------------

    async def _sim_control(
        self, request: Request, printer: SimulatedPrinter, rest: str
    ) -> Response:
        """``POST /printers/<n>/_sim/faults`` ``{"http_status", "message", "delay_s", "down"}``
        (absent keys clear that fault); ``POST /_sim/kill`` (server gone mid-print: every
        request hangs); ``POST /_sim/revive`` (back after a restart: files kept, job lost);
        ``POST /_sim/reset`` (pristine: no faults, no files, idle).
        Guarded by the printer's own key.
        """
        if not hmac.compare_digest(_api_key(request).encode(), printer.api_key.encode()):
            return error(403, FORBIDDEN_TEXT)
        if request.method != "POST":
            return error(405, "The method is not allowed for the requested URL.")
        faults = self.fleet.faults[printer.number]
        try:
            if rest == "faults":
                body = await _json_body(request)
                faults.http_status = int(body.get("http_status") or 0)
                faults.message = str(body.get("message") or "")
                faults.delay_s = float(body.get("delay_s") or 0.0)
                faults.down = bool(body.get("down", False))
            elif rest == "kill":
                faults.down = True
                printer.disconnect()
            elif rest == "revive":
                self.fleet.faults[printer.number] = Faults()
                printer.restart_server()
            elif rest == "reset":
                self.fleet.faults[printer.number] = Faults()
                printer.reset()
            else:
                return error(404, "")
        except (Refused, ValueError, TypeError) as exc:
            return error(400, str(exc))
        return NO_CONTENT


async def _hold_until_client_leaves(request: Request) -> None:
    """A vanished host: no answer, until the client disconnects or DOWN_HOLD_S passes."""
    with anyio.move_on_after(DOWN_HOLD_S):
        await request.body()
        while (await request.receive())["type"] != "http.disconnect":
            pass


def _sanitize(name: str) -> str:
    """OctoPrint keeps names intact but for characters no OS allows and a leading dot."""
    if "/" in name or "\\" in name:
        return ""
    kept = "".join(c for c in name if c >= " " and c not in '<>:"|?*')
    return kept.strip().lstrip(".")


def create_app(fleet: SimulatedFleet, *, max_upload_bytes: int = 1 << 30) -> SimulatorApp:
    return SimulatorApp(fleet, max_upload_bytes=max_upload_bytes)
