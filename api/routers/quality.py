"""Quality plans, inspections, non-conformities and the audit trail; the traceability and the
waste routes live beside it and are included here."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, status

from api.deps import CurrentActor, DbSession
from api.routers import quality_trace, quality_waste
from api.schemas.common import PROBLEM_RESPONSES
from api.schemas.quality import (
    AuditEntryRead,
    ChainProblemRead,
    ChainReportRead,
    Closure,
    ConcessionApproval,
    DispositionCreate,
    InspectionCreate,
    InspectionPlanRead,
    InspectionRead,
    LotInspectionCreate,
    NonConformityRead,
    QualityPlanCreate,
    QualityPlanRead,
    SamplingResume,
    SamplingResumptionRead,
)
from catalog.service import get_version
from core import audit
from core.identity import Role, require_role
from quality import inspections, nonconformities, plans
from quality.models import Disposition
from quality.service import measurements_from
from scheduler.service import visible_job

router = APIRouter(tags=["quality"], responses=PROBLEM_RESPONSES)


@router.get("/design-versions/{version_id}/quality-plans", response_model=list[QualityPlanRead])
def list_quality_plans(
    version_id: UUID, session: DbSession, actor: CurrentActor
) -> list[QualityPlanRead]:
    """Every revision of the design version's quality plan, oldest first."""
    get_version(session, version_id)
    return [QualityPlanRead.model_validate(p) for p in plans.find_plans(session, version_id)]


@router.post(
    "/design-versions/{version_id}/quality-plans",
    response_model=QualityPlanRead,
    status_code=status.HTTP_201_CREATED,
)
def revise_quality_plan(
    version_id: UUID, body: QualityPlanCreate, session: DbSession, actor: CurrentActor
) -> QualityPlanRead:
    """A new revision of the plan: checks, the standard they refer to, the AQL (coordinators)."""
    plan = plans.revise_plan(
        session,
        design_version_id=version_id,
        actor=actor,
        standard=body.standard,
        standard_note=body.standard_note,
        aql=body.aql,
        checks=[c.model_dump(exclude_none=True) for c in body.checks],
    )
    return QualityPlanRead.model_validate(plan)


@router.get("/jobs/{job_id}/inspection-plan", response_model=InspectionPlanRead)
def inspection_plan(job_id: UUID, session: DbSession, actor: CurrentActor) -> InspectionPlanRead:
    """The sample to draw from this plate (ISO 2859-1, level II, at the severity the switching
    rules give) and the checks to make."""
    visible_job(session, job_id, actor)
    lot = inspections.inspection_plan(session, job_ids=[job_id], actor=actor)
    return InspectionPlanRead.model_validate(lot.as_dict())


@router.get("/inspection-plan", response_model=InspectionPlanRead)
def lot_inspection_plan(
    session: DbSession,
    actor: CurrentActor,
    job_id: Annotated[list[UUID], Query(min_length=1, max_length=500)],
) -> InspectionPlanRead:
    """The same for a lot of several plates (repeat ``job_id``)."""
    lot = inspections.inspection_plan(session, job_ids=job_id, actor=actor)
    return InspectionPlanRead.model_validate(lot.as_dict())


@router.post(
    "/jobs/{job_id}/inspections", response_model=InspectionRead, status_code=status.HTTP_201_CREATED
)
def record_inspection(
    job_id: UUID, body: InspectionCreate, session: DbSession, actor: CurrentActor
) -> InspectionRead:
    """Record the inspection of a printed plate; the verdict is computed, never typed in."""
    visible_job(session, job_id, actor)
    return _record(session, actor, [job_id], body)


@router.post("/inspections", response_model=InspectionRead, status_code=status.HTTP_201_CREATED)
def record_lot_inspection(
    body: LotInspectionCreate, session: DbSession, actor: CurrentActor
) -> InspectionRead:
    """Record the inspection of a lot of plates (one design, one site) sampled together."""
    return _record(session, actor, body.job_ids, body)


def _record(
    session: DbSession, actor: CurrentActor, job_ids: list[UUID], body: InspectionCreate
) -> InspectionRead:
    inspection = inspections.record_inspection(
        session,
        job_ids=job_ids,
        actor=actor,
        measurements=measurements_from([m.model_dump() for m in body.measurements]),
        defective_count=body.defective_count,
        note=body.note,
        cause=body.cause,
        disposition=body.disposition,
        idempotency_key=body.idempotency_key,
    )
    return InspectionRead.model_validate(inspection)


