"""A :class:`~scheduler.types.Problem` compiled to integer seconds and indices.

Every solver works on this form: times are whole seconds after ``problem.now``,
jobs, printers, needs and materials are list indices. :func:`compile_problem`
is the only place that reads datetimes on the way in.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import datetime

from core.errors import Invalid
from scheduler.travel import problem_travel_s
from scheduler.types import Problem

# A printer's site windows as two sorted lists (opens, closes), merged.
Windows = tuple[list[int], list[int]]
# A frozen job as the printer sees it: start, end, removal, material, job index.
FrozenBlock = tuple[int, int, int, int, int]


def seconds_after(now: datetime, at: datetime, *, up: bool) -> int:
    """Whole seconds from ``now`` to ``at``, rounded up (``up``) or down: the
    rounding always goes the safe way (never earlier than a release, never
    later than a closing time)."""
    if at.tzinfo is None:
        raise Invalid("datetimes must be timezone-aware", at=at.isoformat())
    delta = (at - now).total_seconds()
    return math.ceil(delta) if up else math.floor(delta)


def next_point(windows: Windows, t: int) -> int | None:
    """The first instant >= ``t`` inside a window, or None after the last one."""
    opens, closes = windows
    i = bisect_left(closes, t)
    if i == len(closes):
        return None
    o = opens[i]
    return o if o > t else t


@dataclass(slots=True)
class Instance:
    problem: Problem
    job_ids: list[str]
    printer_ids: list[str]
    release: list[int]
    due: list[int]
    weight: list[float]
    material: list[int]
    need: list[int]  # need index of each job
    # per job: eligible printer index -> processing seconds (frozen jobs: their printer only)
    dur: list[dict[int, int]]
    travel: list[dict[int, int]]  # per job: eligible printer index -> travel seconds
    frozen_printer: list[int]  # -1 when the job may move
    frozen_start: list[int]
    previous_printer: list[int]  # -1 when none
    previous_start: list[int]
    unassigned: dict[int, str]  # job index -> reason; never scheduled
    avail: list[int]
    init_material: list[int]  # -1: empty
    change: list[int]
    site_of: list[int]
    windows: list[Windows | None]  # per printer (its site's windows)
    setups: list[list[list[int]] | None]  # per printer, [prev job][next job] seconds
    need_ids: list[str]
    need_jobs: list[list[int]]
    need_due: list[int]
    need_weight: list[float]
    stability_penalty: float
    materials: list[str]
    # derived: per printer its frozen blocks after ``start_state`` and that state
    frozen_blocks: list[list[FrozenBlock]] = field(default_factory=list)
    start_state: list[tuple[int, int, int, int]] = field(default_factory=list)
    movable: list[int] = field(default_factory=list)  # schedulable non-frozen jobs
    fixed_delivered: list[int] = field(default_factory=list)  # per need: frozen-job floor

    @property
    def n(self) -> int:
        return len(self.job_ids)

    @property
    def m(self) -> int:
        return len(self.printer_ids)

    def gap(self, p: int, prev_mat: int, prev_job: int, mat: int, job: int) -> int:
        """Seconds needed between a removal and the next start on printer ``p``."""
        g = 0 if prev_mat == mat else self.change[p]
        table = self.setups[p]
        if table is not None and prev_job >= 0:
            g += table[prev_job][job]
        return g

    def removal(self, p: int, end: int) -> int | None:
        w = self.windows[p]
        return end if w is None else next_point(w, end)


def _merge_windows(raw: list[tuple[int, int]]) -> Windows:
    opens: list[int] = []
    closes: list[int] = []
    for o, c in sorted(raw):
        if c < o:
            continue
        if closes and o <= closes[-1]:
            closes[-1] = max(closes[-1], c)
        else:
            opens.append(o)
            closes.append(c)
    return opens, closes


def compile_problem(problem: Problem) -> Instance:
    """Raises :class:`core.errors.Invalid` on dangling ids or naive datetimes."""
    now = problem.now
    sites = {s.id: s for s in problem.sites}
    points = {d.id: d for d in problem.delivery_points}
    printer_ids = [p.id for p in problem.printers]
    pindex = {pid: i for i, pid in enumerate(printer_ids)}
    if len(pindex) != len(printer_ids):
        raise Invalid("duplicate printer id")
    site_ids = list(sites)
    sindex = {sid: i for i, sid in enumerate(site_ids)}
    site_windows: list[Windows | None] = []
    for s in problem.sites:
        if s.open_windows is None:
            site_windows.append(None)
        else:
            site_windows.append(
                _merge_windows(
                    [
                        (seconds_after(now, a, up=True), seconds_after(now, b, up=False))
                        for a, b in s.open_windows
                    ]
                )
            )
    materials: list[str] = []
    mindex: dict[str, int] = {}

    def mat_index(name: str) -> int:
        if name not in mindex:
            mindex[name] = len(materials)
            materials.append(name)
        return mindex[name]

    avail, init_material, change, site_of, windows = [], [], [], [], []
    for pr in problem.printers:
        if pr.site_id not in sindex:
            raise Invalid("printer on an unknown site", printer_id=pr.id, site_id=pr.site_id)
        avail.append(max(0, seconds_after(now, pr.available_at, up=True)))
        init_material.append(-1 if pr.material is None else mat_index(pr.material))
        change.append(max(0, int(pr.material_change_s)))
        site_of.append(sindex[pr.site_id])
        windows.append(site_windows[sindex[pr.site_id]])

    inst = Instance(
        problem=problem,
        job_ids=[],
        printer_ids=printer_ids,
        release=[],
        due=[],
        weight=[],
        material=[],
        need=[],
        dur=[],
        travel=[],
        frozen_printer=[],
        frozen_start=[],
        previous_printer=[],
        previous_start=[],
        unassigned={},
        avail=avail,
        init_material=init_material,
        change=change,
        site_of=site_of,
        windows=windows,
        setups=[None] * len(printer_ids),
        need_ids=[],
        need_jobs=[],
        need_due=[],
        need_weight=[],
        stability_penalty=max(0.0, float(problem.stability_penalty_s)),
        materials=materials,
    )
    need_index: dict[str, int] = {}
    jindex: dict[str, int] = {}
    travel_cache: dict[tuple[int, str | None], int] = {}
    for j, job in enumerate(problem.jobs):
        if job.id in jindex:
            raise Invalid("duplicate job id", job_id=job.id)
        jindex[job.id] = j
        point = None
        if job.delivery_point_id is not None:
            point = points.get(job.delivery_point_id)
            if point is None:
                raise Invalid("unknown delivery point", job_id=job.id)
        inst.job_ids.append(job.id)
        inst.release.append(max(0, seconds_after(now, job.release_at, up=True)))
        inst.due.append(seconds_after(now, job.due_at, up=False))
        inst.weight.append(float(job.weight))
        inst.material.append(mat_index(job.material))
        if job.need_id not in need_index:
            need_index[job.need_id] = len(inst.need_ids)
            inst.need_ids.append(job.need_id)
            inst.need_jobs.append([])
            inst.need_due.append(inst.due[-1])
            inst.need_weight.append(inst.weight[-1])
        nidx = need_index[job.need_id]
        inst.need.append(nidx)
        inst.need_jobs[nidx].append(j)
        # A need is due when its earliest job is due, and weighs what its
        # heaviest job weighs (the adapter gives all jobs of a need the same).
        inst.need_due[nidx] = min(inst.need_due[nidx], inst.due[-1])
        inst.need_weight[nidx] = max(inst.need_weight[nidx], inst.weight[-1])
        durs: dict[int, int] = {}
        for pid, seconds in job.durations_s.items():
            if pid in pindex and seconds >= 0:
                durs[pindex[pid]] = int(seconds)
        fp = -1
        fs = 0
        if job.frozen_printer_id is not None:
            if job.frozen_printer_id not in pindex or job.frozen_start_at is None:
                raise Invalid("frozen job needs a known printer and a start", job_id=job.id)
            fp = pindex[job.frozen_printer_id]
            fs = seconds_after(now, job.frozen_start_at, up=True)
            if fp not in durs:
                raise Invalid("frozen job has no duration on its printer", job_id=job.id)
            durs = {fp: durs[fp]}
        inst.frozen_printer.append(fp)
        inst.frozen_start.append(fs)
        pp = pindex.get(job.previous_printer_id or "", -1)
        inst.previous_printer.append(pp)
        prev_start = 0
        if job.previous_start_at is not None:
            prev_start = seconds_after(now, job.previous_start_at, up=True)
        inst.previous_start.append(prev_start)
        travel: dict[int, int] = {}
        for p in durs:
            key = (site_of[p], job.delivery_point_id)
            if key not in travel_cache:
                travel_cache[key] = problem_travel_s(
                    problem.travel_s,
                    problem.sites[site_of[p]],
                    point,
                    speed_kmh=problem.travel_speed_kmh,
                    road_factor=problem.road_factor,
                )
            travel[p] = travel_cache[key]
        inst.dur.append(durs)
        inst.travel.append(travel)
        if not durs:
            inst.unassigned[j] = "no_eligible_printer"
    if problem.setups is not None:
        order = [jindex.get(jid, -1) for jid in problem.setups.job_ids]
        for pid, matrix in problem.setups.by_printer.items():
            if pid not in pindex:
                continue
            table = [[0] * inst.n for _ in range(inst.n)]
            for a, row in zip(order, matrix, strict=True):
                if a < 0:
                    continue
                dest = table[a]
                for b, value in zip(order, row, strict=True):
                    if b >= 0:
                        dest[b] = int(value)
            inst.setups[pindex[pid]] = table
    _derive(inst)
    return inst


def _derive(inst: Instance) -> None:
    """Frozen blocks per printer, the state after the prints running now, and
    each need's delivery floor from its frozen jobs."""
    blocks: list[list[FrozenBlock]] = [[] for _ in range(inst.m)]
    inst.fixed_delivered = [-(10**18)] * len(inst.need_ids)
    for j in range(inst.n):
        p = inst.frozen_printer[j]
        if p < 0:
            continue
        s = inst.frozen_start[j]
        e = s + inst.dur[j][p]
        r = inst.removal(p, e)
        if r is None:  # a frozen print is a fact: the plate comes off when it ends
            r = e
        blocks[p].append((s, e, r, inst.material[j], j))
        n = inst.need[j]
        inst.fixed_delivered[n] = max(inst.fixed_delivered[n], r + inst.travel[j][p])
    inst.frozen_blocks = []
    inst.start_state = []
    for p in range(inst.m):
        fb = sorted(blocks[p])
        t, mat, last, fi = inst.avail[p], inst.init_material[p], -1, 0
        while fi < len(fb) and fb[fi][0] < t:
            t = max(t, fb[fi][2])
            mat, last = fb[fi][3], fb[fi][4]
            fi += 1
        inst.frozen_blocks.append(fb)
        inst.start_state.append((t, mat, last, fi))
    inst.movable = [
        j for j in range(inst.n) if inst.frozen_printer[j] < 0 and j not in inst.unassigned
    ]
