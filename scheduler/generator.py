"""Seeded crisis-like problems for tests and benchmarks.

Needs of 1-6 plates from hospitals and care homes of the Oise, fablabs and
small firms with a few printers each, three materials with change times,
printer models that limit eligibility, opening hours (some sites are farms
staffed around the clock), prints already running, release and due dates
tight enough that a farm queue leaves needs late. Nothing here is measured
data: it only exercises every rule at a realistic scale.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from scheduler.types import DeliveryPointSpec, JobSpec, PrinterSpec, Problem, SiteSpec

MATERIALS = ("PLA", "PETG", "TPU")
MATERIAL_SHARE = (0.6, 0.3, 0.1)
# Printer models: (speed factor, bed size class, share of the fleet).
MODELS = ((1.0, 1, 0.4), (0.6, 1, 0.3), (1.3, 2, 0.2), (1.1, 3, 0.1))
WEIGHTS = ((1.0, 0.6), (3.0, 0.3), (10.0, 0.1))  # routine, urgent, critical
OISE = (49.10, 49.75, 1.70, 3.15)  # lat min, lat max, lon min, lon max
DEFAULT_NOW = datetime(2025, 3, 3, 6, 0, tzinfo=UTC)


def _pick(rng: random.Random, options: tuple[tuple[float, float], ...]) -> float:
    return rng.choices([v for v, _ in options], weights=[w for _, w in options])[0]


def crisis_problem(
    n_jobs: int = 1000,
    n_printers: int = 100,
    n_sites: int = 20,
    *,
    n_points: int = 12,
    seed: int = 0,
    now: datetime = DEFAULT_NOW,
    tightness: float = 0.7,
    running_share: float = 0.3,
) -> Problem:
    """A problem of ``n_jobs`` plates; ``tightness`` scales due dates to the
    fleet's load (lower = later needs)."""
    rng = random.Random(seed)
    lat0, lat1, lon0, lon1 = OISE
    sites: list[SiteSpec] = []
    sizes = [1] * n_sites
    for _ in range(n_printers - n_sites):
        sizes[rng.randrange(n_sites)] += 1
    mean_print_h = 5.5
    load_days = n_jobs * mean_print_h / max(1, n_printers) / 24
    horizon_days = int(load_days * 4) + 10
    for s in range(n_sites):
        farm = rng.random() < 0.2
        windows = None
        if not farm:
            opens_h = rng.choice((7, 8, 9))
            closes_h = rng.choice((17, 18, 19, 20, 22))
            weekend = rng.random() < 0.4
            days = []
            for d in range(-1, horizon_days):
                day = (now + timedelta(days=d)).replace(hour=0, minute=0, second=0)
                if not weekend and day.weekday() >= 5:
                    continue
                days.append((day + timedelta(hours=opens_h), day + timedelta(hours=closes_h)))
            windows = tuple(days)
        sites.append(
            SiteSpec(
                f"site-{s:03d}",
                rng.uniform(lat0, lat1),
                rng.uniform(lon0, lon1),
                open_windows=windows,
            )
        )
    points = tuple(
        DeliveryPointSpec(f"point-{k:02d}", rng.uniform(lat0, lat1), rng.uniform(lon0, lon1))
        for k in range(n_points)
    )
    printers: list[PrinterSpec] = []
    models: list[tuple[float, int]] = []
    for s, size in enumerate(sizes):
        for _ in range(size):
            speed, bed, _share = rng.choices(MODELS, weights=[m[2] for m in MODELS])[0]
            models.append((speed * rng.uniform(0.9, 1.1), bed))
            printers.append(
                PrinterSpec(
                    f"printer-{len(printers):04d}",
                    sites[s].id,
                    now + timedelta(seconds=rng.choice((0, 0, 0, rng.randrange(1800, 4 * 3600)))),
                    rng.choices(MATERIALS, weights=MATERIAL_SHARE)[0],
                    material_change_s=rng.randrange(600, 1801, 60),
                )
            )
    # Which printers take which material: every printer takes PLA, most PETG,
    # a third TPU (direct-drive extruders).
    takes = [
        {"PLA"}
        | ({"PETG"} if rng.random() < 0.8 else set())
        | ({"TPU"} if rng.random() < 0.35 else set())
        for _ in printers
    ]
    for i, pr in enumerate(printers):
        if pr.material is not None and pr.material not in takes[i]:
            takes[i].add(pr.material)
    jobs: list[JobSpec] = []
    need = 0
    while len(jobs) < n_jobs:
        plates = min(n_jobs - len(jobs), rng.choice((1, 1, 2, 2, 3, 4, 6)))
        material = rng.choices(MATERIALS, weights=MATERIAL_SHARE)[0]
        bed = rng.choices((1, 2, 3), weights=(0.75, 0.2, 0.05))[0]
        base_s = rng.uniform(1.0, 10.0) * 3600
        release = now + timedelta(seconds=rng.choice((0, 0, 0, rng.randrange(0, 2 * 86400))))
        due = release + timedelta(
            seconds=base_s * 1.5 + rng.uniform(0.2, 1.0) * load_days * 86400 * tightness + 4 * 3600
        )
        weight = _pick(rng, WEIGHTS)
        point = rng.choice(points).id
        eligible = [
            i for i, (_sp, pbed) in enumerate(models) if pbed >= bed and material in takes[i]
        ]
        # A job is sliced for a subset of the compatible fleet only (the
        # profiles the coordinator prepared): between 5 and 40 printers.
        k = min(len(eligible), rng.randint(5, 40))
        chosen = rng.sample(eligible, k)
        for _ in range(plates):
            durations = {
                printers[i].id: int(base_s / models[i][0] * rng.uniform(0.95, 1.05)) for i in chosen
            }
            jobs.append(
                JobSpec(
                    f"job-{len(jobs):05d}",
                    f"need-{need:05d}",
                    durations,
                    material,
                    release,
                    due,
                    weight=weight,
                    delivery_point_id=point,
                )
            )
        need += 1
    jobs = _freeze_running(rng, jobs, printers, now, running_share)
    return Problem(
        jobs=tuple(jobs),
        printers=tuple(printers),
        sites=tuple(sites),
        delivery_points=points,
        now=now,
    )


def _freeze_running(
    rng: random.Random,
    jobs: list[JobSpec],
    printers: list[PrinterSpec],
    now: datetime,
    share: float,
) -> list[JobSpec]:
    """Pin a share of printers' first job as already printing (started before
    ``now``, on a printer of the right material)."""
    busy: set[str] = set()
    out: list[JobSpec] = []
    by_id = {p.id: p for p in printers}
    for job in jobs:
        if rng.random() < share * len(printers) / max(1, len(jobs)) * 1.2:
            options = [
                pid
                for pid in job.durations_s
                if pid not in busy and by_id[pid].material == job.material
            ]
            if options:
                pid = rng.choice(options)
                busy.add(pid)
                started = now - timedelta(seconds=int(job.durations_s[pid] * rng.uniform(0.1, 0.9)))
                job = JobSpec(
                    job.id,
                    job.need_id,
                    job.durations_s,
                    job.material,
                    min(job.release_at, started),
                    job.due_at,
                    weight=job.weight,
                    delivery_point_id=job.delivery_point_id,
                    frozen_printer_id=pid,
                    frozen_start_at=started,
                )
        out.append(job)
    return out
