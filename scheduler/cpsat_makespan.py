"""Makespan with machine- and sequence-dependent setups (R|Sijk|Cmax).

Used when a problem's objective reduces to the last completion: no opening
hours, releases, future frozen prints, travel or moved-job penalty, and every
due date beyond the baseline's makespan (so any plan at least as short is on
time). Then a printer's completion is its start plus the sum of its prints
and gaps, and the search works on loads, not times.

Measured (docs/notes §2.2): one CP-SAT circuit model over all jobs reaches the
best-known 50-job values in 60 s but on 100 jobs with setups 1-124 finds its
first solution after 56 s. So an iterated greedy drives the search
(:mod:`scheduler.instances.loads`) and, in a thread beside it, CP-SAT
re-solves the critical printer with one or two others exactly, like the
fix-and-optimise heuristics that hold the best-known values. CP-SAT releases
the GIL while it solves, so the thread runs on the second core. Measured on
I_100_10_S_1-124_1 from an iterated-greedy plan at 214: 120 two-printer
re-solves in 15 s, all proven optimal (0.12 s each), took it to 206.

Since the descent prices whole neighbourhoods with numpy (:mod:`.load_moves`,
7x the iterations), that thread costs more than it brings beyond tiny
problems: on the four 100-job instances at 10 s (load 3-4) the search with
it came out at 6.6 % mean RPD, without it at 4.6 %. There, the second core
runs a second iterated greedy in a forked process instead, and both go on
from the better of their bests after each round. CP-SAT stays for problems
of at most :data:`HELPER_MAX_JOBS` jobs, where it proves optimality.
"""

from __future__ import annotations

import random
import threading
import time
from functools import partial
from itertools import pairwise

import numpy as np
from ortools.sat.python import cp_model

from scheduler.instances.compiled import Instance
from scheduler.instances.load_moves import BIG
from scheduler.instances.loads import LoadModel, LoadSearch, LoadState
from scheduler.instances.parallel import can_fork, fork_call
from scheduler.instances.schedule import Schedule, build

GROUP_LIMIT_S = 1.0
GROUP_MIN_JOBS = 16  # add printers to the critical one until the group has this many jobs
GROUP_MAX_PRINTERS = 6
WHOLE_MAX_JOBS = 0
WHOLE_EVERY = 4  # one whole-model solve, then three group solves
WHOLE_LIMIT_S = 5.0
TEMPERATURE = 0.5
HELPER_MAX_JOBS = 20  # CP-SAT beside the search up to this size; two searches beyond
ROUND_MIN_S = 0.5  # two-search rounds: a fork and a merge cost ~5 ms
ROUND_SHARE = 0.25  # each round takes this share of the time left
# The forked search destroys a job of the most loaded printer first in every
# iteration, this one never: I_50_20_S_1-9_1 (optimum 28) reached 28 in 3 of
# 4 seeds with it and in none without, but I_100_10_S_1-124_1 came out
# worse (11 % vs 6 % RPD, 2 seeds, fixed iteration budget).
CHILD_CRITICAL_SHARE = 1.0


def is_pure_makespan(inst: Instance, base: Schedule) -> bool:
    if base.tardiness > 0 or not inst.movable:
        return False
    if any(w is not None for w in inst.windows):
        return False
    for p in range(inst.m):
        if inst.start_state[p][3] < len(inst.frozen_blocks[p]):
            return False
    for j in inst.movable:
        if inst.previous_printer[j] >= 0 and inst.stability_penalty > 0:
            return False
        for p in inst.dur[j]:
            if inst.travel[j][p] or inst.release[j] > inst.start_state[p][0]:
                return False
    return min(inst.need_due) >= base.makespan


