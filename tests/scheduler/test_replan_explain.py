"""Re-planning stability and plan explanations."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from scheduler.allocator import allocate
from scheduler.explain import explain_plan
from scheduler.generator import crisis_problem
from scheduler.types import DeliveryPointSpec, JobSpec, Plan, PrinterSpec, Problem, SiteSpec
from scheduler.validate import check_plan
from tests.scheduler.factories import NOW, hours


def carried_over(
    problem: Problem, plan: Plan, *, freeze_before_h: float, penalty: float
) -> Problem:
    """The next re-plan: jobs starting soon are accepted (frozen), the others
    remember where the plan put them."""
    placed = {a.job_id: a for a in plan.assignments}
    jobs = []
    for job in problem.jobs:
        a = placed.get(job.id)
        if a is None:
            jobs.append(job)
        elif a.start_at < problem.now + hours(freeze_before_h):
            jobs.append(
                dataclasses.replace(job, frozen_printer_id=a.printer_id, frozen_start_at=a.start_at)
            )
        else:
            jobs.append(
                dataclasses.replace(
                    job, previous_printer_id=a.printer_id, previous_start_at=a.start_at
                )
            )
    return dataclasses.replace(problem, jobs=tuple(jobs), stability_penalty_s=penalty)


def test_replan_keeps_frozen_jobs_and_moves_nothing_without_gain() -> None:
    problem = crisis_problem(80, 10, 3, seed=4)
    first = allocate(problem, time_limit_s=1.0, seed=0)
    again = carried_over(problem, first, freeze_before_h=6, penalty=1e9)
    second = allocate(again, time_limit_s=1.0, seed=1)
    assert check_plan(again, second) == []
    assert second.moved_jobs == 0
    # The previous plan is still feasible, so re-planning cannot be later.
    assert second.weighted_tardiness_s <= first.weighted_tardiness_s + 1e-6
    frozen = {j.id: j for j in again.jobs if j.frozen_printer_id is not None}
    assert frozen
    for a in second.assignments:
        if a.job_id in frozen:
            assert (a.printer_id, a.start_at) == (
                frozen[a.job_id].frozen_printer_id,
                frozen[a.job_id].frozen_start_at,
            )


def test_replan_moves_jobs_when_a_printer_disappears() -> None:
    problem = crisis_problem(80, 10, 3, seed=5, running_share=0.0)
    first = allocate(problem, time_limit_s=0.5, seed=0)
    again = carried_over(problem, first, freeze_before_h=0, penalty=1800)
    gone = first.assignments[0].printer_id
    jobs = tuple(
        dataclasses.replace(j, durations_s={p: d for p, d in j.durations_s.items() if p != gone})
        for j in again.jobs
    )
    broken = dataclasses.replace(
        again,
        jobs=jobs,
        printers=tuple(p for p in again.printers if p.id != gone),
    )
    plan = allocate(broken, time_limit_s=0.5)
    assert check_plan(broken, plan) == []
    assert plan.moved_jobs >= sum(1 for a in first.assignments if a.printer_id == gone) - sum(
        1 for j in jobs if not j.durations_s
    )
    assert all(a.printer_id != gone for a in plan.assignments)


def test_explanations_name_alternatives_and_the_opening_hours() -> None:
    # One printer staffed 1 h a day, one staffed all day but farther away.
    short = ((NOW + hours(1), NOW + hours(2)), (NOW + hours(25), NOW + hours(26)))
    sites = (
        SiteSpec("lab", 49.40, 2.80, open_windows=short),
        SiteSpec("farm", 49.20, 2.40),
    )
    printers = (PrinterSpec("p-lab", "lab", NOW, "PLA"), PrinterSpec("p-farm", "farm", NOW, "PLA"))
    job = JobSpec(
        "j",
        "need",
        {"p-lab": 3 * 3600},
        "PLA",
        NOW,
        NOW + hours(6),
        weight=2.0,
        delivery_point_id="h",
    )
    other = JobSpec("k", "need-2", {"p-lab": 3600, "p-farm": 3600}, "PLA", NOW, NOW + hours(30))
    problem = Problem(
        jobs=(job, other),
        printers=printers,
        sites=sites,
        delivery_points=(DeliveryPointSpec("h", 49.41, 2.81),),
        now=NOW,
    )
    plan = allocate(problem, time_limit_s=0.3)
    explanation = explain_plan(problem, plan)
    late = {n.need_id: n for n in explanation.late_needs}
    assert set(late) == {"need"}
    causes = dict(late["need"].causes)
    # Waits 1 h for the lab to open, ends at 04:00 and stays on the bed until
    # 25:00: 22 h lost to opening hours.
    assert causes["opening_hours"] == 22 * 3600
    assert late["need"].on_time_possible_alone is False
    by_job = {e.job_id: e for e in explanation.jobs}
    assert [a.printer_id for a in by_job["k"].alternatives] == [
        "p-lab" if by_job["k"].printer_id == "p-farm" else "p-farm"
    ]
    assert by_job["j"].alternatives == ()
    assert late["need"].delivered_at - late["need"].due_at == timedelta(seconds=late["need"].late_s)
