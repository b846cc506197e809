"""The application's route table, flattened: FastAPI 0.165 keeps included routers as
``_IncludedRouter`` objects in ``app.routes``, so a plain walk sees none of their routes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.routing import Route


@dataclass(frozen=True, slots=True)
class RouteEntry:
    method: str
    path: str  # as served, e.g. /api/v1/jobs/{job_id}
    params: tuple[str, ...]

    def template(self, *, prefix: str = "", placeholder: str = "{missing}") -> str:
        """The path without ``prefix`` and with every parameter replaced by ``placeholder``."""
        path = self.path.removeprefix(prefix)
        for name in self.params:
            path = path.replace("{" + name + "}", placeholder)
        return path


def route_table(app: Starlette) -> Iterator[RouteEntry]:
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:
            for context in contexts():
                for method in context.methods or ():
                    yield RouteEntry(method, context.path, tuple(context.param_convertors))
        elif isinstance(route, Route):
            for method in route.methods or ():
                yield RouteEntry(method, route.path, tuple(route.param_convertors))