@router.get("/jobs/{job_id}/inspections", response_model=list[InspectionRead])
def list_inspections(job_id: UUID, session: DbSession, actor: CurrentActor) -> list[InspectionRead]:
    visible_job(session, job_id, actor)
    return [
        InspectionRead.model_validate(i)
        for i in inspections.find_inspections(session, job_id=job_id)
    ]


@router.get("/inspections/{inspection_id}", response_model=InspectionRead)
def get_inspection(inspection_id: UUID, session: DbSession, actor: CurrentActor) -> InspectionRead:
    return InspectionRead.model_validate(
        inspections.get_inspection(session, inspection_id, actor=actor)
    )


@router.post(
    "/sampling/resumptions",
    response_model=SamplingResumptionRead,
    status_code=status.HTTP_201_CREATED,
)
def resume_sampling(
    body: SamplingResume, session: DbSession, actor: CurrentActor
) -> SamplingResumptionRead:
    """After sampling was discontinued (five lots rejected on tightened inspection): the
    corrective action, recorded by a coordinator; inspection resumes on tightened."""
    return SamplingResumptionRead.model_validate(
        inspections.resume_sampling(session, actor=actor, **body.model_dump())
    )


@router.get("/non-conformities", response_model=list[NonConformityRead])
def list_non_conformities(
    session: DbSession,
    actor: CurrentActor,
    status_filter: Annotated[str | None, Query(alias="status", pattern="^(open|closed)$")] = None,
    site_id: UUID | None = None,
) -> list[NonConformityRead]:
    return [
        NonConformityRead.model_validate(nc)
        for nc in nonconformities.find_non_conformities(
            session, actor=actor, status=status_filter, site_id=site_id
        )
    ]


@router.get("/non-conformities/{nc_id}", response_model=NonConformityRead)
def get_non_conformity(nc_id: UUID, session: DbSession, actor: CurrentActor) -> NonConformityRead:
    return NonConformityRead.model_validate(
        nonconformities.get_non_conformity(session, nc_id, actor=actor)
    )


@router.post("/non-conformities/{nc_id}/disposition", response_model=NonConformityRead)
def decide_disposition(
    nc_id: UUID, body: DispositionCreate, session: DbSession, actor: CurrentActor
) -> NonConformityRead:
    """Reprint, scrap, or use as is (a concession, approved by a coordinator)."""
    return NonConformityRead.model_validate(
        nonconformities.decide(
            session,
            nc_id=nc_id,
            disposition=Disposition(body.disposition),
            actor=actor,
            note=body.note,
        )
    )


@router.post("/non-conformities/{nc_id}/approval", response_model=NonConformityRead)
def approve_concession(
    nc_id: UUID, body: ConcessionApproval, session: DbSession, actor: CurrentActor
) -> NonConformityRead:
    """Approve "use as is" (coordinators, never the lot's inspector): the plates pass."""
    return NonConformityRead.model_validate(
        nonconformities.approve_concession(session, nc_id=nc_id, actor=actor, note=body.note)
    )


@router.post("/non-conformities/{nc_id}/closure", response_model=NonConformityRead)
def close_non_conformity(
    nc_id: UUID, body: Closure, session: DbSession, actor: CurrentActor
) -> NonConformityRead:
    return NonConformityRead.model_validate(
        nonconformities.close(session, nc_id=nc_id, actor=actor, note=body.note)
    )


@router.get("/audit", response_model=list[AuditEntryRead])
def list_audit(
    session: DbSession,
    actor: CurrentActor,
    entity_type: str | None = Query(None, max_length=32),
    entity_id: str | None = Query(None, max_length=64),
    since_seq: int = Query(0, ge=0),
    limit: int = Query(200, ge=1, le=5000),
) -> list[AuditEntryRead]:
    """The audit trail in order (auditors and admins)."""
    require_role(actor, Role.AUDITOR)
    entries = audit.find_entries(
        session, entity_type=entity_type, entity_id=entity_id, since_seq=since_seq, limit=limit
    )
    return [AuditEntryRead.model_validate(e) for e in entries]


@router.get("/audit/verify", response_model=ChainReportRead)
def verify_audit(session: DbSession, actor: CurrentActor) -> ChainReportRead:
    """Recompute the hash chain and report every edited, missing or reordered entry."""
    require_role(actor, Role.AUDITOR)
    report = audit.verify_chain(session)
    return ChainReportRead(
        ok=report.ok,
        entries=report.entries,
        problems=[
            ChainProblemRead(seq=p.seq, kind=p.kind, detail=p.detail) for p in report.problems
        ],
    )


router.include_router(quality_trace.router)
router.include_router(quality_waste.router)
