"""Read-side compositions for the coordinator's pages: the plan as lanes per site and
printer, the load of each site, the network for the map.

Thin: they read what the use cases wrote (``find_jobs``, ``find_printers``,
``find_sites``, ``need_progress``) and arrange it for display; they decide nothing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import as_utc
from core.i18n import _
from core.identity import Actor
from printers import service as printers
from printers.models import Printer, Site
from scheduler import service as scheduler
from scheduler.models import Job, JobState, Need, NeedStatus, PrintRun

# States a job occupies a printer's calendar in, from proposal to the plate on the bed.
ON_CALENDAR = (
    JobState.PLANNED,
    JobState.ACCEPTED,
    JobState.DISPATCHED,
    JobState.PRINTING,
    JobState.PRINTED,
)
RUNNING = (JobState.ACCEPTED, JobState.DISPATCHED, JobState.PRINTING)


@dataclass(frozen=True, slots=True)
class NeedRow:
    need: Need
    progress: scheduler.NeedProgress

    @property
    def finished(self) -> int:
        """Copies past inspection (passed or delivered)."""
        return self.progress.delivered + self.progress.passed


def need_rows(session: Session, *, status: NeedStatus | None) -> list[NeedRow]:
    needs = scheduler.find_needs(session, status=status)
    progress = scheduler.needs_progress(session, needs)
    return [NeedRow(need, progress[need.id]) for need in needs]


@dataclass(frozen=True, slots=True)
class Bar:
    job: Job
    start: datetime
    end: datetime


@dataclass
class Lane:
    printer: Printer
    bars: list[Bar] = field(default_factory=list)


@dataclass
class SiteLanes:
    site: Site
    lanes: list[Lane] = field(default_factory=list)


def plan_lanes(
    session: Session, *, actor: Actor, start: datetime, end: datetime
) -> list[SiteLanes]:
    """Every visible printer with the jobs on its calendar between ``start`` and ``end``."""
    by_printer: dict[UUID, Lane] = {}
    by_site: dict[UUID, SiteLanes] = {}
    for printer in printers.find_printers(session, actor=actor):
        lane = Lane(printer)
        by_printer[printer.id] = lane
        by_site.setdefault(printer.site_id, SiteLanes(printer.site)).lanes.append(lane)
    for job in scheduler.find_jobs(session, actor=actor, states=ON_CALENDAR, limit=5000):
        if job.printer_id not in by_printer or job.planned_start_at is None:
            continue
        job_start = as_utc(job.planned_start_at)
        job_end = as_utc(job.planned_end_at or job.planned_start_at)
        if job_end < start or job_start > end:
            continue
        by_printer[job.printer_id].bars.append(Bar(job, job_start, job_end))
    return sorted(by_site.values(), key=lambda s: s.site.name)


@dataclass(frozen=True, slots=True)
class TimelineGeometry:
    """Coordinates of the plan's SVG, computed here so the template only draws."""

    start: datetime
    end: datetime
    width: float = 1000.0
    label_width: float = 170.0
    row_height: float = 28.0
    header_height: float = 24.0

    def x(self, moment: datetime) -> float:
        span = (self.end - self.start).total_seconds()
        offset = (min(max(moment, self.start), self.end) - self.start).total_seconds()
        return round(self.label_width + (self.width - self.label_width) * offset / span, 1)

    def ticks(self, zone: ZoneInfo) -> list[datetime]:
        """Round local hours (midnight, 06:00...) that leave room for their label."""
        hours = (self.end - self.start).total_seconds() / 3600
        step = next(h for h in (1, 2, 3, 6, 12, 24, 48) if hours / h <= 8)
        local = self.start.astimezone(zone).replace(minute=0, second=0, microsecond=0)
        moment = local + timedelta(hours=1)
        moment += timedelta(hours=(-moment.hour) % step)
        ticks: list[datetime] = []
        last_x = self.width - 70  # a label needs ~70 units
        while moment < self.end and self.x(moment) <= last_x:
            ticks.append(moment)
            moment += timedelta(hours=step)
        return ticks

    def height(self, groups: list[SiteLanes]) -> float:
        rows = sum(len(g.lanes) for g in groups)
        return self.header_height * (len(groups) + 1) + self.row_height * rows


