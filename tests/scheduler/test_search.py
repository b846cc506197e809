"""The local searches keep their cached objective exact, and the two-process
search returns valid plans that never lose to the baseline."""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.allocator import allocate
from scheduler.cpsat_makespan import Loads, solve_load_group
from scheduler.formats import read_rsijk
from scheduler.generator import crisis_problem
from scheduler.greedy import baseline, greedy_plan
from scheduler.instances.compiled import compile_problem
from scheduler.instances.load_moves import BIG, LoadMoves, Move, apply_move
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


def _pair_change(before: list[int], after: list[int]) -> tuple[int, int]:
    if len(before) == 1:
        return after[0] - before[0], after[0] - before[0]
    return max(after) - max(before), sum(after) - sum(before)


def _all_moves(state: LoadState) -> list[Move]:
    moves: list[Move] = []
    for a, queue in enumerate(state.seqs):
        for i, j in enumerate(queue):
            for b, other in enumerate(state.seqs):
                moves.extend(
                    (0, j, b, k) for k in range(len(other) + 1) if b != a or k not in (i, i + 1)
                )
                moves.extend(
                    (1, j, x, 0)
                    for h, x in enumerate(other)
                    if x != j and (b != a or abs(h - i) > 1)
                )
    return moves


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 4), st.integers(4, 9))
def test_priced_moves_match_recomputed_loads(seed: int, m: int, n: int) -> None:
    """The numpy pricing of every relocation and exchange equals the change
    of the loads recomputed from the queues, and the best move it picks is
    the best of all (by larger load, then sum), or none at a local optimum."""
    rng = random.Random(seed)
    gaps = [[[rng.randint(0, 9) for _ in range(n + 1)] for _ in range(n + 1)] for _ in range(m)]
    for g in gaps:
        for row in g:
            row[n] = 0
    dur = [[rng.choice([rng.randint(1, 20), BIG]) for _ in range(n)] for _ in range(m)]
    for j in range(n):
        dur[rng.randrange(m)][j] = rng.randint(1, 20)  # eligible somewhere
    model = LoadModel(n, gaps, dur, [rng.randint(0, 5) for _ in range(m)])
    seqs: list[list[int]] = [[] for _ in range(m)]
    for j in range(n):
        seqs[rng.choice([p for p in range(m) if dur[p][j] < BIG])].append(j)
    state = LoadState(seqs, [model.load(p, q) for p, q in enumerate(seqs)], [0] * m)
    pricing = LoadMoves(model, list(range(m)))
    dirty = [rng.random() < 0.5 for _ in range(m)] if seed % 2 else None
    for _ in range(6):
        best: tuple[int, int] | None = None
        for move in _all_moves(state):
            trial = state.copy()
            changed = apply_move(trial, move)
            if any(dur[p][j] >= BIG for p in changed for j in trial.seqs[p]):
                continue
            if dirty is not None and not any(dirty[p] for p in changed):
                continue
            after = [model.load(p, trial.seqs[p]) for p in changed]
            change = _pair_change([state.loads[p] for p in changed], after)
            best = change if best is None or change < best else best
        picked = pricing.best_move(state, dirty)
        if picked is None:
            assert best is None or best >= (0, 0)
            return
        changed = apply_move(state, picked)
        before = [state.loads[p] for p in changed]
        for p in changed:
            state.loads[p] = model.load(p, state.seqs[p])
        assert _pair_change(before, [state.loads[p] for p in changed]) == best
        assert best < (0, 0)
        assert sorted(j for q in state.seqs for j in q) == list(range(n))
