"""Cost of quality per need: what failed prints, rejected lots and their reprints cost in
plastic, money and printer time."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.models import Material, SliceRecord
from core.errors import NotFound
from core.identity import Actor
from quality.balance import rejected_attempts
from quality.models import Inspection, InspectionJob, NonConformity, Verdict, WasteEntry, WasteKind
from scheduler.models import Job, Need, PrintRun, RunOutcome

GRAMS_PER_KG = Decimal(1000)


def cost_of_quality(session: Session, *, need_id: UUID, actor: Actor) -> dict[str, Any]:
    """Scrap (failed and rejected plastic) and reprints of one need, with their cost in
    euros (material at the catalogue price; a wasted attempt at its sliced cost, which
    includes machine time and energy, prorated to the progress a failed print reached).
    Operators only see needs their sites printed for, and only their plates' figures."""
    need = session.get(Need, need_id)
    if need is None:
        raise NotFound(f"no need {need_id}")
    jobs = list(session.scalars(select(Job).where(Job.need_id == need.id)))
    runs = list(
        session.scalars(
            select(PrintRun)
            .where(PrintRun.job_id.in_([j.id for j in jobs]))
            .order_by(PrintRun.dispatched_at)
        )
    )
    if not actor.sees_all_sites():
        runs = [r for r in runs if r.site_id in actor.site_ids]
        if not runs:
            raise NotFound(f"no need {need_id}")
        jobs = [j for j in jobs if j.id in {r.job_id for r in runs}]
    job_ids = [j.id for j in jobs]
    price = session.scalar(
        select(Material.price_eur_per_kg).where(Material.key == need.material_key)
    ) or Decimal(0)
    rejected = rejected_attempts(session, job_ids)
    waste = list(
        session.scalars(
            select(WasteEntry).where(
                WasteEntry.job_id.in_(job_ids),
                WasteEntry.kind.in_([WasteKind.FAILED_PRINT, WasteKind.REJECTED_PART]),
            )
        )
    )
    failed_g = sum(w.mass_g for w in waste if w.kind is WasteKind.FAILED_PRINT)
    rejected_g = sum(w.mass_g for w in waste if w.kind is WasteKind.REJECTED_PART)
    slices = {
        s.gcode_hash: s
        for s in session.scalars(
            select(SliceRecord).where(SliceRecord.gcode_hash.in_({r.gcode_hash for r in runs}))
        )
    }
    wasted_runs = [
        r
        for r in runs
        if r.outcome in (RunOutcome.FAILED, RunOutcome.CANCELLED)
        or (r.job_id, r.attempt) in rejected
    ]
    attempt_cost = Decimal(0)
    lost_s = 0.0
    for run in wasted_runs:
        record = slices.get(run.gcode_hash)
        share = 1.0
        if run.outcome is not RunOutcome.DONE:
            share = max(0.0, min(1.0, (run.progress_pct or 0.0) / 100.0))
        if record is not None:
            attempt_cost += record.cost_eur * Decimal(str(share))
        start = run.started_at or run.dispatched_at
        if run.ended_at is not None:
            lost_s += max(0.0, (run.ended_at - start).total_seconds())
    inspections = list(
        session.scalars(
            select(Inspection).where(
                Inspection.id.in_(
                    select(InspectionJob.inspection_id).where(InspectionJob.job_id.in_(job_ids))
                )
            )
        )
    )
    concessions = session.scalars(
        select(NonConformity.id).where(
            NonConformity.inspection_id.in_([i.id for i in inspections]),
            NonConformity.approved_at.is_not(None),
        )
    ).all()
    scrap_g = failed_g + rejected_g
    return {
        "need_id": str(need.id),
        "material": need.material_key,
        "quantity": need.quantity,
        "plates": len(jobs),
        "print_attempts": len(runs),
        "reprints": len(wasted_runs),
        "failed_prints": sum(1 for r in runs if r.outcome is RunOutcome.FAILED),
        "lots_inspected": len(inspections),
        "lots_rejected": sum(1 for i in inspections if i.verdict is Verdict.REJECTED),
        "concessions": len(concessions),
        "parts_sampled": sum(i.sample_size for i in inspections),
        "scrap_g": round(scrap_g, 2),
        "scrap_failed_print_g": round(failed_g, 2),
        "scrap_rejected_part_g": round(rejected_g, 2),
        "scrap_material_eur": str(
            (Decimal(str(scrap_g)) * price / GRAMS_PER_KG).quantize(Decimal("0.01"))
        ),
        "wasted_attempts_eur": str(attempt_cost.quantize(Decimal("0.01"))),
        "printer_time_lost_s": round(lost_s, 1),
    }
