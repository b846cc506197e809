"""The farm-queue baseline and the plan checker on hand-made problems."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from core.errors import Invalid
from scheduler.allocator import allocate
from scheduler.greedy import greedy_plan
from scheduler.types import JobSpec, PlanStatus
from scheduler.validate import check_plan
from tests.scheduler.factories import NOW, hours, small_problem


def test_greedy_plan_is_valid_and_reports_the_orphan() -> None:
    problem = small_problem()
    plan = greedy_plan(problem)
    assert check_plan(problem, plan) == []
    assert [(u.job_id, u.reason) for u in plan.unassigned] == [("orphan", "no_eligible_printer")]
    assert plan.status is PlanStatus.INFEASIBLE
    assert len(plan.assignments) == len(problem.jobs) - 1


def test_allocate_greedy_matches_greedy_plan() -> None:
    problem = small_problem()
    a = allocate(problem, method="greedy")
    b = greedy_plan(problem)
    assert [(x.job_id, x.printer_id, x.start_at) for x in a.assignments] == [
        (x.job_id, x.printer_id, x.start_at) for x in b.assignments
    ]
    assert a.weighted_tardiness_s == b.weighted_tardiness_s


def test_frozen_job_keeps_printer_and_start() -> None:
    problem = small_problem()
    plan = greedy_plan(problem)
    running = next(a for a in plan.assignments if a.job_id == "running")
    assert (running.printer_id, running.start_at) == ("p3", NOW + hours(1))
    others = [a for a in plan.assignments if a.printer_id == "p3" and a.job_id != "running"]
    assert all(
        a.start_at >= running.end_at or (a.removed_at or a.end_at) <= running.start_at
        for a in others
    )


def test_starts_and_removals_fall_in_opening_hours() -> None:
    problem = small_problem()
    plan = greedy_plan(problem)
    windows = problem.sites[0].open_windows
    assert windows is not None
    on_creil = [a for a in plan.assignments if a.printer_id in {"p1", "p2"}]
    assert on_creil
    for a in on_creil:
        assert any(o <= a.start_at <= c for o, c in windows)
        assert a.removed_at is not None
        assert any(o <= a.removed_at <= c for o, c in windows)


def test_empty_printer_loads_material_before_first_job() -> None:
    problem = small_problem()
    plan = greedy_plan(problem)
    first_p2 = min((a for a in plan.assignments if a.printer_id == "p2"), key=lambda a: a.start_at)
    assert first_p2.material_change
    assert first_p2.start_at >= NOW + hours(2) + timedelta(seconds=600)


def test_check_plan_catches_overlap_and_wrong_objective() -> None:
    problem = small_problem()
    plan = greedy_plan(problem)
    p1 = sorted((a for a in plan.assignments if a.printer_id == "p1"), key=lambda a: a.start_at)
    second = p1[1]
    moved = dataclasses.replace(
        second,
        start_at=p1[0].start_at,
        end_at=p1[0].start_at + (second.end_at - second.start_at),
    )
    broken = dataclasses.replace(
        plan,
        assignments=tuple(moved if a is second else a for a in plan.assignments),
    )
    errors = check_plan(problem, broken)
    assert any("overlap" in e for e in errors)
    wrong = dataclasses.replace(plan, weighted_tardiness_s=plan.weighted_tardiness_s + 1)
    assert any("weighted tardiness" in e for e in check_plan(problem, wrong))


def test_check_plan_catches_moved_frozen_and_ineligible() -> None:
    problem = small_problem()
    plan = greedy_plan(problem)
    changed = []
    for a in plan.assignments:
        if a.job_id == "running":
            a = dataclasses.replace(a, start_at=a.start_at + hours(1), end_at=a.end_at + hours(1))
        if a.job_id == "j0":  # only p2 is eligible for j0
            a = dataclasses.replace(a, printer_id="p1")
        changed.append(a)
    errors = check_plan(problem, dataclasses.replace(plan, assignments=tuple(changed)))
    assert any("frozen job running was moved" in e for e in errors)
    assert any("ineligible printer" in e for e in errors)


def test_naive_datetime_is_refused() -> None:
    problem = small_problem()
    job = JobSpec("naive", "n", {"p1": 60}, "PLA", NOW.replace(tzinfo=None), NOW)
    with pytest.raises(Invalid):
        greedy_plan(dataclasses.replace(problem, jobs=(*problem.jobs, job)))


def test_unknown_method_is_refused() -> None:
    with pytest.raises(Invalid):
        allocate(small_problem(), method="magic")