@dataclass(frozen=True, slots=True)
class SiteLoad:
    site: Site
    printers: int
    busy_ratio: float  # planned printing time over the next window / printer time available

    @property
    def band(self) -> str:
        if self.printers == 0:
            return "none"
        if self.busy_ratio < 0.5:
            return "low"
        return "medium" if self.busy_ratio < 0.85 else "high"


def _overlap_s(
    start: datetime, end: datetime, window_start: datetime, window_end: datetime
) -> float:
    return max(0.0, (min(end, window_end) - max(start, window_start)).total_seconds())


def site_loads(
    session: Session, *, actor: Actor, now: datetime, hours: float = 24.0
) -> list[SiteLoad]:
    """Each site's planned occupation over the next ``hours``: the map's colours."""
    window_end = now + timedelta(hours=hours)
    counts: dict[UUID, int] = defaultdict(int)
    for printer in printers.find_printers(session, actor=actor):
        if printer.enabled:
            counts[printer.site_id] += 1
    busy_s: dict[UUID, float] = defaultdict(float)
    for job in scheduler.find_jobs(session, actor=actor, states=ON_CALENDAR[:-1], limit=5000):
        if job.site_id is None or job.planned_start_at is None or job.planned_end_at is None:
            continue
        busy_s[job.site_id] += _overlap_s(
            as_utc(job.planned_start_at), as_utc(job.planned_end_at), now, window_end
        )
    loads = []
    for site in printers.find_sites(session):
        available_s = counts[site.id] * hours * 3600
        ratio = busy_s[site.id] / available_s if available_s else 0.0
        loads.append(SiteLoad(site, counts[site.id], min(ratio, 1.0)))
    return loads


def site_utilisation(
    session: Session, *, actor: Actor, now: datetime, hours: float = 24.0
) -> list[tuple[Site, float, float]]:
    """(site, share of printer time spent printing over the last ``hours``, share planned
    over the next ``hours``) for every site with printers."""
    since = now - timedelta(hours=hours)
    loads = {load.site.id: load for load in site_loads(session, actor=actor, now=now, hours=hours)}
    printed_s: dict[UUID, float] = defaultdict(float)
    runs = session.scalars(
        select(PrintRun).where((PrintRun.ended_at.is_(None)) | (PrintRun.ended_at >= since))
    )
    for run in runs:
        begun = as_utc(run.started_at or run.dispatched_at)
        ended = as_utc(run.ended_at) if run.ended_at else now
        printed_s[run.site_id] += _overlap_s(begun, ended, since, now)
    rows = []
    for load in loads.values():
        if load.printers == 0:
            continue
        past = printed_s[load.site.id] / (load.printers * hours * 3600)
        rows.append((load.site, min(past, 1.0), load.busy_ratio))
    return sorted(rows, key=lambda row: row[0].name)


def network(session: Session, *, actor: Actor, now: datetime) -> dict[str, object]:
    """Sites (size: printers, colour: planned load) and delivery points, for the maps."""
    open_needs: dict[UUID, int] = defaultdict(int)
    for need in scheduler.find_needs(session, status=NeedStatus.OPEN):
        open_needs[need.delivery_point_id] += 1
    sites = [
        {
            "id": str(load.site.id),
            "name": load.site.name,
            "lat": load.site.lat,
            "lon": load.site.lon,
            "printers": load.printers,
            "load": round(load.busy_ratio, 3),
            "load_band": load.band,
            "caption": _(
                "{printers} printers, {percent} % busy over the next 24 h",
                printers=load.printers,
                percent=round(load.busy_ratio * 100),
            ),
        }
        for load in site_loads(session, actor=actor, now=now)
    ]
    points = [
        {
            "id": str(point.id),
            "name": point.name,
            "lat": point.lat,
            "lon": point.lon,
            "caption": _("{count} open needs", count=open_needs[point.id]),
        }
        for point in scheduler.find_delivery_points(session)
    ]
    return {"sites": sites, "points": points}
