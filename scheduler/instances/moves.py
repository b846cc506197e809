"""Fast local moves on printer queues, evaluated incrementally.

A move replaces the queues of one or two printers. Its exact effect on the
lexicographic key is computed from the changed suffixes only (prefix states
are cached per printer), so thousands of moves a second are possible in pure
Python; the CP-SAT neighbourhoods then work on a schedule that these cheap
moves have already cleaned up.
"""

from __future__ import annotations

from dataclasses import dataclass

from scheduler.instances.compiled import Instance
from scheduler.instances.schedule import Key, Placement, Schedule, State, complete_needs, step


@dataclass(slots=True)
class Evaluation:
    key: Key
    queues: dict[int, tuple[int, list[int]]]  # printer -> (first changed position, queue)
    tails: dict[int, list[Placement]]  # times from that position on


class Mover:
    """Holds a schedule and applies improving moves to it in place."""

    def __init__(self, sched: Schedule) -> None:
        self.sched = sched
        self.inst: Instance = sched.inst
        self.ok = complete_needs(self.inst)
        self.prefix: dict[int, list[State]] = {}
        self.prefix_last: dict[int, list[int]] = {}  # latest delivery before each position
        self.suffix_last: dict[int, list[int]] = {}  # latest delivery from each position on
        inst = self.inst
        self.frozen_last = [
            max((b[2] + inst.travel[b[4]][p] for b in inst.frozen_blocks[p]), default=0)
            for p in range(inst.m)
        ]
        self.last = list(self.frozen_last)
        for j in range(inst.n):
            p = sched.printer_of[j]
            if p >= 0 and sched.delivered[j] > self.last[p]:
                self.last[p] = sched.delivered[j]
        # Printers this search may change (None: all); a process of a
        # parallel search owns half of them.
        self.printers: list[bool] | None = None
        self.top: list[tuple[int, int]] = []
        self._refresh_top()
        self.moved = 0
        if inst.stability_penalty:
            self.moved = round(sched.penalty / inst.stability_penalty)

    def states(self, p: int) -> list[State]:
        """State before each position of ``p``'s queue (and after the last)."""
        cached = self.prefix.get(p)
        if cached is not None:
            return cached
        inst = self.inst
        state = inst.start_state[p]
        out = [state]
        last = self.frozen_last[p]
        lasts = [last]
        for j in self.sched.seqs[p]:
            res = step(inst, p, state, j)
            if res is None:  # cannot happen for a decoded queue
                raise RuntimeError("queue no longer decodes")
            state = res[1]
            out.append(state)
            last = max(last, self.sched.delivered[j])
            lasts.append(last)
        self.prefix[p] = out
        self.prefix_last[p] = lasts
        suffix = [0] * (len(self.sched.seqs[p]) + 1)
        for k in range(len(self.sched.seqs[p]) - 1, -1, -1):
            suffix[k] = max(suffix[k + 1], self.sched.delivered[self.sched.seqs[p][k]])
        self.suffix_last[p] = suffix
        return out

    def _tail(self, p: int, pos: int, queue: list[int]) -> tuple[list[Placement], int] | None:
        """Times of ``queue[pos:]`` and the old position where decoding could
        stop: once the printer is in the same state before the same remaining
        jobs as in the current queue (a removal snapped to the same opening
        hour, typically), nothing after changes. Returns (times, resume) where
        ``resume`` indexes the old queue (its length when decoded to the end)."""
        states = self.states(p)
        old = self.sched.seqs[p]
        shift = len(old) - len(queue)
        common = 0  # length of the common suffix of the old and new queues
        limit = min(len(old), len(queue) - pos)
        while common < limit and old[-1 - common] == queue[-1 - common]:
            common += 1
        first_common = len(queue) - common
        state = states[pos]
        out: list[Placement] = []
        inst = self.inst
        for q in range(pos, len(queue)):
            if q >= first_common and state == states[q + shift]:
                return out, q + shift
            res = step(inst, p, state, queue[q])
            if res is None:
                return None
            out.append(res[0])
            state = res[1]
        return out, len(old)

    def evaluate(
        self, changes: dict[int, tuple[int, list[int]]], *, cutoff: bool = True
    ) -> Evaluation | None:
        """``changes`` maps a printer to (first changed position, new queue).
        Returns None when a queue no longer fits the windows, or when the move
        already loses on weighted tardiness (the first part of the key)."""
        sched = self.sched
        inst = self.inst
        tails: dict[int, list[Placement]] = {}
        changed: dict[int, int] = {}  # job -> new delivery, where it differs
        new_printer: dict[int, int] = {}
        lasts: dict[int, int] = {}
        delivered = sched.delivered
        printer_of = sched.printer_of
        for p, (pos, queue) in changes.items():
            decoded = self._tail(p, pos, queue)
            if decoded is None:
                return None
            tail, resume = decoded
            tails[p] = tail
            last = max(self.prefix_last[p][pos], self.suffix_last[p][resume])
            travel_p = inst.travel
            for j, pl in zip(queue[pos:], tail, strict=False):
                d = pl[2] + travel_p[j][p]
                if d > last:
                    last = d
                if d != delivered[j] or printer_of[j] != p:
                    changed[j] = d
                    if printer_of[j] != p:
                        new_printer[j] = p
            lasts[p] = last
        moved = self.moved
        travel = sched.travel
        for j, p in new_printer.items():
            old = sched.printer_of[j]
            travel += inst.travel[j][p] - inst.travel[j][old]
            prev = inst.previous_printer[j]
            if prev >= 0:
                moved += (p != prev) - (old != prev)
        tard = sched.tardiness
        done: set[int] = set()
        for j in changed:
            n = inst.need[j]
            if n in done or not self.ok[n]:
                continue
            done.add(n)
            due = inst.need_due[n]
            old = sched.need_delivered[n]
            if old > due:
                tard -= inst.need_weight[n] * (old - due)
            d = inst.fixed_delivered[n]
            for k in inst.need_jobs[n]:
                v = changed.get(k)
                if v is None:
                    if sched.printer_of[k] < 0:
                        continue
                    v = delivered[k]
                if v > d:
                    d = v
            if d > due:
                tard += inst.need_weight[n] * (d - due)
        tard = tard if tard > 1e-6 else 0.0
        first = tard + moved * inst.stability_penalty
        if cutoff and first > self.sched.tardiness + self.sched.penalty + 1e-9:
            return None
        makespan = max(lasts.values(), default=0)
        if len(lasts) < len(self.top):
            for v, q in self.top:
                if q not in lasts:
                    if v > makespan:
                        makespan = v
                    break
        else:  # many printers at once (a merge, an undone kick): look at all
            for q, v in enumerate(self.last):
                if q not in lasts and v > makespan:
                    makespan = v
        key = (first, makespan, travel)
        return Evaluation(key=key, queues=changes, tails=tails)

    def _refresh_top(self) -> None:
        """The printers with the three latest deliveries: with at most two
        printers changed by a move, the third is enough for the makespan."""
        self.top = sorted(((v, q) for q, v in enumerate(self.last)), reverse=True)[:3]

    def apply(self, ev: Evaluation) -> None:
        sched = self.sched
        inst = self.inst
        touched: set[int] = set()
        for p, (pos, queue) in ev.queues.items():
            sched.seqs[p] = list(queue)
            self.prefix.pop(p, None)
            for j, pl in zip(queue[pos:], ev.tails[p], strict=False):
                sched.printer_of[j] = p
                sched.place[j] = pl
                sched.delivered[j] = pl[2] + inst.travel[j][p]
                touched.add(inst.need[j])
        for p in ev.queues:
            last = self.frozen_last[p]
            for j in sched.seqs[p]:
                if sched.delivered[j] > last:
                    last = sched.delivered[j]
            self.last[p] = last
        for n in touched:
            d = inst.fixed_delivered[n]
            for j in inst.need_jobs[n]:
                if sched.printer_of[j] >= 0 and sched.delivered[j] > d:
                    d = sched.delivered[j]
            sched.need_delivered[n] = d
        tard_pen, sched.makespan, sched.travel = ev.key
        moved = 0
        if inst.stability_penalty:
            moved = sum(
                1
                for j in range(inst.n)
                if inst.previous_printer[j] >= 0
                and sched.printer_of[j] >= 0
                and sched.printer_of[j] != inst.previous_printer[j]
            )
        self.moved = moved
        sched.penalty = moved * inst.stability_penalty
        sched.tardiness = max(0.0, tard_pen - sched.penalty)
        self._refresh_top()
