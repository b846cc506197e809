"""Inspection lots: which plates form a lot, where its sampling stands, which parts are drawn.

A lot is one plate or several plates of the same design version printed at the
same site (delivered together); ISO 2859-1's switching rules follow each such
stream of lots, so one fablab's bad run tightens its own inspection, not the
whole network's.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import Conflict, Invalid, NotFound
from core.identity import Actor
from printers.models import Site
from quality.models import Inspection, InspectionJob, QualityPlan, SamplingResumption, Verdict
from quality.plans import DEFAULT_AQL, Check, current_plan, plan_checks
from quality.sampling import SamplingPlan, Severity, SwitchingState, replay, sampling_plan
from scheduler import jobs as transitions
from scheduler.models import Job, JobState, PrintRun, RunOutcome

MAX_PLATES_PER_LOT = 500


@dataclass(frozen=True, slots=True)
class SampleItem:
    number: int  # 1..n, what measurements refer to
    job_id: UUID
    copy: int  # 1..copies on that plate

    def as_dict(self) -> dict[str, Any]:
        return {"sample": self.number, "job_id": str(self.job_id), "copy": self.copy}


@dataclass(frozen=True, slots=True)
class LotPlan:
    """Everything an inspector needs before measuring, and what the verdict will use."""

    jobs: tuple[Job, ...]
    site_id: UUID
    design_version_id: UUID
    quality_plan: QualityPlan | None
    checks: tuple[Check, ...]
    switching: SwitchingState
    sampling: SamplingPlan
    sample: tuple[SampleItem, ...]

    @property
    def lot_size(self) -> int:
        return sum(job.copies for job in self.jobs)

    def as_dict(self) -> dict[str, Any]:
        plan = self.quality_plan
        return {
            "job_ids": [str(job.id) for job in self.jobs],
            "site_id": str(self.site_id),
            "design_version_id": str(self.design_version_id),
            "lot_size": self.sampling.lot_size,
            "code_letter": self.sampling.code_letter,
            "aql": self.sampling.aql,
            "severity": self.sampling.severity.value,
            "sample_size": self.sampling.sample_size,
            "accept_number": self.sampling.accept_number,
            "reject_number": self.sampling.reject_number,
            "full_inspection": self.sampling.full_inspection,
            "quality_plan_id": str(plan.id) if plan else None,
            "plan_revision": plan.revision if plan else None,
            "standard": plan.standard if plan else "",
            "standard_note": plan.standard_note if plan else "",
            "checks": [check.as_dict() for check in self.checks],
            "sample": [item.as_dict() for item in self.sample],
        }


def lot_jobs(
    session: Session, job_ids: Sequence[UUID], *, actor: Actor, for_update: bool = False
) -> list[Job]:
    """The plates of a lot, checked: they exist, the actor sees them, and they share one
    design version and one site. Raises ``NotFound`` (also for other sites' plates,
    like a missing one) or ``Invalid``."""
    if not job_ids:
        raise Invalid("a lot needs at least one plate (job)")
    if len(set(job_ids)) != len(job_ids):
        raise Invalid("a plate appears twice in the lot")
    if len(job_ids) > MAX_PLATES_PER_LOT:
        raise Invalid(f"a lot holds at most {MAX_PLATES_PER_LOT} plates")
    jobs: list[Job] = []
    # Sorted ids: concurrent lots lock their plates in the same order (no deadlock).
    for job_id in sorted(job_ids):
        job = transitions.get_job(session, job_id, for_update=for_update)
        site_id = production_site(session, job)
        if not actor.sees_all_sites() and (site_id is None or site_id not in actor.site_ids):
            raise NotFound(f"no job {job_id}")
        jobs.append(job)
    jobs.sort(key=lambda j: (str(j.need_id), j.index))
    if len({job.design_version_id for job in jobs}) != 1:
        raise Invalid("a lot holds plates of one design version only")
    if len({production_site(session, job) for job in jobs}) != 1:
        raise Invalid("a lot holds plates printed at one site only")
    return jobs


def production_site(session: Session, job: Job) -> UUID | None:
    """Where the current attempt was printed (the plan's site until then)."""
    run = current_run(session, job)
    return run.site_id if run is not None else job.site_id


def current_run(session: Session, job: Job) -> PrintRun | None:
    return session.scalar(
        select(PrintRun).where(PrintRun.job_id == job.id, PrintRun.attempt == job.attempt)
    )


def finished_run(session: Session, job_id: UUID, attempt: int) -> PrintRun | None:
    return session.scalar(
        select(PrintRun).where(
            PrintRun.job_id == job_id,
            PrintRun.attempt == attempt,
            PrintRun.outcome == RunOutcome.DONE,
        )
    )


def existing_inspection(session: Session, jobs: Sequence[Job]) -> Inspection | None:
    """The inspection that already covers these plates' current attempts, if any.
    Raises ``Conflict`` when only some of them were inspected (as another lot)."""
    current = {(job.id, job.attempt) for job in jobs}
    rows = [
        row
        for row in session.scalars(
            select(InspectionJob).where(InspectionJob.job_id.in_([job.id for job in jobs]))
        )
        if (row.job_id, row.attempt) in current
    ]
    found = {row.job_id: row.inspection_id for row in rows}
    if not found:
        return None
    inspections = set(found.values())
    if len(found) != len(jobs) or len(inspections) != 1:
        raise Conflict("some of these plates were already inspected in another lot")
    return session.get(Inspection, inspections.pop())


def stream_state(session: Session, *, design_version_id: UUID, site_id: UUID) -> SwitchingState:
    """Where the switching rules stand for this design at this site, replayed from the
    recorded verdicts and resumptions (nothing else is stored, nothing can drift)."""
    lots = session.execute(
        select(Inspection.inspected_at, Inspection.verdict)
        .where(Inspection.design_version_id == design_version_id, Inspection.site_id == site_id)
        .order_by(Inspection.inspected_at, Inspection.id)
    ).all()
    resumptions = session.scalars(
        select(SamplingResumption.resumed_at).where(
            SamplingResumption.design_version_id == design_version_id,
            SamplingResumption.site_id == site_id,
        )
    ).all()
    events: list[tuple[Any, int, bool | None]] = [
        (at, 0, verdict is Verdict.PASSED) for at, verdict in lots
    ]
    events += [(at, 1, None) for at in resumptions]
    events.sort(key=lambda e: (e[0], e[1]))
    return replay(event for _, _, event in events)


def draw_sample(jobs: Sequence[Job], size: int) -> tuple[SampleItem, ...]:
    """Which parts to inspect, drawn at random as ISO 2859-1 asks, but reproducibly: the
    seed is the lot itself, so the plan shown before and the record made after agree."""
    items = [(job.id, copy) for job in jobs for copy in range(1, job.copies + 1)]
    seed = hashlib.sha256(
        "|".join(
            f"{job.id}:{job.attempt}" for job in sorted(jobs, key=lambda j: str(j.id))
        ).encode()
    ).hexdigest()
    chosen = sorted(random.Random(seed).sample(range(len(items)), min(size, len(items))))
    return tuple(
        SampleItem(number=number, job_id=items[i][0], copy=items[i][1])
        for number, i in enumerate(chosen, start=1)
    )


def plan_lot(session: Session, jobs: Sequence[Job], *, for_update: bool = False) -> LotPlan:
    """The sampling plan of a lot as it stands now. Raises ``Conflict`` when sampling of
    this design at this site is discontinued."""
    site_id = production_site(session, jobs[0])
    if site_id is None:
        raise Conflict(f"job {jobs[0].id} was never planned on a site")
    if for_update:
        # Serialises the lots of one site: two inspections recorded at once must
        # not both read the switching state before the other's verdict.
        session.scalar(select(Site.id).where(Site.id == site_id).with_for_update())
    design_version_id = jobs[0].design_version_id
    quality_plan = current_plan(session, design_version_id)
    state = stream_state(session, design_version_id=design_version_id, site_id=site_id)
    if state.severity is Severity.DISCONTINUED:
        raise Conflict(
            "sampling inspection of this design at this site is discontinued after five "
            "rejected lots on tightened inspection; a coordinator must record the "
            "corrective action before any lot is inspected again"
        )
    sampling = sampling_plan(
        sum(job.copies for job in jobs),
        quality_plan.aql if quality_plan else DEFAULT_AQL,
        state.severity,
    )
    return LotPlan(
        jobs=tuple(jobs),
        site_id=site_id,
        design_version_id=design_version_id,
        quality_plan=quality_plan,
        checks=tuple(plan_checks(quality_plan)),
        switching=state,
        sampling=sampling,
        sample=draw_sample(jobs, sampling.sample_size),
    )


def require_printed(jobs: Sequence[Job]) -> None:
    for job in jobs:
        if job.state is not JobState.PRINTED:
            raise Conflict(f"job {job.id} is {job.state.value}; only printed plates are inspected")