class Loads:
    """Queues as loads: ``gaps[p][a, b]`` is the gap from a to b on printer
    ``p`` (index n is the printer's initial state as a predecessor and the
    end of the queue as a successor), ``dur[j, p]`` the print time."""

    def __init__(self, inst: Instance) -> None:
        n, m = inst.n, inst.m
        self.inst = inst
        self.n = n
        self.dur = np.full((n + 1, m), BIG, dtype=np.int64)
        for j in inst.movable:
            for p, d in inst.dur[j].items():
                self.dur[j, p] = d
        mats = np.array([*inst.material, -2], dtype=np.int64)
        self.gaps: list[np.ndarray] = []
        for p in range(m):
            g = np.where(mats[:, None] != mats[None, :], inst.change[p], 0).astype(np.int64)
            table = inst.setups[p]
            if table is not None:
                g[:n, :n] += np.asarray(table, dtype=np.int64)
            _t0, mat0, last0, _fi = inst.start_state[p]
            for k in range(n):
                g[n, k] = inst.gap(p, mat0, last0, inst.material[k], k)
            g[:, n] = 0
            self.gaps.append(g)
        self.start = np.array([inst.start_state[p][0] for p in range(m)], dtype=np.int64)
        # Plain lists for the search loops: on queues of 5-10 jobs, indexing
        # lists is several times faster than a numpy call per evaluation.
        self.gl: list[list[list[int]]] = [g.tolist() for g in self.gaps]
        self.dl: list[list[int]] = self.dur.T.tolist()
        self.sl: list[int] = self.start.tolist()

    def load(self, p: int, seq: list[int]) -> int:
        g = self.gl[p]
        d = self.dl[p]
        total = self.sl[p]
        prev = self.n
        for j in seq:
            total += g[prev][j] + d[j]
            prev = j
        return total


def solve_makespan(
    inst: Instance, base: Schedule, *, deadline: float, seed: int, workers: int
) -> tuple[Schedule, bool]:
    """(best schedule, proven optimal) before ``deadline``: the iterated
    greedy of :mod:`scheduler.instances.loads`, in two processes when
    ``workers`` >= 2 and the platform can fork; on problems of at most
    :data:`HELPER_MAX_JOBS` jobs (or one process), CP-SAT re-solves groups of
    printers beside it in a thread."""
    lm = Loads(inst)
    model = LoadModel(inst.n, lm.gl, lm.dl, lm.sl)
    seqs = [list(q) for q in base.seqs]
    state = LoadState(seqs, [model.load(p, q) for p, q in enumerate(seqs)], [0] * inst.m)
    mean_p = float(np.mean([lm.dur[j, p] for j in inst.movable for p in inst.dur[j]]))
    search = LoadSearch(
        model,
        state,
        list(range(inst.m)),
        random.Random(seed),
        # Ruiz and Stützle's constant temperature: T * mean print / 10.
        temperature=TEMPERATURE * mean_p / 10,
    )
    optimal = False
    if workers >= 2 and can_fork() and inst.n > HELPER_MAX_JOBS:
        best = _two_processes(search, deadline=deadline, seed=seed)
    else:
        helper = GroupHelper(lm, seed=seed, deadline=deadline, workers=max(1, workers - 1))
        helper.start()
        try:
            best = search.run(deadline, helper=helper)
        finally:
            helper.stop()
        optimal = helper.proved_optimal
    sched = build(inst, best.seqs)
    if sched is None:
        raise RuntimeError("makespan queues failed to decode")
    return sched, optimal


def _two_processes(search: LoadSearch, *, deadline: float, seed: int) -> LoadState:
    """The iterated greedy in this process and, with another seed, in a
    forked one; after each round both go on from the better best."""
    rng = random.Random(seed ^ 0x2F0C)
    printers = search.printers
    while True:
        now = time.perf_counter()
        if deadline - now < 2 * ROUND_MIN_S:
            return search.run(deadline)
        end = min(deadline, now + max(ROUND_MIN_S, ROUND_SHARE * (deadline - now)))
        if deadline - end < ROUND_MIN_S:
            end = deadline
        child_seed = rng.randrange(1 << 30)

        theirs = fork_call(
            partial(_reseeded_run, search, end, child_seed),
            partial(search.run, end),
            answer_by=end,
        )
        mine = search.state
        if theirs is not None:
            loads = [search.model.load(p, q) for p, q in enumerate(theirs)]
            if (max(loads[p] for p in printers), sum(loads[p] for p in printers)) < mine.key(
                printers
            ):
                search.restart_from(theirs)
        if time.perf_counter() >= deadline:
            return search.state


def _reseeded_run(search: LoadSearch, end: float, seed: int) -> list[list[int]]:
    search.rng = random.Random(seed)
    search.critical_share = CHILD_CRITICAL_SHARE
    return search.run(end).seqs


