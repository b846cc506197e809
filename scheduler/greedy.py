"""Constructive plans: the farm-queue baseline and dispatching rules.

The baseline (:func:`greedy_plan`) is what a print farm does by hand: take the
jobs by earliest due date and put each at the end of the queue of the eligible
printer that would finish it first. The other rules only seed the searches.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable

from scheduler.instances.compiled import Instance, compile_problem
from scheduler.instances.convert import to_plan
from scheduler.instances.schedule import Schedule, State, build, step
from scheduler.types import Plan, PlanStatus, Problem

# Choice of printer for one job: (printer, delivered, removal) -> sort key.
Chooser = Callable[[Instance, int, int, int, int], tuple[float, ...]]


def edd_order(inst: Instance) -> list[int]:
    """Movable jobs by due date of their need, heaviest first on ties."""
    return sorted(
        inst.movable,
        key=lambda j: (
            inst.need_due[inst.need[j]],
            inst.due[j],
            -inst.need_weight[inst.need[j]],
            inst.release[j],
            j,
        ),
    )


def earliest_finish(
    inst: Instance, j: int, p: int, delivered: int, removal: int
) -> tuple[float, ...]:
    """The farm rule: the printer that frees the plate first, then delivers first."""
    return (removal, delivered, p)


def least_tardy(inst: Instance, j: int, p: int, delivered: int, removal: int) -> tuple[float, ...]:
    """The printer that makes the job least late, then delivers it first."""
    return (max(0, delivered - inst.need_due[inst.need[j]]), delivered, removal, p)


def list_schedule(inst: Instance, order: list[int], choose: Chooser = earliest_finish) -> Schedule:
    """Append each job of ``order`` to the queue ``choose`` prefers. A job no
    printer can take (its windows run out) is marked unassigned on ``inst``."""
    states: list[State] = list(inst.start_state)
    seqs: list[list[int]] = [[] for _ in range(inst.m)]
    for j in order:
        if j in inst.unassigned:
            continue
        best: tuple[float, ...] | None = None
        best_p = -1
        best_state: State | None = None
        for p in inst.dur[j]:
            res = step(inst, p, states[p], j)
            if res is None:
                continue
            (_s, _e, r), state = res
            key = choose(inst, j, p, r + inst.travel[j][p], r)
            if best is None or key < best:
                best, best_p, best_state = key, p, state
        if best_state is None:
            inst.unassigned[j] = "no_open_window"
            continue
        seqs[best_p].append(j)
        states[best_p] = best_state
    sched = build(inst, seqs)
    if sched is None:  # cannot happen: every queue was built by ``step``
        raise RuntimeError("list schedule failed to decode")
    return sched


def atcs_schedule(inst: Instance, k1: float, k2: float = 1.0) -> Schedule:
    """Apparent tardiness cost with setups (Lee, Bhaskaran and Pinedo), run
    printer by printer: the printer free first takes the job with the highest
    ``w/p * exp(-slack / (k1 * p_mean)) * exp(-setup / (k2 * s_mean))``, where
    slack is the time left before the need's due date once delivered."""
    pairs = [(j, p, d) for j in inst.movable for p, d in inst.dur[j].items()]
    p_mean = max(1.0, sum(d for _j, _p, d in pairs) / max(1, len(pairs)))
    s_mean = max(1.0, sum(inst.change) / max(1, inst.m))
    candidates: list[list[int]] = [[] for _ in range(inst.m)]
    for j, p, _d in pairs:
        if j not in inst.unassigned:
            candidates[p].append(j)
    done = [False] * inst.n
    states: list[State] = list(inst.start_state)
    seqs: list[list[int]] = [[] for _ in range(inst.m)]
    heap = [(states[p][0], p) for p in range(inst.m) if candidates[p]]
    heapq.heapify(heap)
    left = sum(1 for j in inst.movable if j not in inst.unassigned)
    while heap and left:
        _t, p = heapq.heappop(heap)
        cand = [j for j in candidates[p] if not done[j]]
        candidates[p] = cand
        best_index = -1.0
        best_j = -1
        best_state: State | None = None
        t0 = states[p][0]
        for j in cand:
            res = step(inst, p, states[p], j)
            if res is None:
                continue
            (s, _e, r), state = res
            d = inst.dur[j][p]
            n = inst.need[j]
            slack = max(0, inst.need_due[n] - (r + inst.travel[j][p]))
            setup = max(0, s - t0 - max(0, inst.release[j] - t0))
            index = (
                inst.need_weight[n]
                / max(1, d)
                * math.exp(-slack / (k1 * p_mean))
                * math.exp(-setup / (k2 * s_mean))
            )
            if index > best_index:
                best_index, best_j, best_state = index, j, state
        if best_state is None:
            continue  # nothing fits on this printer any more
        done[best_j] = True
        left -= 1
        seqs[p].append(best_j)
        states[p] = best_state
        if len(cand) > 1:
            heapq.heappush(heap, (best_state[0], p))
    for j in inst.movable:
        if not done[j] and j not in inst.unassigned:
            inst.unassigned[j] = "no_open_window"
    sched = build(inst, seqs)
    if sched is None:
        raise RuntimeError("ATCS schedule failed to decode")
    return sched


def previous_schedule(inst: Instance) -> Schedule | None:
    """The previous plan carried over: jobs that had a printer keep it, in
    their previous order; new jobs go where they are least late. None when
    there is no previous plan."""
    kept = [j for j in inst.movable if inst.previous_printer[j] >= 0]
    if not kept:
        return None
    states: list[State] = list(inst.start_state)
    seqs: list[list[int]] = [[] for _ in range(inst.m)]
    rest: list[int] = []
    for j in sorted(kept, key=lambda j: (inst.previous_start[j], j)):
        p = inst.previous_printer[j]
        res = step(inst, p, states[p], j) if p in inst.dur[j] else None
        if res is None:
            rest.append(j)
            continue
        seqs[p].append(j)
        states[p] = res[1]
    placed = {j for q in seqs for j in q}
    for j in edd_order(inst):
        if j in placed or j in inst.unassigned:
            continue
        best: tuple[float, ...] | None = None
        best_p = -1
        for p in inst.dur[j]:
            res = step(inst, p, states[p], j)
            if res is None:
                continue
            r = res[0][2]
            key = least_tardy(inst, j, p, r + inst.travel[j][p], r)
            if best is None or key < best:
                best, best_p = key, p
        if best_p < 0:
            return None
        res = step(inst, best_p, states[best_p], j)
        assert res is not None
        seqs[best_p].append(j)
        states[best_p] = res[1]
    return build(inst, seqs)


def baseline(inst: Instance) -> Schedule:
    return list_schedule(inst, edd_order(inst), earliest_finish)


def greedy_plan(problem: Problem) -> Plan:
    """The farm-queue baseline as a plan (a few ms per 1,000 jobs)."""
    started = time.perf_counter()
    inst = compile_problem(problem)
    sched = baseline(inst)
    return to_plan(
        inst,
        sched,
        status=PlanStatus.GREEDY,
        method="greedy",
        solve_time_s=time.perf_counter() - started,
        greedy_weighted_tardiness_s=None,
    )
