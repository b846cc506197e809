"""A recording relay between distrifab and its printers: what was sent on the wire.

The fault drills must prove that no print was started twice, and the only witness that
cannot be fooled by distrifab's own records is the printer's side of the connection.
The relay forwards every request to the real printer server (the simulator or an
OctoPrint) unchanged, writes down each request that starts a print, and can hold the
answer to a start for a while, so that a drill can kill the worker after the printer
started but before distrifab learned it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import unquote

import httpx
import uvicorn
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tests.fixtures.octoprint import free_port

START_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Start:
    at: float
    path: str  # the printer's path prefix, e.g. /printers/3
    file_name: str


@dataclass
class Relay:
    upstream: str  # e.g. http://127.0.0.1:8500
    starts: list[Start] = field(default_factory=list)
    hold_start_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def starts_of(self, file_name: str) -> int:
        with self._lock:
            return sum(1 for s in self.starts if s.file_name == file_name)

    def started_files(self) -> list[str]:
        with self._lock:
            return [s.file_name for s in self.starts]

    def _record(self, path: str, body: bytes, content_type: str) -> str | None:
        """The file a request starts printing, if it starts one."""
        rest = "api/" + path.partition("/api/")[2]
        if rest.startswith("api/files/local/") and content_type.startswith("application/json"):
            try:
                command = json.loads(body or b"{}")
            except ValueError:
                return None
            if command.get("command") == "select" and command.get("print") in (True, "true"):
                return unquote(rest.removeprefix("api/files/local/"))
        if rest == "api/job" and b'"start"' in body:
            return "(selected file)"
        if rest == "api/files/local" and b'name="print"' in body:
            tail = body.split(b'name="print"', 1)[1][:16]
            if b"true" in tail:
                return "(uploaded and printed)"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        body = await request.body()
        path = request.url.path
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")
        }
        started = self._record(path, body, request.headers.get("content-type", ""))
        async with httpx.AsyncClient(timeout=None) as client:
            try:
                answer = await client.request(
                    request.method,
                    self.upstream + path,
                    params=request.query_params.multi_items(),
                    content=body,
                    headers=headers,
                )
            except httpx.HTTPError:
                await Response(status_code=502)(scope, receive, send)
                return
        if started is not None and answer.status_code < 300:
            with self._lock:
                self.starts.append(Start(time.monotonic(), path.split("/api/")[0], started))
            # Polled rather than awaited on an event: the drill lowers the hold from
            # another thread, and a held answer must then go out at once.
            deadline = time.monotonic() + self.hold_start_s
            while time.monotonic() < deadline and self.hold_start_s > 0:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        excluded = {"content-length", "transfer-encoding", "connection", "content-encoding"}
        response = Response(
            answer.content,
            status_code=answer.status_code,
            headers={k: v for k, v in answer.headers.items() if k.lower() not in excluded},
        )
        await response(scope, receive, send)


@contextmanager
def relay_to(upstream: str) -> Iterator[tuple[Relay, str]]:
    """Serve a relay to ``upstream`` on a free loopback port: (relay, its base URL)."""
    relay = Relay(upstream)
    port = free_port()
    config = uvicorn.Config(
        relay,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_keep_alive=75,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"relay-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the recording relay did not start")
        time.sleep(0.01)
    try:
        yield relay, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT_S)
