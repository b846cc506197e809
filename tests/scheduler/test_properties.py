"""Hypothesis properties: every plan the allocator returns obeys every rule."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.allocator import allocate
from scheduler.greedy import greedy_plan
from scheduler.types import (
    DeliveryPointSpec,
    JobSpec,
    Plan,
    PrinterSpec,
    Problem,
    SequenceSetups,
    SiteSpec,
)
from scheduler.validate import check_plan
from tests.scheduler.factories import NOW

MATERIALS = ("PLA", "PETG", "TPU")


@st.composite
def problems(draw: st.DrawFn) -> Problem:
    n_sites = draw(st.integers(1, 3))
    sites = []
    for s in range(n_sites):
        windows = None
        if draw(st.booleans()):
            open_h = draw(st.integers(0, 10))
            length_h = draw(st.integers(2, 14))
            windows = tuple(
                (
                    NOW + timedelta(hours=24 * d + open_h),
                    NOW + timedelta(hours=24 * d + open_h + length_h),
                )
                for d in range(-1, 40)
            )
        sites.append(SiteSpec(f"s{s}", 49.0 + s * 0.1, 2.5 + s * 0.05, open_windows=windows))
    points = (DeliveryPointSpec("d0", 49.3, 2.7), DeliveryPointSpec("d1", 49.6, 2.2))
    n_printers = draw(st.integers(1, 4))
    printers = tuple(
        PrinterSpec(
            f"p{i}",
            f"s{draw(st.integers(0, n_sites - 1))}",
            NOW + timedelta(seconds=draw(st.integers(-3600, 6 * 3600))),
            draw(st.sampled_from((*MATERIALS, None))),
            material_change_s=draw(st.integers(0, 1800)),
        )
        for i in range(n_printers)
    )
    jobs = []
    frozen_on: set[str] = set()
    for k in range(draw(st.integers(1, 10))):
        eligible = draw(
            st.lists(st.sampled_from([p.id for p in printers]), unique=True, max_size=4)
        )
        durations = {pid: draw(st.integers(300, 30000)) for pid in eligible}
        material = draw(st.sampled_from(MATERIALS))
        release = NOW + timedelta(seconds=draw(st.integers(-3600, 2 * 86400)))
        due = release + timedelta(seconds=draw(st.integers(0, 3 * 86400)))
        frozen_printer = None
        frozen_start = None
        free = [pid for pid in eligible if pid not in frozen_on]
        if free and draw(st.integers(0, 5)) == 0:
            frozen_printer = free[0]
            frozen_on.add(frozen_printer)
            frozen_start = NOW - timedelta(seconds=draw(st.integers(0, durations[frozen_printer])))
        previous = draw(st.sampled_from([None, *eligible])) if eligible else None
        jobs.append(
            JobSpec(
                f"j{k}",
                f"n{draw(st.integers(0, 4))}",
                durations,
                material,
                release,
                due,
                weight=draw(st.sampled_from((1.0, 2.5, 10.0))),
                delivery_point_id=draw(st.sampled_from((None, "d0", "d1"))),
                frozen_printer_id=frozen_printer,
                frozen_start_at=frozen_start,
                previous_printer_id=previous,
            )
        )
    setups = None
    if draw(st.booleans()):
        ids = tuple(j.id for j in jobs)
        setups = SequenceSetups(
            job_ids=ids,
            by_printer={
                p.id: [[draw(st.integers(0, 900)) for _ in ids] for _ in ids] for p in printers
            },
        )
    return Problem(
        jobs=tuple(jobs),
        printers=printers,
        sites=tuple(sites),
        delivery_points=points,
        now=NOW,
        setups=setups,
        stability_penalty_s=draw(st.sampled_from((0.0, 1800.0))),
    )


def recomputed_tardiness(problem: Problem, plan: Plan) -> float:
    """Weighted tardiness straight from the definition, independent of validate."""
    delivered = {a.job_id: a.delivered_at for a in plan.assignments}
    needs: dict[str, list[JobSpec]] = {}
    for job in problem.jobs:
        needs.setdefault(job.need_id, []).append(job)
    total = 0.0
    for jobs in needs.values():
        if all(j.id in delivered for j in jobs):
            last = max(delivered[j.id] for j in jobs)
            due = min(j.due_at for j in jobs)
            total += max(j.weight for j in jobs) * max(0.0, (last - due).total_seconds())
    return total


def key(problem: Problem, plan: Plan) -> tuple[float, float, float]:
    return (
        plan.weighted_tardiness_s + plan.moved_jobs * problem.stability_penalty_s,
        plan.makespan_s,
        plan.travel_s,
    )


def assert_frozen_kept(problem: Problem, plan: Plan) -> None:
    placed = {a.job_id: a for a in plan.assignments}
    for job in problem.jobs:
        if job.frozen_printer_id is not None:
            assert placed[job.id].printer_id == job.frozen_printer_id
            assert placed[job.id].start_at == job.frozen_start_at


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_greedy_plans_obey_every_rule(problem: Problem) -> None:
    plan = greedy_plan(problem)
    assert check_plan(problem, plan) == []
    assert_frozen_kept(problem, plan)
    assert abs(plan.weighted_tardiness_s - recomputed_tardiness(problem, plan)) < 1e-6
    no_printer = {j.id for j in problem.jobs if not j.durations_s}
    assert no_printer <= {u.job_id for u in plan.unassigned}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_auto_plans_obey_every_rule_and_never_lose_to_greedy(problem: Problem) -> None:
    base = greedy_plan(problem)
    plan = allocate(problem, time_limit_s=0.3, seed=1)
    assert check_plan(problem, plan) == []
    assert_frozen_kept(problem, plan)
    assert abs(plan.weighted_tardiness_s - recomputed_tardiness(problem, plan)) < 1e-6
    assert key(problem, plan) <= key(problem, base)
    if plan.assignments:
        last = max(a.delivered_at for a in plan.assignments)
        assert plan.makespan_s == max(0.0, (last - problem.now).total_seconds())
