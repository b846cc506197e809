"""The quality use cases under their first names, for callers written before the package was
split (the poller, the demo, the first API routes). New code imports the modules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy.orm import Session

from core.errors import Invalid
from core.identity import Actor
from quality.deliveries import deliver_need
from quality.inspections import Measurement, find_inspections
from quality.inspections import record_inspection as record_lot_inspection
from quality.lots import plan_lot
from quality.models import Inspection, QualityPlan
from quality.plans import DEFAULT_AQL, current_plan
from quality.waste import find_waste, record_failed_print_waste, record_waste
from scheduler.models import Job

__all__ = [
    "DEFAULT_AQL",
    "deliver_need",
    "find_inspections",
    "find_waste",
    "inspection_plan_for_job",
    "measurements_from",
    "quality_plan_for",
    "record_failed_print_waste",
    "record_inspection",
    "record_waste",
]


def quality_plan_for(session: Session, design_version_id: UUID) -> QualityPlan | None:
    return current_plan(session, design_version_id)


def inspection_plan_for_job(session: Session, job: Job) -> dict[str, Any]:
    """The sampling plan of one plate inspected as a lot of its own."""
    return plan_lot(session, [job]).as_dict()


def measurements_from(raw: Sequence[dict[str, Any]]) -> list[Measurement]:
    """Measurements as the API and CLI send them; raises ``Invalid`` on a malformed one."""
    parsed = []
    for item in raw:
        try:
            sample = item["sample"]
            check = item["check"]
        except KeyError as missing:
            raise Invalid(f"each measurement needs {missing.args[0]}") from None
        value = item.get("value")
        if not isinstance(sample, int) or isinstance(sample, bool) or not isinstance(check, str):
            raise Invalid("a measurement's sample is a number and its check a key")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise Invalid(f"the value of {check} on sample {sample} is not a number")
        ok = item.get("ok")
        if ok is not None and not isinstance(ok, bool):
            raise Invalid(f"ok on {check}, sample {sample}, is true or false")
        text = item.get("text")
        parsed.append(
            Measurement(
                sample=sample,
                check=check,
                value=float(value) if value is not None else None,
                ok=ok,
                text=str(text) if text is not None else None,
                note=str(item.get("note") or ""),
            )
        )
    return parsed


def record_inspection(
    session: Session,
    *,
    job_id: UUID,
    defective_count: int | None,
    actor: Actor,
    measurements: Sequence[dict[str, Any]] | None = None,
    note: str = "",
    cause: str = "",
) -> Inspection:
    """One plate inspected as a lot of its own; rejected lots are reprinted."""
    return record_lot_inspection(
        session,
        job_ids=[job_id],
        actor=actor,
        measurements=measurements_from(measurements or []),
        defective_count=defective_count,
        note=note,
        cause=cause,
    )
