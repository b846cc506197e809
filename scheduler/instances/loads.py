"""Iterated greedy on printer loads, for makespan problems (R|Sijk|Cmax).

When the objective is the last completion and nothing waits for a release,
an opening or a frozen print, a printer's completion is its start plus its
prints and the gaps between them, so a solution is just the queues and
their loads. Ruiz and Stützle's iterated greedy: destroy a few jobs,
re-insert each where the printer it lands on ends first, descend, accept
like simulated annealing.

The descent prices every relocation of a job (into another queue or its
own) and every exchange of two jobs in place at once (:mod:`.load_moves`)
and takes the best move that lowers the larger of the two loads it changes
(or keeps it and lowers their sum). Whether a move improves depends on its
two queues only, so after a local optimum only moves touching a queue
changed since are priced (queue versions are never reused, so this holds
across the trial copies of the iterated greedy). Measured on
I_100_20_S_1-124_1, 10 s, one core: 7,000-15,000 iterations where the
pure-Python first-improvement descent managed 1,000 (best 84-87 vs 94).
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from itertools import count
from typing import Protocol

from scheduler.instances.load_moves import BIG, LoadMoves, apply_move


@dataclass(slots=True)
class LoadModel:
    """``gaps[p][a][b]``: gap on printer ``p`` when ``b`` follows ``a``;
    index ``n`` is the printer's initial state as a predecessor (and the end
    of the queue as a successor, gap 0). ``dur[p][j]``: print time, or
    :data:`BIG` when ineligible. ``start[p]``: when ``p`` is free."""

    n: int
    gaps: list[list[list[int]]]
    dur: list[list[int]]
    start: list[int]

    def load(self, p: int, seq: list[int]) -> int:
        g = self.gaps[p]
        d = self.dur[p]
        total = self.start[p]
        prev = self.n
        for j in seq:
            total += g[prev][j] + d[j]
            prev = j
        return total

    def insertion(self, p: int, seq: list[int], j: int) -> tuple[int, int]:
        """(cheapest added load, position) of ``j`` in ``seq`` on ``p``."""
        g = self.gaps[p]
        gj = g[j]
        prev = self.n
        gp = g[prev]
        if not seq:
            return gp[j] + self.dur[p][j], 0
        first = seq[0]
        best = gp[j] + gj[first] - gp[first]
        best_k = 0
        prev = first
        for k in range(1, len(seq)):
            nxt = seq[k]
            gp = g[prev]
            v = gp[j] + gj[nxt] - gp[nxt]
            if v < best:
                best, best_k = v, k
            prev = nxt
        v = g[prev][j]  # at the end: no successor, no gap after
        if v < best:
            best, best_k = v, len(seq)
        return best + self.dur[p][j], best_k


@dataclass(slots=True)
class LoadState:
    seqs: list[list[int]]
    loads: list[int]
    version: list[int]

    def copy(self) -> LoadState:
        return LoadState([list(q) for q in self.seqs], list(self.loads), list(self.version))

    def key(self, printers: list[int]) -> tuple[int, int]:
        return (max(self.loads[p] for p in printers), sum(self.loads[p] for p in printers))


@dataclass(slots=True)
class LoadSearch:
    """Iterated greedy over ``printers`` (all of them, or one half in a
    parallel round); jobs on the other printers stay where they are."""

    model: LoadModel
    state: LoadState
    printers: list[int]
    rng: random.Random
    temperature: float
    destroy: tuple[int, int] = (2, 6)
    restart_after: int = 300
    # Share of the iterations whose destruction takes a job of a most loaded
    # printer first (the others draw all of them at random).
    critical_share: float = 0.0
    versions: count[int] = field(default_factory=lambda: count(1))
    iterations: int = 0
    moves: LoadMoves | None = None
    # Queue versions of the last local optimum: no move among them improves.
    settled: set[int] = field(default_factory=set)

    def touch(self, st: LoadState, p: int) -> None:
        st.version[p] = next(self.versions)
        st.loads[p] = self.model.load(p, st.seqs[p])

    def descend(self, st: LoadState, deadline: float) -> None:
        """Best improving relocations and exchanges (see :mod:`.load_moves`)
        until none is left. Only moves touching a queue changed since the
        last local optimum are priced: each is judged on its two queues."""
        if self.moves is None:
            self.moves = LoadMoves(self.model, self.printers)
        dirty = [st.version[p] not in self.settled for p in range(len(st.seqs))]
        while time.perf_counter() < deadline:
            move = self.moves.best_move(st, dirty)
            if move is None:
                self.settled = {st.version[p] for p in self.printers}
                return
            for p in apply_move(st, move):
                self.touch(st, p)
                dirty[p] = True

    def _rebuild(self, st: LoadState, removed: list[int]) -> None:
        """Each removed job where its printer then ends first (then where it
        adds the least)."""
        model = self.model
        for j in removed:
            best: tuple[int, int, int, int] | None = None
            for b in self.printers:
                if model.dur[b][j] >= BIG:
                    continue
                add, k = model.insertion(b, st.seqs[b], j)
                cand = (st.loads[b] + add, add, b, k)
                if best is None or cand < best:
                    best = cand
            assert best is not None  # the job came from one of these printers
            _, _, b, k = best
            st.seqs[b].insert(k, j)
            self.touch(st, b)

    def adopt(self, st: LoadState, queues: dict[int, list[int]], versions: dict[int, int]) -> bool:
        """Put ``queues`` into ``st`` if the queues they replace are the ones
        they were computed from (same versions)."""
        if any(st.version[p] != v for p, v in versions.items()):
            return False
        for p, q in queues.items():
            st.seqs[p] = list(q)
            self.touch(st, p)
        return True

    def restart_from(self, seqs: list[list[int]]) -> None:
        """Resume from ``seqs`` (a better state found elsewhere), with fresh
        queue versions so no stamp of this search applies to them."""
        st = LoadState([list(q) for q in seqs], list(self.state.loads), list(self.state.version))
        for p in range(len(seqs)):
            self.touch(st, p)
        self.state = st

    def run(self, deadline: float, helper: Helper | None = None) -> LoadState:
        """Iterate until ``deadline``; the best state seen (also kept in
        ``self.state``, where a later call resumes). ``helper`` gets the best
        state whenever it improves and hands back improved queues."""
        printers = self.printers
        cur = self.state.copy()
        if helper is not None:
            helper.offer(cur.copy())
        self.descend(cur, deadline)
        best = cur.copy()
        best_key = cur_key = cur.key(printers)
        offered = None
        stale = 0
        while time.perf_counter() < deadline:
            if helper is not None:
                done = helper.proved_optimal
                for queues, versions in helper.poll():
                    if self.adopt(cur, queues, versions):
                        cur_key = cur.key(printers)
                    candidate = best.copy()
                    if self.adopt(candidate, queues, versions):
                        key = candidate.key(printers)
                        if key < best_key:
                            best, best_key = candidate, key
                    if cur_key < best_key:
                        best, best_key = cur.copy(), cur_key
                    elif best_key < cur_key:
                        cur, cur_key = best.copy(), best_key
                if done:
                    break
                if offered != best_key:
                    helper.offer(best.copy())
                    offered = best_key
            self.iterations += 1
            trial = cur.copy()
            jobs = [(p, j) for p in printers for j in trial.seqs[p]]
            d = min(len(jobs), self.rng.randint(*self.destroy))
            picked = self.rng.sample(jobs, d)
            if self.critical_share and self.rng.random() < self.critical_share:
                top = max(trial.loads[p] for p in printers)
                crit = [(p, j) for p, j in jobs if trial.loads[p] == top]
                first = self.rng.choice(crit)
                if first not in picked:
                    picked[0] = first
            for p, j in picked:
                trial.seqs[p].remove(j)
            for p in {p for p, _ in picked}:
                self.touch(trial, p)
            self._rebuild(trial, [j for _, j in picked])
            self.descend(trial, deadline)
            key = trial.key(printers)
            stale += 1
            if stale > self.restart_after:
                cur, cur_key, stale = best.copy(), best_key, 0  # the walk drifted: back to the best
                continue
            worse = key[0] - cur_key[0]
            if key <= cur_key or self.rng.random() < math.exp(-worse / max(1e-9, self.temperature)):
                cur, cur_key = trial, key
                if key < best_key:
                    best, best_key, stale = trial.copy(), key, 0
        self.state = best
        return best


class Helper(Protocol):
    """Works beside :meth:`LoadSearch.run` (CP-SAT in a thread)."""

    proved_optimal: bool

    def offer(self, state: LoadState) -> None: ...

    def poll(self) -> list[tuple[dict[int, list[int]], dict[int, int]]]: ...
