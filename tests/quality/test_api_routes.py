"""Every quality route has a bad-input case in tests/api/test_problems.py.

That file's own completeness check walks ``app.routes`` for Starlette ``Route``s; with
FastAPI 0.165 included routers stay ``_IncludedRouter`` objects there, so it sees no
route at all. This walks the effective routes of the quality router instead."""

from __future__ import annotations

from fastapi import FastAPI

from api.routers import quality
from tests.api.test_problems import CASES


def quality_routes() -> set[tuple[str, str]]:
    app = FastAPI()
    app.include_router(quality.router)
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is None:
            continue
        for context in contexts():
            template = context.path
            for name in context.param_convertors:
                template = template.replace("{" + name + "}", "{missing}")
            found |= {(method, template) for method in context.methods}
    return found


def test_the_walk_finds_the_quality_routes() -> None:
    routes = quality_routes()
    assert ("POST", "/inspections") in routes
    assert ("GET", "/deliveries/{missing}/certificate.pdf") in routes
    assert len(routes) >= 38


def test_every_quality_route_has_a_bad_input_case() -> None:
    covered = {(method, path) for method, path, *_ in CASES}
    missing = sorted(quality_routes() - covered)
    assert not missing, f"quality routes without a bad-input case: {missing}"
