"""The FastAPI application: API v1, web pages, error answers, background work."""

from __future__ import annotations

import gc
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI, Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import security, timing
from api.errors import install_error_handlers
from api.routers import auth, catalog, needs, printers, quality
from core.background import BackgroundRunner
from core.celery_app import configure_celery, set_local_runner
from core.i18n import language_from_accept, normalise_language, using_language
from core.runtime import Runtime, set_runtime

log = structlog.get_logger()

API_PREFIX = "/api/v1"

DESCRIPTION = """\
distrifab coordinates distributed manufacturing: coordinators post needs, the engine
slices the parts and plans which printer in which fablab prints what and when,
operators accept and run the jobs, printers report back on their own, and every
batch carries its quality record and its waste to recycling.

Authenticate with `POST /api/v1/auth/token`, then send `Authorization: Bearer <token>`.
Every error is answered as `application/problem+json` (RFC 9457).
"""


class RequestContext:
    """Request id and language for everything below, and the headers every answer carries.

    Plain ASGI: as ``@app.middleware("http")`` it ran each request through an extra task,
    memory streams and a second response object (CPU the load benchmark's 200 people
    could not spare on 2 cores)."""

    def __init__(self, app: ASGIApp, *, default_language: str) -> None:
        self.app = app
        self.default_language = default_language

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        request_id = (request.headers.get("x-request-id") or uuid.uuid4().hex)[:64]
        request.state.request_id = request_id
        language = (
            normalise_language(request.query_params.get("lang"))
            or normalise_language(request.cookies.get("lang"))
            or language_from_accept(request.headers.get("accept-language"))
            or self.default_language
        )

        clock = timing.RequestTiming()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = request_id
                headers["Server-Timing"] = clock.header()
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                headers.setdefault("X-Frame-Options", "DENY")
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        timed = timing.current.set(clock)
        try:
            with using_language(language):
                await self.app(scope, receive, send_with_headers)
        finally:
            timing.current.reset(timed)
            structlog.contextvars.unbind_contextvars("request_id")


def build_background(runtime: Runtime) -> BackgroundRunner:
    """Embedded mode: the beat schedule of the Celery set-up, run on in-process timers."""
    from catalog.tasks import slice_open_needs
    from printers.tasks import dispatch_sweep, poll_printers

    runner = BackgroundRunner(workers=2)
    settings = runtime.settings
    runner.every("printers.tasks.poll_printers", settings.poll_interval_s, poll_printers.run)
    runner.every("printers.tasks.dispatch_sweep", 15.0, dispatch_sweep.run, first_after_s=2.0)
    runner.every("catalog.tasks.slice_open_needs", 60.0, slice_open_needs.run, first_after_s=1.0)
    return runner


def create_app(runtime: Runtime, *, background: bool = True) -> FastAPI:
    """``background=False`` leaves embedded work pending until ``app.state.runner.drain()``
    is called (tests that want to step through the flow)."""
    runner: BackgroundRunner | None = None
    if runtime.settings.embedded:
        runner = build_background(runtime)
    else:
        configure_celery(runtime.settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        set_runtime(runtime)
        set_local_runner(runner)
        if runner is not None and background:
            from printers.tasks import reconcile_fleet

            runner.submit(reconcile_fleet.name, reconcile_fleet.run)
            runner.start()
        # What is loaded by now (the libraries, the app and its schemas: some 250,000
        # objects) lives as long as the process. Left to the collector, each full pass
        # walked it all, 200-330 ms during which no request thread of this process ran:
        # the load benchmark's worst latencies. Frozen, the passes only see new objects.
        gc.collect()
        gc.freeze()
        log.info("distrifab_started", embedded=runtime.settings.embedded)
        try:
            yield
        finally:
            if runner is not None:
                runner.stop()
            set_local_runner(None)

    app = FastAPI(
        title="distrifab",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.runner = runner
    timing.instrument(runtime.db.engine)
    install_error_handlers(app)
    security.install(app, runtime)  # login limits and headers; wrapped by request_context

    app.add_middleware(RequestContext, default_language=runtime.settings.default_language)

    for router in (auth.router, printers.router, catalog.router, needs.router, quality.router):
        app.include_router(router, prefix=API_PREFIX)

    @app.get("/healthz", tags=["health"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    from api import web

    web.install(app)
    return app
