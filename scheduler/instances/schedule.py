"""Printer queues decoded into times, and the objective of the result.

A solution is, per printer, the order of its movable jobs. :func:`decode` turns
an order into the earliest feasible times (release, material changes and
setups counted from the previous removal, start inside an opening window,
removal at the end or when the site next opens, frozen prints kept where they
are). For a given order the earliest times are optimal for every regular
objective, so all searches only move jobs between and within queues.
"""

from __future__ import annotations

from dataclasses import dataclass

from scheduler.instances.compiled import Instance, next_point

Placement = tuple[int, int, int]  # start, end, removal (seconds after now)
# Lexicographic objective: weighted tardiness + stability penalty, makespan, travel.
Key = tuple[float, int, int]


# Where a printer's queue stands: free from, material, last job, next frozen block.
State = tuple[int, int, int, int]


def step(inst: Instance, p: int, state: State, j: int) -> tuple[Placement, State] | None:
    """Append job ``j`` after ``state`` on printer ``p`` at the earliest time;
    None when no window remains to start or remove it."""
    t, mat, last, fi = state
    frozen = inst.frozen_blocks[p]
    win = inst.windows[p]
    chg = inst.change[p]
    table = inst.setups[p]
    d = inst.dur[j][p]
    mj = inst.material[j]
    rel = inst.release[j]
    while True:
        s = t if mat == mj else t + chg
        if table is not None and last >= 0:
            s += table[last][j]
        if rel > s:
            s = rel
        if win is None:
            e = s + d
            r = e
        else:
            start = next_point(win, s)
            if start is None:
                return None
            s = start
            e = s + d
            removal = next_point(win, e)
            if removal is None:
                return None
            r = removal
        if fi < len(frozen):
            fs, _fe, fr, fm, fj = frozen[fi]
            need = r if mj == fm else r + chg
            if table is not None:
                need += table[j][fj]
            if need > fs:  # does not fit before the next frozen print: go after it
                if fr > t:
                    t = fr
                mat, last = fm, fj
                fi += 1
                continue
        return (s, e, r), (r, mj, j, fi)


def decode(inst: Instance, p: int, seq: list[int]) -> list[Placement] | None:
    """Earliest times of ``seq`` on printer ``p``; None when a job cannot be
    started and removed inside the site's remaining windows."""
    state = inst.start_state[p]
    out: list[Placement] = []
    for j in seq:
        res = step(inst, p, state, j)
        if res is None:
            return None
        pl, state = res
        out.append(pl)
    return out


@dataclass(slots=True)
class Schedule:
    """A complete solution with its per-job times and cached objective parts."""

    inst: Instance
    seqs: list[list[int]]
    printer_of: list[int]
    place: list[Placement]
    delivered: list[int]
    need_delivered: list[int]
    tardiness: float = 0.0  # weighted, seconds x weight
    penalty: float = 0.0
    makespan: int = 0
    travel: int = 0

    def key(self) -> Key:
        return (self.tardiness + self.penalty, self.makespan, self.travel)

    def copy(self) -> Schedule:
        return Schedule(
            inst=self.inst,
            seqs=[list(s) for s in self.seqs],
            printer_of=list(self.printer_of),
            place=list(self.place),
            delivered=list(self.delivered),
            need_delivered=list(self.need_delivered),
            tardiness=self.tardiness,
            penalty=self.penalty,
            makespan=self.makespan,
            travel=self.travel,
        )


def build(inst: Instance, seqs: list[list[int]]) -> Schedule | None:
    """Decode every queue; None if some queue cannot be decoded."""
    n = inst.n
    printer_of = [-1] * n
    place: list[Placement] = [(0, 0, 0)] * n
    delivered = [0] * n
    for j in range(n):
        p = inst.frozen_printer[j]
        if p >= 0:
            for s, e, r, _m, fj in inst.frozen_blocks[p]:
                if fj == j:
                    printer_of[j] = p
                    place[j] = (s, e, r)
                    delivered[j] = r + inst.travel[j][p]
    for p, seq in enumerate(seqs):
        times = decode(inst, p, seq)
        if times is None:
            return None
        for j, pl in zip(seq, times, strict=True):
            printer_of[j] = p
            place[j] = pl
            delivered[j] = pl[2] + inst.travel[j][p]
    sched = Schedule(
        inst=inst,
        seqs=[list(s) for s in seqs],
        printer_of=printer_of,
        place=place,
        delivered=delivered,
        need_delivered=[0] * len(inst.need_ids),
    )
    refresh_objective(sched)
    return sched


