"""Deliveries and their certificates, traceability both ways, cost of quality, auditor exports."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Query, status
from fastapi.responses import JSONResponse, Response
from pydantic import AwareDatetime

from api.deps import CurrentActor, DbSession
from api.schemas.common import PROBLEM_RESPONSES
from api.schemas.quality import (
    CertificateCheck,
    CostOfQualityRead,
    DeliveryCreate,
    DeliveryRead,
)
from core.errors import Invalid
from quality import certificates, costs, deliveries, exports, traceability
from quality.certificate_pdf import render_pdf

router = APIRouter(tags=["traceability and certificates"], responses=PROBLEM_RESPONSES)

Since = Annotated[AwareDatetime, Query(description="Start of the window (inclusive)")]
Until = Annotated[AwareDatetime, Query(description="End of the window (exclusive)")]


@router.post(
    "/needs/{need_id}/deliveries", response_model=DeliveryRead, status_code=status.HTTP_201_CREATED
)
def deliver(
    need_id: UUID, body: DeliveryCreate, session: DbSession, actor: CurrentActor
) -> DeliveryRead:
    """Hand over passed plates of the need as one batch; its certificate is issued at once."""
    return DeliveryRead.model_validate(
        deliveries.deliver_need(
            session,
            need_id=need_id,
            actor=actor,
            recipient=body.recipient,
            job_ids=body.job_ids,
            delivered_at=body.delivered_at,
            idempotency_key=body.idempotency_key,
        )
    )


@router.get("/deliveries", response_model=list[DeliveryRead])
def list_deliveries(
    session: DbSession,
    actor: CurrentActor,
    need_id: UUID | None = None,
    since: Annotated[AwareDatetime | None, Query()] = None,
    until: Annotated[AwareDatetime | None, Query()] = None,
) -> list[DeliveryRead]:
    return [
        DeliveryRead.model_validate(d)
        for d in deliveries.find_deliveries(
            session, actor=actor, need_id=need_id, since=since, until=until
        )
    ]


@router.get("/deliveries/{delivery_id}/trace")
def trace_delivery(delivery_id: UUID, session: DbSession, actor: CurrentActor) -> dict[str, Any]:
    """Each plate of the batch back to the need, the design version and its approval, the
    slicing settings and G-code hash, the printer, site, operator, spool lot, print start
    and end, and the inspection and its inspector."""
    return traceability.trace_delivery(session, delivery_id, actor=actor)


@router.get("/jobs/{job_id}/trace")
def trace_job(job_id: UUID, session: DbSession, actor: CurrentActor) -> dict[str, Any]:
    """A plate's whole story, every attempt included."""
    return traceability.trace_job(session, job_id, actor=actor)


@router.get("/recall")
def recall(
    session: DbSession,
    actor: CurrentActor,
    spool_lot_id: UUID | None = None,
    lot_code: Annotated[str | None, Query(max_length=64)] = None,
    printer_id: UUID | None = None,
    since: Annotated[AwareDatetime | None, Query()] = None,
    until: Annotated[AwareDatetime | None, Query()] = None,
    design_version_id: UUID | None = None,
) -> dict[str, Any]:
    """Every delivery and recipient affected by a spool lot, a printer over a time window,
    or a design version; and the plates of that origin not delivered yet."""
    return traceability.recall(
        session,
        actor=actor,
        spool_lot_id=spool_lot_id,
        lot_code=lot_code,
        printer_id=printer_id,
        since=since,
        until=until,
        design_version_id=design_version_id,
    )


@router.get("/deliveries/{delivery_id}/certificate")
def certificate_json(delivery_id: UUID, session: DbSession, actor: CurrentActor) -> Response:
    """The certificate of conformity as its canonical JSON (hash it with SHA-256 to check)."""
    certificate = certificates.get_certificate(session, delivery_id=delivery_id, actor=actor)
    return Response(
        certificate.content_json,
        media_type="application/json",
        headers={
            "X-Certificate-SHA256": certificate.sha256,
            "Content-Disposition": f'inline; filename="{certificate.number}.json"',
        },
    )


@router.get(
    "/deliveries/{delivery_id}/certificate.pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
def certificate_pdf(delivery_id: UUID, session: DbSession, actor: CurrentActor) -> Response:
    """The certificate as a PDF, with the traceability table, the inspection summary and
    the verification hash."""
    certificate = certificates.get_certificate(session, delivery_id=delivery_id, actor=actor)
    pdf = render_pdf(certificates.certificate_content(certificate), certificate.sha256)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "X-Certificate-SHA256": certificate.sha256,
            "Content-Disposition": f'inline; filename="{certificate.number}.pdf"',
        },
    )


@router.get("/deliveries/{delivery_id}/certificate/verification", response_model=CertificateCheck)
def verify_certificate(
    delivery_id: UUID, session: DbSession, actor: CurrentActor
) -> CertificateCheck:
    """Does the stored certificate still match its hash, its audit entry and the records?"""
    certificate = certificates.get_certificate(session, delivery_id=delivery_id, actor=actor)
    return CertificateCheck.model_validate(certificates.verify_certificate(session, certificate))


@router.post("/certificates/verification", response_model=CertificateCheck)
def verify_document(
    session: DbSession,
    actor: CurrentActor,
    document: Annotated[dict[str, Any], Body(description="A certificate's JSON, as received")],
) -> CertificateCheck:
    """Check a certificate someone holds against the one issued."""
    return CertificateCheck.model_validate(certificates.verify_document(session, document))


@router.get("/needs/{need_id}/cost-of-quality", response_model=CostOfQualityRead)
def cost_of_quality(need_id: UUID, session: DbSession, actor: CurrentActor) -> CostOfQualityRead:
    """Scrap and reprints of a need, in grams, euros and printer time."""
    return CostOfQualityRead.model_validate(
        costs.cost_of_quality(session, need_id=need_id, actor=actor)
    )


@router.get("/exports")
def export_all(
    session: DbSession, actor: CurrentActor, since: Since, until: Until
) -> dict[str, Any]:
    """Every record of the window the reader may see, in one JSON document with its hash."""
    return exports.export_json(session, actor=actor, since=since, until=until)


@router.get("/exports/{kind}", responses={200: {"content": {"text/csv": {}}}})
def export_kind(
    kind: str,
    session: DbSession,
    actor: CurrentActor,
    since: Since,
    until: Until,
    format: Annotated[str, Query(pattern="^(csv|json)$")] = "csv",
) -> Response:
    """One kind of record of the window as CSV (or JSON rows): inspections,
    non_conformities, deliveries, traceability, waste, recycling, audit."""
    try:
        chosen = exports.ExportKind(kind)
    except ValueError:
        known = ", ".join(k.value for k in exports.ExportKind)
        raise Invalid(f"no export {kind!r}; choose one of {known}") from None
    if format == "json":
        return JSONResponse(
            exports.export_rows(session, chosen, actor=actor, since=since, until=until)
        )
    text = exports.export_csv(session, chosen, actor=actor, since=since, until=until)
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{chosen.value}.csv"'},
    )
