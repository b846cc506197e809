"""Solver schedules back to :class:`~scheduler.types.Plan` datetimes."""

from __future__ import annotations

from datetime import timedelta

from scheduler.instances.compiled import Instance
from scheduler.instances.schedule import Schedule
from scheduler.types import Assignment, Plan, PlanStatus, Unassigned
from scheduler.validate import plan_metrics, removal_at


def to_plan(
    inst: Instance,
    sched: Schedule,
    *,
    status: PlanStatus,
    method: str,
    solve_time_s: float,
    bound: float | None = None,
    greedy_weighted_tardiness_s: float | None = None,
) -> Plan:
    """Times come from the schedule; removal, delivery and the objective are
    recomputed on datetimes by the same rules as :func:`check_plan`."""
    problem = inst.problem
    now = problem.now
    sites = problem.sites
    per_printer: list[list[int]] = [[] for _ in range(inst.m)]
    for j in range(inst.n):
        p = sched.printer_of[j]
        if p >= 0:
            per_printer[p].append(j)
    assignments: list[Assignment] = []
    for p, jobs in enumerate(per_printer):
        jobs.sort(key=lambda j: sched.place[j][0])
        site = sites[inst.site_of[p]]
        prev_material = inst.init_material[p]
        for j in jobs:
            spec = problem.jobs[j]
            if inst.frozen_printer[j] >= 0 and spec.frozen_start_at is not None:
                start = spec.frozen_start_at
            else:
                start = now + timedelta(seconds=sched.place[j][0])
            end = start + timedelta(seconds=inst.dur[j][p])
            removal = removal_at(site, end) or end
            travel = inst.travel[j][p]
            assignments.append(
                Assignment(
                    job_id=inst.job_ids[j],
                    printer_id=inst.printer_ids[p],
                    start_at=start,
                    end_at=end,
                    delivered_at=removal + timedelta(seconds=travel),
                    material_change=prev_material != inst.material[j],
                    removed_at=removal,
                    travel_s=travel,
                )
            )
            prev_material = inst.material[j]
    unassigned = [Unassigned(inst.job_ids[j], reason) for j, reason in inst.unassigned.items()]
    unassigned.extend(
        Unassigned(inst.job_ids[j], "no_open_window")
        for j in range(inst.n)
        if sched.printer_of[j] < 0 and j not in inst.unassigned
    )
    metrics = plan_metrics(problem, assignments)
    return Plan(
        assignments=tuple(assignments),
        unassigned=tuple(unassigned),
        status=PlanStatus.INFEASIBLE if unassigned else status,
        method=method,
        weighted_tardiness_s=metrics.weighted_tardiness_s,
        makespan_s=metrics.makespan_s,
        travel_s=metrics.travel_s,
        bound=bound,
        solve_time_s=solve_time_s,
        moved_jobs=metrics.moved_jobs,
        greedy_weighted_tardiness_s=greedy_weighted_tardiness_s,
    )