def need_value(inst: Instance, delivered: list[int], printer_of: list[int], n: int) -> int:
    """Delivery of need ``n``: its last delivered job (scheduled jobs only)."""
    best = inst.fixed_delivered[n]
    for j in inst.need_jobs[n]:
        if printer_of[j] >= 0 and delivered[j] > best:
            best = delivered[j]
    return best


def complete_needs(inst: Instance) -> list[bool]:
    """Needs whose every job can be scheduled: only those count as delivered."""
    ok = [True] * len(inst.need_ids)
    for j in inst.unassigned:
        ok[inst.need[j]] = False
    return ok


def refresh_objective(sched: Schedule) -> None:
    inst = sched.inst
    ok = complete_needs(inst)
    tard = 0.0
    for n in range(len(inst.need_ids)):
        d = need_value(inst, sched.delivered, sched.printer_of, n)
        sched.need_delivered[n] = d
        if ok[n] and d > inst.need_due[n]:
            tard += inst.need_weight[n] * (d - inst.need_due[n])
    sched.tardiness = tard
    makespan = 0
    travel = 0
    moved = 0
    for j in range(inst.n):
        p = sched.printer_of[j]
        if p < 0:
            continue
        if sched.delivered[j] > makespan:
            makespan = sched.delivered[j]
        travel += inst.travel[j][p]
        if inst.previous_printer[j] >= 0 and p != inst.previous_printer[j]:
            moved += 1
    sched.makespan = makespan
    sched.travel = travel
    sched.penalty = moved * inst.stability_penalty


def with_queues(sched: Schedule, queues: dict[int, list[int]]) -> Schedule | None:
    """A copy of ``sched`` with the queues of some printers replaced; None if
    one of them cannot be decoded. Only the touched needs are re-evaluated."""
    inst = sched.inst
    decoded: dict[int, list[Placement]] = {}
    for p, seq in queues.items():
        times = decode(inst, p, seq)
        if times is None:
            return None
        decoded[p] = times
    new = sched.copy()
    touched: set[int] = set()
    for p in queues:
        for j in sched.seqs[p]:
            touched.add(inst.need[j])
            if new.printer_of[j] == p:
                new.printer_of[j] = -1
    for p, seq in queues.items():
        new.seqs[p] = list(seq)
        for j, pl in zip(seq, decoded[p], strict=True):
            new.printer_of[j] = p
            new.place[j] = pl
            new.delivered[j] = pl[2] + inst.travel[j][p]
            touched.add(inst.need[j])
    ok = complete_needs(inst)
    tard = new.tardiness
    for n in touched:
        old = sched.need_delivered[n]
        if ok[n] and old > inst.need_due[n]:
            tard -= inst.need_weight[n] * (old - inst.need_due[n])
        d = need_value(inst, new.delivered, new.printer_of, n)
        new.need_delivered[n] = d
        if ok[n] and d > inst.need_due[n]:
            tard += inst.need_weight[n] * (d - inst.need_due[n])
    # Sums of float deltas drift; below a millionth of a weighted second it is noise.
    new.tardiness = tard if tard > 1e-6 else 0.0
    travel = 0
    moved = 0
    makespan = 0
    for j in range(inst.n):
        p = new.printer_of[j]
        if p < 0:
            continue
        if new.delivered[j] > makespan:
            makespan = new.delivered[j]
        travel += inst.travel[j][p]
        if inst.previous_printer[j] >= 0 and p != inst.previous_printer[j]:
            moved += 1
    new.makespan = makespan
    new.travel = travel
    new.penalty = moved * inst.stability_penalty
    return new
