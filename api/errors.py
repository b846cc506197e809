"""The one place where errors become HTTP answers: RFC 9457 problem+json, titles translated."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import (
    Conflict,
    DomainError,
    Forbidden,
    IllegalTransition,
    Invalid,
    NotFound,
    TooLarge,
    Unauthorized,
    Unavailable,
)
from core.i18n import N_, _

log = structlog.get_logger()

PROBLEM_BASE = "https://distrifab.org/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"

# Most specific class first: the first match wins.
STATUS_BY_CLASS: tuple[tuple[type[DomainError], int], ...] = (
    (IllegalTransition, 409),
    (TooLarge, 413),
    (NotFound, 404),
    (Unauthorized, 401),
    (Forbidden, 403),
    (Invalid, 422),
    (Conflict, 409),
    (Unavailable, 503),
    (DomainError, 400),
)

TITLES = {
    "not_found": N_("Not found"),
    "unauthorized": N_("Authentication required"),
    "forbidden": N_("Not allowed"),
    "invalid": N_("Invalid input"),
    "too_large": N_("Too large"),
    "conflict": N_("Conflict with the current state"),
    "illegal_transition": N_("This step is not possible now"),
    "unavailable": N_("Temporarily unavailable"),
    "validation_error": N_("The request is not valid"),
    "bad_request": N_("Bad request"),
    "concurrent_update": N_("Changed by someone else meanwhile"),
    "printer_unreachable": N_("The printer cannot be reached"),
    "printer_timeout": N_("The printer did not answer in time"),
    "printer_auth_failed": N_("The printer refused the API key"),
    "printer_busy": N_("The printer is busy"),
    "printer_rejected": N_("The printer refused the request"),
    "printer_fault": N_("The printer's server failed"),
    "internal_error": N_("Internal error"),
    "method_not_allowed": N_("Method not allowed"),
}


def status_for(error: DomainError) -> int:
    for cls, status in STATUS_BY_CLASS:
        if isinstance(error, cls):
            return status
    return 400


def problem(
    request: Request,
    *,
    status: int,
    code: str,
    detail: str,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": _(TITLES.get(code, TITLES["bad_request"])),
        "status": status,
        "detail": detail,
        "instance": "urn:request:" + getattr(request.state, "request_id", "-"),
    }
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _field_path(location: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in location if p not in ("body", "query", "path", "header", "form")]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        status = status_for(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return problem(request, status=status, code=exc.code, detail=exc.detail, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field_path(e.get("loc", ())), "message": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return problem(
                request, status=400, code="bad_request", detail="the request body is not valid JSON"
            )
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem(
            request, status=422, code="validation_error", detail=detail, extra={"errors": errors}
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            404: "not_found",
            405: "method_not_allowed",
            401: "unauthorized",
            403: "forbidden",
        }.get(exc.status_code, "bad_request")
        detail = str(exc.detail) if exc.detail else code.replace("_", " ")
        if exc.status_code == 404 and exc.detail == "Not Found":
            detail = f"no such resource: {request.url.path}"
        return problem(request, status=exc.status_code, code=code, detail=detail)

    @app.exception_handler(StaleDataError)
    async def stale(request: Request, exc: StaleDataError) -> JSONResponse:
        return problem(
            request,
            status=409,
            code="concurrent_update",
            detail="the record changed while this request was processed; reload and try again",
        )

    @app.exception_handler(OperationalError)
    async def database_down(request: Request, exc: OperationalError) -> JSONResponse:
        log.error("database_unavailable", error=str(exc.orig))
        return problem(
            request,
            status=503,
            code="unavailable",
            detail="the database is not reachable right now; nothing was changed, try again shortly",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(PoolTimeout)
    async def database_busy(request: Request, exc: PoolTimeout) -> JSONResponse:
        # Every pooled connection stayed busy for the pool's whole timeout: an overload,
        # not a bug; the request changed nothing and can be retried (found under load).
        log.warning("database_pool_exhausted", path=request.url.path)
        return problem(
            request,
            status=503,
            code="unavailable",
            detail="the server is too busy right now; try again shortly",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path)
        return problem(
            request,
            status=500,
            code="internal_error",
            detail="an unexpected error happened; it is logged with this request's id",
        )
