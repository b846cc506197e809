"""CP-SAT on a neighbourhood: the jobs of a few printers, re-assigned and
re-sequenced among those printers, everything else fixed.

One optional interval per (job, printer) from the start to the removal of the
plate (the printer is busy until someone takes the plate off), start and
removal restricted to the site's opening hours, ``AddNoOverlap`` per printer,
and, only where material changes or setups can occur, an ``AddCircuit`` whose
arc literals enforce ``start_next >= removal_prev + change``. Needs whose jobs
lie partly outside the neighbourhood keep those jobs' deliveries as a floor.
Always hinted with the current schedule: without a hint CP-SAT's first
solutions are 5x worse than the greedy (docs/notes, 1000x100 at 60 s).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from ortools.sat.python import cp_model

from scheduler.instances.compiled import Instance
from scheduler.instances.schedule import Schedule, complete_needs

# Objective guidance: weighted tardiness dominates (x1000 per weight-second),
# then the neighbourhood's last delivery and travel. The caller accepts a
# result only if it is better on the exact lexicographic key.
TARDINESS_SCALE = 1000
WEIGHT_SCALE = 10


@dataclass(frozen=True, slots=True)
class SubResult:
    queues: dict[int, list[int]]
    optimal: bool
    arcs: int


def needs_circuit(inst: Instance, p: int, jobs: list[int]) -> bool:
    """Material changes or setups can happen on ``p`` among these jobs."""
    if inst.setups[p] is not None:
        return True
    mats = {inst.material[j] for j in jobs}
    mats.add(inst.start_state[p][1])
    fi = inst.start_state[p][3]
    mats.update(b[3] for b in inst.frozen_blocks[p][fi:])
    return len(mats) > 1


def arc_estimate(inst: Instance, sched: Schedule, printers: list[int]) -> int:
    """Arc literals a neighbourhood would create (the model's size driver)."""
    jobs = [j for p in printers for j in sched.seqs[p]]
    total = 0
    for p in printers:
        k = sum(1 for j in jobs if p in inst.dur[j])
        total += (k + 1) * (k + 1)
    return total


def _window_domain(inst: Instance, p: int, lo: int, hi: int) -> cp_model.Domain:
    win = inst.windows[p]
    if win is None:
        return cp_model.Domain(lo, max(lo, hi))
    spans = [[max(o, lo), min(c, hi)] for o, c in zip(*win, strict=True) if c >= lo and o <= hi]
    if not spans:
        return cp_model.Domain.from_values([])
    return cp_model.Domain.from_intervals(spans)


def solve_neighbourhood(
    inst: Instance,
    sched: Schedule,
    printers: list[int],
    *,
    time_limit_s: float,
    seed: int,
    workers: int,
) -> SubResult | None:
    """Best queues found for ``printers`` within the time limit, or None when
    CP-SAT found nothing (the hint is feasible, so only on timeout)."""
    chosen = set(printers)
    jobs = [j for p in printers for j in sched.seqs[p]]
    if not jobs:
        return None
    model = cp_model.CpModel()
    last_removal = max(sched.place[j][2] for j in jobs)
    longest = sum(max(inst.dur[j].values()) for j in jobs)
    max_gap = max(inst.change[p] for p in printers)
    if any(inst.setups[p] is not None for p in printers):
        max_gap += max(max(max(row) for row in inst.setups[p] or [[0]]) for p in printers)
    frozen_end = max((b[2] for p in printers for b in inst.frozen_blocks[p]), default=0)
    horizon = max(last_removal, frozen_end) + longest + len(jobs) * max_gap + 3 * 86400
    x: dict[tuple[int, int], cp_model.IntVar] = {}
    start: dict[tuple[int, int], cp_model.IntVar] = {}
    removal: dict[tuple[int, int], cp_model.LinearExprT] = {}
    intervals: dict[int, list[cp_model.IntervalVar]] = {p: [] for p in printers}
    cand: dict[int, list[int]] = {p: [] for p in printers}
    for j in jobs:
        lits = []
        for p in inst.dur[j]:
            if p not in chosen:
                continue
            d = inst.dur[j][p]
            lo = max(inst.release[j], inst.start_state[p][0])
            sdom = _window_domain(inst, p, lo, horizon)
            if sdom.is_empty():
                continue
            lit = model.new_bool_var("")
            s = model.new_int_var_from_domain(sdom, "")
            if inst.windows[p] is None:
                iv = model.new_optional_fixed_size_interval_var(s, d, lit, "")
                removal[j, p] = s + d
            else:
                rdom = _window_domain(inst, p, lo + d, horizon + d + 7 * 86400)
                r = model.new_int_var_from_domain(rdom, "")
                size = model.new_int_var(d, horizon + d + 7 * 86400, "")
                iv = model.new_optional_interval_var(s, size, r, lit, "")
                removal[j, p] = r
            x[j, p], start[j, p] = lit, s
            intervals[p].append(iv)
            cand[p].append(j)
            lits.append(lit)
        model.add_exactly_one(lits)
    arcs = 0
    for p in printers:
        t0, mat0, last0, fi = inst.start_state[p]
        frozen = inst.frozen_blocks[p][fi:]
        for fs, _fe, fr, _fm, _fj in frozen:
            intervals[p].append(model.new_interval_var(fs, fr - fs, fr, ""))
        if len(intervals[p]) > 1:
            model.add_no_overlap(intervals[p])
        if not cand[p]:
            continue
        if not needs_circuit(inst, p, cand[p]):
            continue
        named = _add_circuit(inst, model, p, cand[p], frozen, x, start, removal, (t0, mat0, last0))
        arcs += len(named)
        # Hint the current order: state -> jobs and frozen prints by start -> state.
        node = {j: a for a, j in enumerate(cand[p], start=1)}
        order = sorted(
            [(sched.place[j][0], node[j]) for j in sched.seqs[p]]
            + [(b[0], len(cand[p]) + 1 + c) for c, b in enumerate(frozen)]
        )
        path = [0, *(v for _s, v in order), 0]
        used = set(pairwise(path))
        for key, lit in named.items():
            model.add_hint(lit, key in used)
    # Needs: deliveries of the jobs moved here, floors from the others.
    ok = complete_needs(inst)
    moving = set(jobs)
    need_vars: dict[int, cp_model.IntVar] = {}
    objective: list[cp_model.LinearExprT] = []
    makespan = model.new_int_var(0, horizon + 30 * 86400, "")
    for j in jobs:
        n = inst.need[j]
        if n not in need_vars:
            floor = max(
                [inst.fixed_delivered[n]]
                + [
                    sched.delivered[k]
                    for k in inst.need_jobs[n]
                    if k not in moving and sched.printer_of[k] >= 0
                ]
            )
            dv = model.new_int_var(max(0, floor), max(0, floor) + horizon + 30 * 86400, "")
            need_vars[n] = dv
            if ok[n]:
                tard = model.new_int_var(0, horizon + 30 * 86400 + max(0, -inst.need_due[n]), "")
                model.add(tard >= dv - inst.need_due[n])
                model.add_hint(tard, max(0, sched.need_delivered[n] - inst.need_due[n]))
                coef = max(1, round(inst.need_weight[n] * WEIGHT_SCALE)) * TARDINESS_SCALE
                objective.append(coef * tard)
        for p in inst.dur[j]:
            if (j, p) in x:
                deliv = removal[j, p] + inst.travel[j][p]
                model.add(need_vars[n] >= deliv).only_enforce_if(x[j, p])
                model.add(makespan >= deliv).only_enforce_if(x[j, p])
                if inst.travel[j][p]:
                    objective.append(inst.travel[j][p] * x[j, p])
        prev = inst.previous_printer[j]
        if prev >= 0 and inst.stability_penalty > 0 and (j, prev) in x:
            coef = round(inst.stability_penalty * WEIGHT_SCALE) * TARDINESS_SCALE
            objective.append(coef * (1 - x[j, prev]))
    objective.append(makespan)
    model.minimize(sum(objective))
    _hint(inst, sched, model, printers, x, start, removal, need_vars, makespan)
    solver = cp_model.CpSolver()
    params = solver.parameters
    params.max_time_in_seconds = max(0.01, time_limit_s)
    params.num_workers = max(1, workers)
    params.random_seed = seed
    if arcs >= 10_000:
        # Default presolve took 6 s before a first solution on 50x10 circuits (notes §2.5).
        params.max_presolve_iterations = 1
        params.symmetry_level = 0
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    queues: dict[int, list[int]] = {}
    for p in printers:
        placed = [(solver.value(start[j, p]), j) for j in cand[p] if solver.value(x[j, p])]
        queues[p] = [j for _s, j in sorted(placed)]
    return SubResult(queues=queues, optimal=status == cp_model.OPTIMAL, arcs=arcs)


def _add_circuit(
    inst: Instance,
    model: cp_model.CpModel,
    p: int,
    cand: list[int],
    frozen: list[tuple[int, int, int, int, int]],
    x: dict[tuple[int, int], cp_model.IntVar],
    start: dict[tuple[int, int], cp_model.IntVar],
    removal: dict[tuple[int, int], cp_model.LinearExprT],
    state: tuple[int, int, int],
) -> dict[tuple[int, int], cp_model.IntVar]:
    """Sequence literals on ``p``: node 0 is the printer's current state, then
    the candidate jobs, then the frozen prints (always present, fixed).
    Returns the arc literals by (from node, to node), self-loops excluded."""
    t0, mat0, last0 = state
    k = len(cand)
    arcs: list[tuple[int, int, cp_model.LiteralT]] = []
    named: dict[tuple[int, int], cp_model.IntVar] = {}

    def arc(a: int, b: int) -> cp_model.IntVar:
        lit = model.new_bool_var("")
        arcs.append((a, b, lit))
        named[a, b] = lit
        return lit

    for a, j in enumerate(cand, start=1):
        arcs.append((a, a, ~x[j, p]))
        lit = arc(0, a)
        gap = inst.gap(p, mat0, last0, inst.material[j], j)
        model.add(start[j, p] >= t0 + gap).only_enforce_if(lit)
        arc(a, 0)
        for b, jj in enumerate(cand, start=1):
            if a == b:
                continue
            lit = arc(a, b)
            gap = inst.gap(p, inst.material[j], j, inst.material[jj], jj)
            model.add(start[jj, p] >= removal[j, p] + gap).only_enforce_if(lit)
    for c, (fs, _fe, fr, fm, fj) in enumerate(frozen, start=k + 1):
        arc(0, c)
        arc(c, 0)
        for a, j in enumerate(cand, start=1):
            into = arc(a, c)
            gap = inst.gap(p, inst.material[j], j, fm, fj)
            model.add(removal[j, p] + gap <= fs).only_enforce_if(into)
            out = arc(c, a)
            gap = inst.gap(p, fm, fj, inst.material[j], j)
            model.add(start[j, p] >= fr + gap).only_enforce_if(out)
        for c2 in range(k + 1, k + 1 + len(frozen)):
            if c2 != c:
                arc(c, c2)
    model.add_circuit(arcs)
    return named


def _hint(
    inst: Instance,
    sched: Schedule,
    model: cp_model.CpModel,
    printers: list[int],
    x: dict[tuple[int, int], cp_model.IntVar],
    start: dict[tuple[int, int], cp_model.IntVar],
    removal: dict[tuple[int, int], cp_model.LinearExprT],
    need_vars: dict[int, cp_model.IntVar],
    makespan: cp_model.IntVar,
) -> None:
    """The current schedule as the solution hint (assignment and times; the
    arc literals follow by propagation)."""
    for (j, p), lit in x.items():
        on = sched.printer_of[j] == p
        model.add_hint(lit, on)
        if on:
            model.add_hint(start[j, p], sched.place[j][0])
            r = removal[j, p]
            if isinstance(r, cp_model.IntVar):
                model.add_hint(r, sched.place[j][2])
    for n, var in need_vars.items():
        model.add_hint(var, sched.need_delivered[n])
    jobs = [j for p in printers for j in sched.seqs[p]]
    model.add_hint(makespan, max(sched.delivered[j] for j in jobs))
    del inst
