"""The web pages: server-rendered (Jinja2 + htmx), in French and English, for coordinators,
operators, auditors and admins. They call the same use cases as the JSON API.

``install(app)`` adds the page routers and the vendored static files; nothing here is
fetched from a CDN or built: a checkout serves as is.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.web import admin, auditor, auth, inspection, needs, network, operator, site_forms
from api.web.templating import STATIC_DIR

ROUTERS = (
    auth.router,
    needs.router,
    network.router,
    operator.router,
    site_forms.router,
    inspection.router,
    auditor.router,
    admin.router,
)


def install(app: FastAPI) -> None:
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
