"""An independent plan checker and the reference objective.

Works on the datetimes of the :class:`~scheduler.types.Plan`, not on the
solvers' integer form, so it catches their rounding and decoding mistakes. The
allocator uses :func:`plan_metrics` to report the objective it returns, and the
database adapter may call :func:`check_plan` before storing a plan.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from scheduler.travel import problem_travel_s
from scheduler.types import Assignment, JobSpec, Plan, PrinterSpec, Problem, SiteSpec, Unassigned

REASONS = frozenset({"no_eligible_printer", "no_open_window"})


@dataclass(frozen=True, slots=True)
class PlanMetrics:
    weighted_tardiness_s: float
    makespan_s: float
    travel_s: float
    moved_jobs: int
    late_needs: int


def removal_at(site: SiteSpec, end: datetime) -> datetime | None:
    """When someone takes the plate off: at ``end`` if the site is open then,
    else when it next opens; None if it never opens again."""
    if site.open_windows is None:
        return end
    best: datetime | None = None
    for o, c in site.open_windows:
        if c < end:
            continue
        candidate = end if o <= end else o
        if best is None or candidate < best:
            best = candidate
    return best


def start_allowed(site: SiteSpec, start: datetime) -> bool:
    if site.open_windows is None:
        return True
    return any(o <= start <= c for o, c in site.open_windows)


def need_terms(problem: Problem) -> dict[str, tuple[datetime, float, list[str]]]:
    """Per need: due (earliest job due), weight (heaviest job), job ids."""
    terms: dict[str, tuple[datetime, float, list[str]]] = {}
    for job in problem.jobs:
        if job.need_id in terms:
            due, weight, ids = terms[job.need_id]
            terms[job.need_id] = (min(due, job.due_at), max(weight, job.weight), [*ids, job.id])
        else:
            terms[job.need_id] = (job.due_at, job.weight, [job.id])
    return terms


def plan_metrics(
    problem: Problem, assignments: tuple[Assignment, ...] | list[Assignment]
) -> PlanMetrics:
    """Weighted tardiness (weight x seconds, over needs whose every job is
    planned), makespan (last delivery after ``now``, seconds), total travel
    seconds and the number of jobs moved away from their previous printer."""
    delivered = {a.job_id: a.delivered_at for a in assignments}
    tardiness = 0.0
    late = 0
    for due, weight, ids in need_terms(problem).values():
        if not all(i in delivered for i in ids):
            continue
        last = max(delivered[i] for i in ids)
        if last > due:
            tardiness += weight * (last - due).total_seconds()
            late += 1
    makespan = 0.0
    if assignments:
        makespan = max(0.0, (max(delivered.values()) - problem.now).total_seconds())
    jobs = {j.id: j for j in problem.jobs}
    moved = sum(
        1
        for a in assignments
        if a.job_id in jobs
        and jobs[a.job_id].previous_printer_id is not None
        and jobs[a.job_id].previous_printer_id != a.printer_id
    )
    return PlanMetrics(
        weighted_tardiness_s=tardiness,
        makespan_s=makespan,
        travel_s=float(sum(a.travel_s for a in assignments)),
        moved_jobs=moved,
        late_needs=late,
    )


def _gap_s(
    problem: Problem,
    setup_index: dict[str, int],
    printer: PrinterSpec,
    prev: JobSpec | None,
    nxt: JobSpec,
) -> int:
    """Material change (also loading an empty printer) plus sequence setup."""
    prev_material = printer.material if prev is None else prev.material
    g = 0 if prev_material == nxt.material else printer.material_change_s
    if prev is not None and problem.setups is not None:
        table = problem.setups.by_printer.get(printer.id)
        if table is not None and prev.id in setup_index and nxt.id in setup_index:
            g += int(table[setup_index[prev.id]][setup_index[nxt.id]])
    return g


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


def check_plan(problem: Problem, plan: Plan) -> list[str]:
    """Every broken rule as one readable line; empty when the plan is valid."""
    errors: list[str] = []
    jobs = {j.id: j for j in problem.jobs}
    printers = {p.id: p for p in problem.printers}
    sites = {s.id: s for s in problem.sites}
    points = {d.id: d for d in problem.delivery_points}
    seen: set[str] = set()
    listed = [a.job_id for a in plan.assignments] + [u.job_id for u in plan.unassigned]
    for job_id in listed:
        if job_id not in jobs:
            errors.append(f"unknown job {job_id}")
        elif job_id in seen:
            errors.append(f"job {job_id} appears twice")
        seen.add(job_id)
    errors.extend(f"job {j} is neither planned nor unassigned" for j in jobs if j not in seen)
    errors.extend(_check_unassigned(jobs, plan.unassigned))
    by_printer: dict[str, list[tuple[Assignment, JobSpec, datetime]]] = defaultdict(list)
    setup_index: dict[str, int] = {}
    if problem.setups is not None:
        setup_index = {jid: i for i, jid in enumerate(problem.setups.job_ids)}
    for a in plan.assignments:
        job = jobs.get(a.job_id)
        printer = printers.get(a.printer_id)
        if job is None:
            continue
        if printer is None:
            errors.append(f"job {a.job_id} on unknown printer {a.printer_id}")
            continue
        site = sites[printer.site_id]
        frozen = job.frozen_printer_id is not None
        if frozen and (a.printer_id != job.frozen_printer_id or a.start_at != job.frozen_start_at):
            errors.append(f"frozen job {a.job_id} was moved")
        if a.printer_id not in job.durations_s:
            errors.append(f"job {a.job_id} on ineligible printer {a.printer_id}")
            continue
        if a.end_at - a.start_at != timedelta(seconds=job.durations_s[a.printer_id]):
            errors.append(f"job {a.job_id} does not last its sliced time")
        earliest = max(problem.now, job.release_at, printer.available_at)
        if not frozen and a.start_at < earliest:
            errors.append(f"job {a.job_id} starts before release, now or printer availability")
        if not frozen and not start_allowed(site, a.start_at):
            errors.append(f"job {a.job_id} starts outside opening hours")
        removal = removal_at(site, a.end_at)
        if removal is None:
            if not frozen:
                errors.append(f"job {a.job_id} cannot be removed: no opening after its end")
            removal = a.end_at
        if a.removed_at is not None and a.removed_at != removal:
            errors.append(f"job {a.job_id} removal time is wrong")
        point = points.get(job.delivery_point_id or "")
        travel = problem_travel_s(
            problem.travel_s,
            site,
            point,
            speed_kmh=problem.travel_speed_kmh,
            road_factor=problem.road_factor,
        )
        if a.travel_s != travel:
            errors.append(f"job {a.job_id} travel is {a.travel_s} s, expected {travel} s")
        if a.delivered_at != removal + timedelta(seconds=travel):
            errors.append(f"job {a.job_id} delivery time is wrong")
        by_printer[a.printer_id].append((a, job, removal))
    for pid, items in by_printer.items():
        errors.extend(_check_queue(problem, setup_index, printers[pid], items))
    metrics = plan_metrics(problem, plan.assignments)
    for name, reported, actual in (
        ("weighted tardiness", plan.weighted_tardiness_s, metrics.weighted_tardiness_s),
        ("makespan", plan.makespan_s, metrics.makespan_s),
        ("travel", plan.travel_s, metrics.travel_s),
    ):
        if not _close(reported, actual):
            errors.append(f"reported {name} {reported} differs from recomputed {actual}")
    if plan.moved_jobs != metrics.moved_jobs:
        errors.append(f"reported {plan.moved_jobs} moved jobs, recomputed {metrics.moved_jobs}")
    return errors


def _check_unassigned(jobs: dict[str, JobSpec], unassigned: tuple[Unassigned, ...]) -> list[str]:
    errors = []
    for u in unassigned:
        job = jobs.get(u.job_id)
        if job is None:
            continue
        if u.reason not in REASONS:
            errors.append(f"job {u.job_id} unassigned for an unknown reason {u.reason!r}")
        if u.reason == "no_eligible_printer" and job.durations_s:
            errors.append(f"job {u.job_id} has eligible printers but is unassigned")
        if job.frozen_printer_id is not None:
            errors.append(f"frozen job {u.job_id} was dropped")
    return errors


def _check_queue(
    problem: Problem,
    setup_index: dict[str, int],
    printer: PrinterSpec,
    items: list[tuple[Assignment, JobSpec, datetime]],
) -> list[str]:
    errors = []
    items.sort(key=lambda item: (item[0].start_at, item[0].job_id))
    prev: tuple[Assignment, JobSpec, datetime] | None = None
    for a, job, removal in items:
        frozen = job.frozen_printer_id is not None
        gap = _gap_s(problem, setup_index, printer, None if prev is None else prev[1], job)
        changes = (printer.material if prev is None else prev[1].material) != job.material
        if a.material_change != changes and not frozen:
            errors.append(f"job {a.job_id} material change flag is wrong")
        if prev is None:
            if not frozen and a.start_at < printer.available_at + timedelta(seconds=gap):
                errors.append(f"job {a.job_id} starts before the material change is done")
        else:
            pa, pjob, premoval = prev
            both_frozen = frozen and pjob.frozen_printer_id is not None
            if not both_frozen and a.start_at < premoval + timedelta(seconds=gap):
                errors.append(
                    f"jobs {pa.job_id} and {a.job_id} overlap on {printer.id} "
                    f"(removal, change and setup included)"
                )
        prev = (a, job, removal)
    return errors
