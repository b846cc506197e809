"""Why the plan is what it is, in plain data.

For each planned job: the printers it could have used instead and what moving
it there (at the same point in that printer's queue, everything else as
planned) would change: its own delivery and the plan's weighted tardiness and
makespan. For each late need: how late, and what holds its last plate back,
in seconds per cause (waiting for a busy printer, material changes, opening
hours, a late release, travel, few eligible printers), plus whether it could
be on time at all on an idle fleet.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from scheduler.instances.compiled import Instance, compile_problem, next_point
from scheduler.instances.moves import Mover
from scheduler.instances.schedule import Schedule, build, step
from scheduler.types import Plan, Problem


@dataclass(frozen=True, slots=True)
class Alternative:
    printer_id: str
    delivered_at: datetime
    weighted_tardiness_change_s: float  # plan total, weight x seconds; > 0 is worse
    makespan_change_s: int


@dataclass(frozen=True, slots=True)
class JobExplanation:
    job_id: str
    printer_id: str
    delivered_at: datetime
    late_s: int  # of its need, 0 when on time
    frozen: bool
    alternatives: tuple[Alternative, ...]  # best first


@dataclass(frozen=True, slots=True)
class NeedExplanation:
    need_id: str
    due_at: datetime
    delivered_at: datetime
    late_s: int
    weight: float
    last_job_id: str
    causes: tuple[tuple[str, int], ...]  # (cause, seconds), largest first
    on_time_possible_alone: bool  # could its jobs be on time on an idle fleet?


@dataclass(frozen=True, slots=True)
class Explanation:
    jobs: tuple[JobExplanation, ...]
    late_needs: tuple[NeedExplanation, ...]
    alternatives_skipped: int = 0  # jobs left without alternatives by the time budget

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: datetimes as ISO 8601 strings."""

        def convert(value: Any) -> Any:
            if isinstance(value, datetime):
                return value.isoformat()
            if isinstance(value, dict):
                return {k: convert(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [convert(v) for v in value]
            return value

        result: dict[str, Any] = convert(asdict(self))
        return result


def _schedule_of(inst: Instance, plan: Plan) -> Schedule:
    """The plan's queues, decoded to earliest times (a plan from ``allocate``
    is already left-shifted, so its times do not change)."""
    index = {jid: j for j, jid in enumerate(inst.job_ids)}
    pindex = {pid: p for p, pid in enumerate(inst.printer_ids)}
    ordered = sorted(plan.assignments, key=lambda a: a.start_at)
    seqs: list[list[int]] = [[] for _ in range(inst.m)]
    for a in ordered:
        j = index[a.job_id]
        if inst.frozen_printer[j] < 0:
            seqs[pindex[a.printer_id]].append(j)
    sched = build(inst, seqs)
    if sched is None:
        raise ValueError("the plan does not fit the problem's opening hours")
    return sched


def explain_plan(
    problem: Problem,
    plan: Plan,
    *,
    alternatives: int = 3,
    budget_s: float | None = None,
) -> Explanation:
    """Raises ValueError when ``plan`` is not a plan of ``problem``.

    Alternatives cost one move evaluation per (job, eligible printer): 65-78 s on 3,600
    jobs x 500 printers. With ``budget_s`` they are computed within that time, for the
    jobs of late needs first, then by planned start (what operators see next); the other
    jobs are still explained, with no alternatives, and counted in
    ``alternatives_skipped``."""
    started = time.perf_counter()
    inst = compile_problem(problem)
    sched = _schedule_of(inst, plan)
    mover = Mover(sched)
    now = problem.now

    def at(seconds: int) -> datetime:
        return now + timedelta(seconds=seconds)

    base_key = sched.key()
    placed = [j for j in range(inst.n) if sched.printer_of[j] >= 0]
    movable = [j for j in placed if inst.frozen_printer[j] < 0]
    late = {n for n, d in enumerate(sched.need_delivered) if d > inst.need_due[n]}
    movable.sort(key=lambda j: (inst.need[j] not in late, sched.place[j][0], j))
    options: dict[int, list[Alternative]] = {}
    skipped = 0
    for j in movable:
        if budget_s is not None and time.perf_counter() - started > budget_s:
            skipped += 1
            continue
        options[j] = _alternatives(inst, mover, j, base_key, at)[:alternatives]
    jobs: list[JobExplanation] = []
    for j in placed:
        n = inst.need[j]
        jobs.append(
            JobExplanation(
                job_id=inst.job_ids[j],
                printer_id=inst.printer_ids[sched.printer_of[j]],
                delivered_at=at(sched.delivered[j]),
                late_s=max(0, sched.need_delivered[n] - inst.need_due[n]),
                frozen=inst.frozen_printer[j] >= 0,
                alternatives=tuple(options.get(j, ())),
            )
        )
    return Explanation(
        jobs=tuple(jobs),
        late_needs=tuple(_late_needs(inst, sched, at)),
        alternatives_skipped=skipped,
    )


def _alternatives(
    inst: Instance,
    mover: Mover,
    j: int,
    base_key: tuple[float, int, int],
    at: Callable[[int], datetime],
) -> list[Alternative]:
    sched = mover.sched
    a = sched.printer_of[j]
    qa = sched.seqs[a]
    i = qa.index(j)
    removed = qa[:i] + qa[i + 1 :]
    start = sched.place[j][0]
    out: list[Alternative] = []
    for b in inst.dur[j]:
        if b == a:
            continue
        qb = sched.seqs[b]
        k = sum(1 for x in qb if sched.place[x][0] <= start)
        queue = [*qb[:k], j, *qb[k:]]
        # No early cut on tardiness: worse alternatives are the point here.
        ev = mover.evaluate({a: (i, removed), b: (k, queue)}, cutoff=False)
        if ev is None:
            continue
        own = ev.tails[b][0] if ev.tails[b] else sched.place[j]
        out.append(
            Alternative(
                printer_id=inst.printer_ids[b],
                delivered_at=at(own[2] + inst.travel[j][b]),
                weighted_tardiness_change_s=(ev.key[0] - base_key[0]),
                makespan_change_s=ev.key[1] - base_key[1],
            )
        )
    out.sort(key=lambda alt: (alt.weighted_tardiness_change_s, alt.makespan_change_s))
    return out


def _late_needs(
    inst: Instance, sched: Schedule, at: Callable[[int], datetime]
) -> list[NeedExplanation]:
    out: list[NeedExplanation] = []
    for n, delivered in enumerate(sched.need_delivered):
        due = inst.need_due[n]
        if delivered <= due or any(j in inst.unassigned for j in inst.need_jobs[n]):
            continue
        scheduled = [j for j in inst.need_jobs[n] if sched.printer_of[j] >= 0]
        last = max(scheduled, key=lambda j: sched.delivered[j])
        out.append(
            NeedExplanation(
                need_id=inst.need_ids[n],
                due_at=at(due),
                delivered_at=at(delivered),
                late_s=delivered - due,
                weight=inst.need_weight[n],
                last_job_id=inst.job_ids[last],
                causes=tuple(_causes(inst, sched, last)),
                on_time_possible_alone=all(
                    _alone(inst, j) <= due for j in scheduled if inst.frozen_printer[j] < 0
                ),
            )
        )
    out.sort(key=lambda e: -e.weight * e.late_s)
    return out


def _alone(inst: Instance, j: int) -> int:
    """Earliest delivery of ``j`` on an otherwise idle fleet."""
    best = 1 << 62
    for p in inst.dur[j]:
        res = step(inst, p, inst.start_state[p], j)
        if res is not None:
            best = min(best, res[0][2] + inst.travel[j][p])
    return best


def _causes(inst: Instance, sched: Schedule, j: int) -> list[tuple[str, int]]:
    """Seconds between the job's release and its delivery, by cause."""
    p = sched.printer_of[j]
    s, e, r = sched.place[j]
    queue = sched.seqs[p]
    pos = queue.index(j) if j in queue else -1
    if pos > 0:
        prev = queue[pos - 1]
        free, mat, last = sched.place[prev][2], inst.material[prev], prev
    else:
        free, mat, last = inst.start_state[p][0], inst.start_state[p][1], inst.start_state[p][2]
    change = inst.gap(p, mat, last, inst.material[j], j)
    ready = max(inst.release[j], 0)
    earliest = max(ready, free + change)
    win = inst.windows[p]
    opened = next_point(win, earliest) if win is not None else earliest
    causes = {
        "late_release": max(0, ready - inst.start_state[p][0]),
        "capacity": max(0, free - ready),
        "material": change if free + change > ready else max(0, free + change - ready),
        "opening_hours": max(0, (opened or earliest) - earliest) + (r - e),
        "printing": e - s,
        "travel": inst.travel[j][p],
        "few_eligible_printers": 0,
    }
    if len(inst.dur[j]) <= 2 and causes["capacity"] > 0:
        causes["few_eligible_printers"] = causes.pop("capacity")
    return sorted(((k, v) for k, v in causes.items() if v > 0), key=lambda kv: -kv[1])