def solve_load_group(
    lm: Loads,
    queues: dict[int, list[int]],
    limit_s: float,
    workers: int,
    seed: int,
    running: list[cp_model.CpSolver] | None = None,
) -> tuple[dict[int, list[int]], bool] | None:
    """CP-SAT load model on some printers: one ``AddCircuit`` per printer over
    its candidate jobs (self-loop = not assigned), load = prints + arc gaps,
    minimise the largest load, then the total. Hinted with ``queues``."""
    group = list(queues)
    jobs = [j for q in queues.values() for j in q]
    model = cp_model.CpModel()
    n = lm.n
    bound = int(
        max(lm.start[p] for p in group)
        + sum(int(max(lm.dur[j, p] for p in group if lm.dur[j, p] < BIG)) for j in jobs)
        + len(jobs) * max(int(lm.gaps[p].max()) for p in group)
    )
    # Every load of a feasible hint is below ``bound``, so cmax * (bound + 1)
    # dominates the total: the objective is lexicographic.
    x: dict[tuple[int, int], cp_model.IntVar] = {}
    arc_lits: dict[int, dict[tuple[int, int], cp_model.IntVar]] = {}
    loads = []
    for p in group:
        cand = [j for j in jobs if lm.dur[j, p] < BIG]
        g = lm.gaps[p]
        arcs: list[tuple[int, int, cp_model.LiteralT]] = []
        named: dict[tuple[int, int], cp_model.IntVar] = {}
        terms = []
        node = {j: a for a, j in enumerate(cand, start=1)}
        for j in cand:
            lit = model.new_bool_var("")
            x[j, p] = lit
            arcs.append((node[j], node[j], ~lit))
            terms.append(int(lm.dur[j, p]) * lit)
        for a_job in [n, *cand]:
            for b_job in [*cand, n]:
                if a_job == b_job:
                    continue
                a = 0 if a_job == n else node[a_job]
                b = 0 if b_job == n else node[b_job]
                lit = model.new_bool_var("")
                arcs.append((a, b, lit))
                named[a_job, b_job] = lit
                cost = int(g[a_job, b_job])
                if cost:
                    terms.append(cost * lit)
        # The printer may stay empty: the depot's self-loop, which then forbids
        # every job (else a cycle of jobs could skip the depot's first gap).
        empty = model.new_bool_var("")
        arcs.append((0, 0, empty))
        for j in cand:
            model.add_implication(x[j, p], ~empty)
        model.add_circuit(arcs)
        arc_lits[p] = named
        load = model.new_int_var(0, bound, "")
        model.add(load == int(lm.start[p]) + sum(terms))
        loads.append(load)
        path = [n, *queues[p], n]
        used = set(pairwise(path))
        for key, lit in named.items():
            model.add_hint(lit, key in used)
        for j in cand:
            model.add_hint(x[j, p], j in queues[p])
    for j in jobs:
        model.add_exactly_one([x[j, p] for p in group if (j, p) in x])
    cmax = model.new_int_var(0, bound, "")
    model.add_max_equality(cmax, loads)
    model.minimize(cmax * (len(group) * bound + 1) + sum(loads))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = limit_s
    solver.parameters.num_workers = max(1, workers)
    solver.parameters.random_seed = seed
    if len(group) * (len(jobs) + 1) ** 2 >= 10_000:
        # Default presolve took 6 s before a first solution on 50x10 circuits (notes §2.5).
        solver.parameters.max_presolve_iterations = 1
        solver.parameters.symmetry_level = 0
    if running is not None:
        running.append(solver)
    status = solver.solve(model)
    if running is not None:
        running.remove(solver)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    out: dict[int, list[int]] = {}
    for p in group:
        succ = {a: b for (a, b), lit in arc_lits[p].items() if solver.value(lit)}
        seq = []
        cur = succ.get(n, n)
        while cur != n:
            seq.append(cur)
            cur = succ[cur]
        out[p] = seq
    return out, status == cp_model.OPTIMAL


