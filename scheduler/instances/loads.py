"""Iterated greedy on printer loads, for makespan problems (R|Sijk|Cmax).

When the objective is the last completion and nothing waits for a release,
an opening or a frozen print, a printer's completion is its start plus its
prints and the gaps between them, so a solution is just the queues and
their loads. Ruiz and Stützle's iterated greedy: destroy a few jobs,
re-insert each where the printer it lands on ends first, descend, accept
like simulated annealing.

The descent tries, for each pair of printers, every relocation of a job of
the first into the second (or within it) and every exchange of two jobs in
place, and takes a move when the larger of the two loads drops (or stays
and their sum drops). Whether such a move exists depends on the two queues
only, so a pair is tried again only when one of them has changed ("don't
look" stamps on queue versions; versions are never reused, so stamps stay
valid across the trial copies of the iterated greedy). Measured on
I_100_10_S_1-124_1: 5-7x more iterations per second than re-running the
whole descent after each destruction.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from itertools import count
from typing import Protocol

BIG = 10**9  # duration of an ineligible (job, printer) pair


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

    def saving(self, p: int, seq: list[int], i: int) -> int:
        """Load saved by taking out position ``i``."""
        g = self.gaps[p]
        a = seq[i - 1] if i > 0 else self.n
        b = seq[i + 1] if i + 1 < len(seq) else self.n
        j = seq[i]
        return g[a][j] + g[j][b] - g[a][b] + self.dur[p][j]


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
    checked: dict[tuple[int, int, int], tuple[int, int]] = field(default_factory=dict)
    versions: count[int] = field(default_factory=lambda: count(1))
    iterations: int = 0

    def touch(self, st: LoadState, p: int) -> None:
        st.version[p] = next(self.versions)
        st.loads[p] = self.model.load(p, st.seqs[p])

    def descend(self, st: LoadState, deadline: float) -> None:
        """Improving moves until none is left: for each printer, from the
        most loaded, the best relocation of one of its jobs (repeatedly),
        then exchanges between pairs of printers."""
        improved = True
        while improved and time.perf_counter() < deadline:
            improved = False
            for a in sorted(self.printers, key=lambda p: -st.loads[p]):
                while self._relocate(st, a):
                    improved = True
            if improved:
                continue
            for a in self.printers:
                for b in self.printers:
                    if a == b:
                        continue
                    stamp = (st.version[a], st.version[b])
                    if self.checked.get((a, b, 1)) == stamp:
                        continue
                    if self._exchange(st, a, b):
                        improved = True
                        continue
                    self.checked[a, b, 1] = stamp

    def _relocate(self, st: LoadState, a: int) -> bool:
        """The best move of a job of ``a`` (to another printer, or within
        ``a``) by the change of the larger load of the two printers, then of
        their sum; False, and the pairs stamped, if none improves."""
        model = self.model
        seq_a = st.seqs[a]
        la = st.loads[a]
        targets = [
            b
            for b in self.printers
            if self.checked.get((a, b, 0)) != (st.version[a], st.version[b])
        ]
        if not targets:
            return False
        best: tuple[int, int, int, int, int] | None = None  # dmax, dsum, i, b, k
        for i, j in enumerate(seq_a):
            saving = model.saving(a, seq_a, i)
            rest: list[int] | None = None
            for b in targets:
                if model.dur[b][j] >= BIG:
                    continue
                if b == a:
                    rest = rest if rest is not None else seq_a[:i] + seq_a[i + 1 :]
                    add, k = model.insertion(a, rest, j)
                    cand = (add - saving, add - saving, i, a, k)
                else:
                    lb = st.loads[b]
                    add, k = model.insertion(b, st.seqs[b], j)
                    na, nb = la - saving, lb + add
                    cand = (max(na, nb) - max(la, lb), add - saving, i, b, k)
                improves = cand[0] < 0 or (cand[0] == 0 and cand[1] < 0)
                if improves and (best is None or cand < best):
                    best = cand
        if best is None:
            for b in targets:
                self.checked[a, b, 0] = (st.version[a], st.version[b])
            return False
        _, _, i, b, k = best
        j = seq_a[i]
        rest = seq_a[:i] + seq_a[i + 1 :]
        st.seqs[a] = rest
        st.seqs[b].insert(k, j)
        self.touch(st, a)
        if b != a:
            self.touch(st, b)
        return True

    def _exchange(self, st: LoadState, a: int, b: int) -> bool:
        """Two jobs trade places (each takes the other's position)."""
        model = self.model
        qa, qb = st.seqs[a], st.seqs[b]
        ga, gb = model.gaps[a], model.gaps[b]
        da, db = model.dur[a], model.dur[b]
        la, lb = st.loads[a], st.loads[b]
        old = (max(la, lb), la + lb)
        n = model.n
        for i, j in enumerate(qa):
            if db[j] >= BIG:
                continue
            pa = qa[i - 1] if i > 0 else n
            na_ = qa[i + 1] if i + 1 < len(qa) else n
            out_a = ga[pa][j] + ga[j][na_] + da[j]
            for k, x in enumerate(qb):
                if da[x] >= BIG:
                    continue
                pb = qb[k - 1] if k > 0 else n
                nb_ = qb[k + 1] if k + 1 < len(qb) else n
                new_a = la - out_a + ga[pa][x] + ga[x][na_] + da[x]
                new_b = lb - gb[pb][x] - gb[x][nb_] - db[x] + gb[pb][j] + gb[j][nb_] + db[j]
                if (max(new_a, new_b), new_a + new_b) < old:
                    qa[i], qb[k] = x, j
                    self.touch(st, a)
                    self.touch(st, b)
                    return True
        return False

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
