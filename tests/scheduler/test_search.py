"""The local searches keep their cached objective exact, and the two-process
search returns valid plans that never lose to the baseline."""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import HealthCheck, given, settings

from scheduler.allocator import allocate
from scheduler.cpsat_makespan import Loads, solve_load_group
from scheduler.formats import read_rsijk
from scheduler.generator import crisis_problem
from scheduler.greedy import baseline, greedy_plan
from scheduler.instances.compiled import compile_problem
from scheduler.instances.loads import LoadModel, LoadSearch, LoadState
from scheduler.instances.parallel import can_fork, fork_call, split_rounds
from scheduler.instances.schedule import Schedule, build
from scheduler.instances.search import Descent, iterate
from scheduler.types import Problem
from scheduler.validate import check_plan
from tests.scheduler.test_properties import key, problems

RSIJK = """6 2
2
0 4 1 9
0 7 1 3
0 5 1 5
0 2 1 8
0 9 1 2
0 3 1 3
SSD
M0
0 1 5 2 9 3
4 0 1 7 2 2
3 3 0 1 6 8
2 9 4 0 1 5
1 2 3 3 0 4
6 1 2 5 2 0
M1
0 3 3 1 2 2
1 0 4 2 6 1
5 2 0 3 1 7
2 2 2 0 3 1
3 1 4 2 0 2
1 5 1 3 2 0
"""


def assert_cache_exact(sched: Schedule) -> None:
    rebuilt = build(sched.inst, sched.seqs)
    assert rebuilt is not None
    assert rebuilt.key()[1:] == sched.key()[1:]
    assert abs(rebuilt.key()[0] - sched.key()[0]) < 1e-3
    assert rebuilt.need_delivered == sched.need_delivered


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_iterated_descent_keeps_its_objective_exact(problem: Problem) -> None:
    inst = compile_problem(problem)
    base = baseline(inst)
    search = Descent(base.copy())
    iterate(search, deadline=time.perf_counter() + 0.05, rng=random.Random(0))
    assert_cache_exact(search.mover.sched)
    assert search.mover.sched.key() <= base.key()


def test_two_process_rounds_merge_exactly() -> None:
    if not can_fork():
        pytest.skip("no fork on this platform")
    inst = compile_problem(crisis_problem(300, 24, 6, seed=11, tightness=0.8))
    base = baseline(inst)
    search = Descent(base.copy())
    answered = split_rounds(search, deadline=time.perf_counter() + 1.0, seed=3, round_s=0.2)
    assert answered >= 1
    assert_cache_exact(search.mover.sched)
    assert search.mover.sched.key() <= base.key()


def test_allocate_with_two_processes_is_valid_and_beats_the_baseline() -> None:
    problem = crisis_problem(400, 30, 8, seed=12, tightness=1.0)
    plan = allocate(problem, time_limit_s=1.5, seed=2, workers=2)
    base = greedy_plan(problem)
    assert check_plan(problem, plan) == []
    assert key(problem, plan) <= key(problem, base)
    if can_fork():
        assert plan.method == "ils-2proc"


def _answer() -> int:
    return 42


def _fail() -> int:
    raise ValueError("child failed")


def _slow() -> int:
    time.sleep(5)
    return 1


def test_fork_call_returns_the_child_answer_or_none() -> None:
    if not can_fork():
        pytest.skip("no fork on this platform")
    ran: list[bool] = []
    assert fork_call(_answer, lambda: ran.append(True), answer_by=time.perf_counter() + 2) == 42
    assert ran == [True]
    assert fork_call(_fail, lambda: None, answer_by=time.perf_counter() + 2) is None
    assert fork_call(_slow, lambda: None, answer_by=time.perf_counter() + 0.1) is None


def test_load_search_and_group_solve_keep_every_job_once() -> None:
    problem = read_rsijk(RSIJK)
    inst = compile_problem(problem)
    base = baseline(inst)
    lm = Loads(inst)
    model = LoadModel(inst.n, lm.gl, lm.dl, lm.sl)
    seqs = [list(q) for q in base.seqs]
    state = LoadState(seqs, [model.load(p, q) for p, q in enumerate(seqs)], [0] * inst.m)
    search = LoadSearch(model, state, list(range(inst.m)), random.Random(1), temperature=1.0)
    best = search.run(time.perf_counter() + 0.2)
    assert sorted(j for q in best.seqs for j in q) == list(range(inst.n))
    assert best.loads == [model.load(p, q) for p, q in enumerate(best.seqs)]
    assert max(best.loads) <= max(model.load(p, q) for p, q in enumerate(base.seqs))
    solved = solve_load_group(lm, dict(enumerate(best.seqs)), 5.0, 1, 0)
    assert solved is not None
    queues, optimal = solved
    assert optimal  # 6 jobs on 2 printers: CP-SAT proves it at once
    assert sorted(j for q in queues.values() for j in q) == list(range(inst.n))
    assert max(lm.load(p, q) for p, q in queues.items()) <= max(best.loads)


def test_allocate_proves_a_tiny_makespan_optimal() -> None:
    problem = read_rsijk(RSIJK)
    plan = allocate(problem, time_limit_s=5.0, seed=0)
    assert check_plan(problem, plan) == []
    assert plan.status == "optimal"
    assert plan.bound is not None
    assert plan.makespan_s >= plan.bound