def makespan_lower_bound(inst: Instance) -> int:
    """A valid lower bound on the makespan of a pure-makespan problem: every
    job needs at least its cheapest print plus cheapest incoming gap, spread
    over all printers, and no job ends before its own cheapest completion."""
    lm = Loads(inst)
    m = inst.m
    total = sum(lm.sl)
    latest = 0
    for j in inst.movable:
        cheapest = BIG
        alone = BIG
        for p in inst.dur[j]:
            g = lm.gl[p]
            gap_in = min(g[i][j] for i in [lm.n, *inst.movable] if i != j)
            cheapest = min(cheapest, lm.dl[p][j] + gap_in)
            alone = min(alone, lm.sl[p] + lm.dl[p][j] + gap_in)
        total += cheapest
        latest = max(latest, alone)
    return max(latest, -(-total // m))


class GroupHelper:
    """CP-SAT re-solves of the critical printer and one or two others, in a
    background thread, on the latest state the search offers; improved
    queues come back through :meth:`poll` with the versions of the queues
    they replace (see :class:`LoadState`)."""

    def __init__(self, lm: Loads, *, seed: int, deadline: float, workers: int) -> None:
        self.lm = lm
        self.rng = random.Random(seed ^ 0x5EED)
        self.deadline = deadline
        self.workers = workers
        self.proved_optimal = False
        self.steps = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._snapshot: LoadState | None = None
        self._running: list[cp_model.CpSolver] = []  # to stop at the deadline
        self._results: list[tuple[dict[int, list[int]], dict[int, int]]] = []
        self._thread = threading.Thread(target=self._run, name="cpsat-groups", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        for solver in list(self._running):
            solver.stop_search()
        self._thread.join()

    def offer(self, state: LoadState) -> None:
        """The state to work on next (the helper keeps it: pass a copy)."""
        with self._lock:
            self._snapshot = state

    def poll(self) -> list[tuple[dict[int, list[int]], dict[int, int]]]:
        with self._lock:
            out, self._results = self._results, []
        return out

    def _run(self) -> None:
        m = len(self.lm.sl)
        while not self._stop.is_set():
            limit = min(GROUP_LIMIT_S, self.deadline - time.perf_counter() - 0.02)
            if limit < 0.02:
                return
            with self._lock:
                snap = self._snapshot
            if snap is None:
                self._stop.wait(0.005)
                continue
            workers = self.workers
            if self.lm.n <= WHOLE_MAX_JOBS and self.steps % WHOLE_EVERY == 0:
                # Small enough for one model of everything, hinted with the
                # search's best: it proves I_50_20_S_1-9_1 optimal (28) where
                # the groups stop at 29; with two workers (one did not, in 10 s).
                group = list(range(m))
                limit = min(WHOLE_LIMIT_S, self.deadline - time.perf_counter() - 0.02)
                workers = max(2, workers)
            else:
                group = self._group(snap)
            solved = solve_load_group(
                self.lm,
                {p: snap.seqs[p] for p in group},
                limit,
                workers,
                self.rng.randrange(1 << 30),
                self._running,
            )
            self.steps += 1
            if solved is None:
                continue
            new, optimal = solved
            old_key = (max(snap.loads[p] for p in group), sum(snap.loads[p] for p in group))
            new_loads = [self.lm.load(p, q) for p, q in new.items()]
            if (max(new_loads), sum(new_loads)) < old_key:
                with self._lock:
                    self._results.append((new, {p: snap.version[p] for p in group}))
            if optimal and len(group) == m:
                self.proved_optimal = True  # the whole problem, from any hint
                return

    def _group(self, snap: LoadState) -> list[int]:
        loads = snap.loads
        top = max(loads)
        critical = self.rng.choice([p for p, v in enumerate(loads) if v == top])
        others = [p for p in range(len(loads)) if p != critical]
        self.rng.shuffle(others)
        if others and self.rng.random() < 0.5:
            # The least loaded printer first: where the critical one's work can go.
            lightest = min(others, key=lambda p: loads[p])
            others.remove(lightest)
            others.insert(0, lightest)
        group = [critical]
        jobs = len(snap.seqs[critical])
        for p in others:
            if len(group) >= GROUP_MAX_PRINTERS or (len(group) >= 2 and jobs >= GROUP_MIN_JOBS):
                break
            group.append(p)
            jobs += len(snap.seqs[p])
        return group
