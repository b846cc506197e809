"""The network as a whole: the plan as a timeline per site and printer, re-planning on
demand, the map of sites and delivery points, and the plots."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy.orm import Session

from api.deps import DbSession
from api.web.labels import LABELS
from api.web.live import live_block, live_response
from api.web.needs import can_post, require_reader
from api.web.queries import TimelineGeometry, network, plan_lanes, site_loads
from api.web.routing import PageActor, WebRoute
from api.web.session import load_session
from api.web.stats import lateness_spec, progress_spec, utilisation_spec, waste_spec
from api.web.templating import render
from core.celery_app import enqueue
from core.clock import utcnow
from core.errors import NotFound
from core.i18n import _
from core.identity import Actor, Role, require_role
from quality import service as quality
from scheduler import service as scheduler
from scheduler.models import NeedStatus
from scheduler.tasks import replan

router = APIRouter(route_class=WebRoute, include_in_schema=False)

HORIZONS_H = (12, 24, 72, 168)
PAST_SHOWN = timedelta(hours=2)  # the plan shows what just happened, for context


def _timeline(session: Session, actor: Actor, hours: int) -> dict[str, Any]:
    now = utcnow()
    geometry = TimelineGeometry(start=now - PAST_SHOWN, end=now + timedelta(hours=hours))
    groups = plan_lanes(session, actor=actor, start=geometry.start, end=geometry.end)
    return {
        "groups": groups,
        "geometry": geometry,
        "now": now,
        "plan": scheduler.latest_plan(session),
        "job_states": LABELS["job"],
    }


@router.get("/plan")
def plan_page(request: Request, session: DbSession, actor: PageActor, hours: int = 24) -> Response:
    require_reader(actor)
    hours = hours if hours in HORIZONS_H else 24
    live, _version = live_block(
        request,
        "plan/_timeline.html",
        _timeline(session, actor, hours),
        element_id="plan-live",
        url="/plan/live",
        params={"hours": str(hours)},
        every_s=10,
    )
    return render(
        request,
        "plan/page.html",
        {"live": live, "hours": hours, "horizons": HORIZONS_H, "can_replan": can_post(actor)},
    )


@router.get("/plan/live")
def plan_live(request: Request, session: DbSession, actor: PageActor, hours: int = 24) -> Response:
    require_reader(actor)
    hours = hours if hours in HORIZONS_H else 24
    return live_response(
        request,
        "plan/_timeline.html",
        _timeline(session, actor, hours),
        element_id="plan-live",
        url="/plan/live",
        params={"hours": str(hours)},
        every_s=10,
    )


@router.post("/plan/replan")
def replan_now(request: Request, actor: PageActor) -> Response:
    """Ask for a new plan now; it replaces the timeline within seconds."""
    require_role(actor, Role.COORDINATOR)
    enqueue(replan, "manual")
    load_session(request).flash(
        "ok", _("Re-planning requested: the timeline below refreshes by itself.")
    )
    return RedirectResponse("/plan", status_code=303)


@router.get("/map")
def map_page(request: Request, session: DbSession, actor: PageActor) -> Response:
    require_reader(actor)
    return render(
        request,
        "map.html",
        {
            "loads": site_loads(session, actor=actor, now=utcnow()),
            "points": scheduler.find_delivery_points(session),
            "open_needs": scheduler.find_needs(session, status=NeedStatus.OPEN),
            "tiles_url": request.app.state.runtime.settings.map_tiles_url,
            "tiles_attribution": request.app.state.runtime.settings.map_tiles_attribution,
        },
    )


@router.get("/map/network.json")
def map_data(session: DbSession, actor: PageActor) -> Response:
    # Coordinators place delivery points on it: they read it too.
    require_role(actor, Role.COORDINATOR, Role.AUDITOR)
    return JSONResponse(network(session, actor=actor, now=utcnow()))


CHARTS = ("progress", "lateness", "utilisation", "waste")


def chart_spec(session: Session, actor: Actor, name: str) -> dict[str, Any]:
    now = utcnow()
    if name == "progress":
        open_needs = scheduler.find_needs(session, status=NeedStatus.OPEN)
        return progress_spec(session, open_needs, now=now)
    if name == "lateness":
        return lateness_spec(session)
    if name == "utilisation":
        return utilisation_spec(session, actor=actor, now=now)
    if name == "waste":
        return waste_spec(quality.find_waste(session, actor=actor))
    raise NotFound(f"no chart {name}")


@router.get("/stats")
def stats_page(request: Request, session: DbSession, actor: PageActor) -> Response:
    require_reader(actor)
    titles = {
        "progress": _("Progress of the open needs over time"),
        "lateness": _("Lateness of the open needs"),
        "utilisation": _("Printer utilisation per site"),
        "waste": _("Waste by kind and material"),
    }
    return render(
        request,
        "stats.html",
        {"charts": [(name, titles[name], chart_spec(session, actor, name)) for name in CHARTS]},
    )


@router.get("/stats/{name}.json")
def stats_data(name: str, session: DbSession, actor: PageActor) -> Response:
    require_reader(actor)
    return JSONResponse(chart_spec(session, actor, name))
