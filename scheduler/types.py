"""Plain data in and out of the allocator (``Problem -> Plan``).

No database, no clock, no settings: the adapter in ``scheduler/planning.py``
builds a :class:`Problem` from the database and stores the :class:`Plan`.
Times are aware UTC datetimes; durations are whole seconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class SiteSpec:
    """A place with printers. ``open_windows`` are the absolute intervals when
    someone is there to start a print or take one off the bed; ``None`` means
    always staffed (a print farm with night shifts, or a simulation)."""

    id: str
    lat: float
    lon: float
    open_windows: tuple[tuple[datetime, datetime], ...] | None = None


@dataclass(frozen=True, slots=True)
class DeliveryPointSpec:
    id: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class PrinterSpec:
    id: str
    site_id: str
    available_at: datetime  # when the printer can start its next (non-frozen) job
    material: str | None  # material family loaded now ("PLA"); None: empty
    material_change_s: int = 900  # unload + load + purge, seconds


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One plate to print. ``durations_s`` maps each eligible printer id to its
    sliced print time on that printer: eligibility is the set of keys."""

    id: str
    need_id: str
    durations_s: Mapping[str, int]
    material: str
    release_at: datetime
    due_at: datetime
    weight: float = 1.0
    delivery_point_id: str | None = None
    # A job already accepted, dispatched or printing is frozen: the allocator
    # keeps it on this printer at this start and plans around it.
    frozen_printer_id: str | None = None
    frozen_start_at: datetime | None = None
    # Where the previous plan put it, so that re-planning can prefer stability.
    previous_printer_id: str | None = None
    previous_start_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SequenceSetups:
    """Sequence-dependent setup times (seconds) between two consecutive jobs on
    a printer, on top of any material change: ``by_printer[p][i][k]`` is the
    setup when ``job_ids[k]`` follows ``job_ids[i]`` on printer ``p``. The
    first job on a printer has none. Printers absent from ``by_printer`` have
    none. Used by the public R|Sijk|Cmax instances; the crisis adapter leaves it
    unset."""

    job_ids: tuple[str, ...]
    by_printer: Mapping[str, Sequence[Sequence[int]]]


@dataclass(frozen=True, slots=True)
class Problem:
    jobs: tuple[JobSpec, ...]
    printers: tuple[PrinterSpec, ...]
    sites: tuple[SiteSpec, ...]
    delivery_points: tuple[DeliveryPointSpec, ...] = ()
    now: datetime = field(default_factory=lambda: datetime.fromtimestamp(0).astimezone())
    # Travel time from a site to a delivery point in seconds. Missing pairs are
    # derived from great-circle distance at ``travel_speed_kmh`` (road factor
    # included) when the adapter has no road graph.
    travel_s: Mapping[tuple[str, str], int] = field(default_factory=dict)
    travel_speed_kmh: float = 40.0
    road_factor: float = 1.3
    setups: SequenceSetups | None = None
    # Re-planning stability: moving a job away from its ``previous_printer_id``
    # costs this much weighted tardiness (weight x seconds) in the search, so a
    # plan only changes when the gain is worth it. 1800 = half an hour of a
    # weight-1 need; 0 disables it. Reported tardiness never includes it.
    stability_penalty_s: float = 1800.0


class PlanStatus(StrEnum):
    OPTIMAL = "optimal"
    FEASIBLE = "feasible"  # a valid plan, not proven optimal
    GREEDY = "greedy"  # the baseline only (solver not run or found nothing better)
    INFEASIBLE = "infeasible"  # some jobs could not be placed at all


@dataclass(frozen=True, slots=True)
class Assignment:
    job_id: str
    printer_id: str
    start_at: datetime
    end_at: datetime
    delivered_at: datetime  # end (or the next removal time) + travel to the delivery point
    material_change: bool = False  # a material change happens right before this job
    removed_at: datetime | None = None  # when the plate leaves the bed (end, or next opening)
    travel_s: int = 0  # from the printer's site to the job's delivery point


@dataclass(frozen=True, slots=True)
class Unassigned:
    job_id: str
    reason: str  # "no_eligible_printer", "no_open_window", ...


@dataclass(frozen=True, slots=True)
class Plan:
    assignments: tuple[Assignment, ...]
    unassigned: tuple[Unassigned, ...] = ()
    status: PlanStatus = PlanStatus.GREEDY
    method: str = "greedy"
    weighted_tardiness_s: float = 0.0  # sum over needs of weight * lateness of the last plate
    makespan_s: float = 0.0  # last delivery minus problem.now
    travel_s: float = 0.0
    bound: float | None = None
    solve_time_s: float = 0.0
    moved_jobs: int = 0  # jobs placed on another printer than ``previous_printer_id``
    greedy_weighted_tardiness_s: float | None = None  # the baseline, for comparison
