"""Certificates of conformity: one per delivered batch, frozen at delivery.

The certificate is a JSON document (the traceability of every plate, the quality
plan, the inspection summary and a statement); its verification hash is the
SHA-256 of its canonical JSON, written in the audit trail and printed on the
PDF. ``verify_certificate`` tells an auditor whether the stored document, its
audit entry and today's records still agree.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.audit import AuditEntry, canonical_json
from core.errors import Invalid, NotFound
from core.i18n import N_
from core.identity import Actor
from quality.models import Certificate, Delivery, QualityPlan
from quality.traceability import trace_delivery

SCHEMA = "distrifab.certificate/1"
# English in the document (the hash must not depend on the reader's language);
# marked for translation so the PDF prints it in the reader's.
STATEMENT = N_(
    "The parts of this batch were printed from the approved design version named in this "
    "certificate and inspected lot by lot by sampling (ISO 2859-1, general inspection "
    "level II) against the quality plan named here. Each lot was accepted, or released "
    "under the approved concession recorded here."
)
STATEMENT_NO_PLAN = N_(
    "The parts of this batch were printed from the approved design version named in this "
    "certificate and inspected lot by lot by sampling (ISO 2859-1, general inspection "
    "level II, AQL 2.5) on the inspector's count of defective parts; no quality plan was "
    "defined for this design version."
)
# Fields of the trace that may change after delivery without the batch changing
# (a design retired later); kept out so the certificate stays verifiable.
_VOLATILE_DESIGN_FIELDS = ("status",)
_VOLATILE_PLATE_FIELDS = ("state",)


def content_sha256(content: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(content).encode()).hexdigest()


def certificate_number(delivery: Delivery) -> str:
    return f"DF-{delivery.delivered_at:%Y%m%d}-{delivery.id.hex[:8].upper()}"


def build_content(
    session: Session, delivery: Delivery, *, number: str, issued_at: str
) -> dict[str, Any]:
    """The certificate's document, from the records as they are now."""
    trace = trace_delivery(session, delivery.id, actor=Actor.system("certificate"))
    design = {k: v for k, v in trace["design_version"].items() if k not in _VOLATILE_DESIGN_FIELDS}
    plates = [
        {k: v for k, v in plate.items() if k not in _VOLATILE_PLATE_FIELDS}
        for plate in trace["plates"]
    ]
    inspections = {p["inspection"]["id"]: p["inspection"] for p in plates if p["inspection"]}
    plan_ids = sorted({i["plan_id"] for i in inspections.values() if i["plan_id"]})
    plans = [_plan_facts(session, UUID(plan_id)) for plan_id in plan_ids]
    concessions = {p["concession"]["non_conformity_id"] for p in plates if p["concession"]}
    return {
        "schema": SCHEMA,
        "number": number,
        "issued_at": issued_at,
        "delivery": trace["delivery"],
        "need": trace["need"],
        "design_version": design,
        "quality_plans": plans,
        "plates": plates,
        "inspection_summary": {
            "lots": len(inspections),
            "plates": len(plates),
            "parts_delivered": sum(p["copies"] for p in plates),
            "parts_sampled": sum(i["sample_size"] for i in inspections.values()),
            "defective_found": sum(i["defective_count"] for i in inspections.values()),
            "lots_accepted": sum(1 for i in inspections.values() if i["verdict"] == "passed"),
            "lots_under_concession": len(concessions),
            "severities": sorted({i["severity"] for i in inspections.values()}),
        },
        "statement": STATEMENT if plans else STATEMENT_NO_PLAN,
    }


def _plan_facts(session: Session, plan_id: UUID) -> dict[str, Any]:
    plan = session.get(QualityPlan, plan_id)
    assert plan is not None
    return {
        "id": str(plan.id),
        "revision": plan.revision,
        "standard": plan.standard,
        "standard_note": plan.standard_note,
        "aql": float(plan.aql),
        "inspection_level": plan.inspection_level,
        "checks": plan.checks,
    }


def issue_certificate(session: Session, delivery: Delivery, *, actor: Actor) -> Certificate:
    """Flush-only: freeze the batch's certificate and write its hash in the audit trail.
    One per delivery (a second call returns the first)."""
    existing = session.scalar(select(Certificate).where(Certificate.delivery_id == delivery.id))
    if existing is not None:
        return existing
    number = certificate_number(delivery)
    issued_at = delivery.delivered_at.isoformat()
    content = build_content(session, delivery, number=number, issued_at=issued_at)
    certificate = Certificate(
        delivery_id=delivery.id,
        number=number,
        issued_by_id=actor.user_id,
        content_json=canonical_json(content),
        sha256=content_sha256(content),
    )
    session.add(certificate)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="certificate.issued",
        entity_type="certificate",
        entity_id=certificate.id,
        data={"delivery_id": delivery.id, "number": number, "sha256": certificate.sha256},
    )
    return certificate


def certificate_content(certificate: Certificate) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(certificate.content_json)
    return value


def get_certificate(session: Session, *, delivery_id: UUID, actor: Actor) -> Certificate:
    """A batch's certificate. Operators only for batches printed entirely at their sites
    (another site's batch is ``NotFound``)."""
    trace_delivery(session, delivery_id, actor=actor, require_all=True)  # visibility
    certificate = session.scalar(select(Certificate).where(Certificate.delivery_id == delivery_id))
    if certificate is None:
        raise NotFound(f"no certificate for delivery {delivery_id}")
    return certificate


def find_certificate(session: Session, number: str) -> Certificate:
    certificate = session.scalar(select(Certificate).where(Certificate.number == number))
    if certificate is None:
        raise NotFound(f"no certificate {number}")
    return certificate


def verify_certificate(session: Session, certificate: Certificate) -> dict[str, Any]:
    """Three independent checks: the stored document still has its hash; the audit trail
    recorded that same hash; and the records rebuilt today give the same document."""
    stored = certificate_content(certificate)
    problems: list[str] = []
    if content_sha256(stored) != certificate.sha256:
        problems.append("the stored certificate does not match its hash")
    issued = session.scalar(
        select(AuditEntry).where(
            AuditEntry.entity_type == "certificate",
            AuditEntry.entity_id == str(certificate.id),
            AuditEntry.action == "certificate.issued",
        )
    )
    if issued is None:
        problems.append("the audit trail has no entry for this certificate")
    elif issued.data.get("sha256") != certificate.sha256:
        problems.append("the audit trail recorded another hash for this certificate")
    delivery = session.get(Delivery, certificate.delivery_id)
    assert delivery is not None
    rebuilt = build_content(
        session, delivery, number=certificate.number, issued_at=stored.get("issued_at", "")
    )
    differences = sorted(_differences(stored, rebuilt))
    if differences:
        problems.append("the records changed since the certificate was issued")
    return {
        "number": certificate.number,
        "sha256": certificate.sha256,
        "ok": not problems,
        "problems": problems,
        "differences": differences[:50],
    }


def verify_document(session: Session, document: dict[str, Any]) -> dict[str, Any]:
    """Check a certificate someone holds (the JSON file) against the issued one."""
    number = document.get("number")
    if not isinstance(number, str) or not number:
        raise Invalid("this document has no certificate number")
    certificate = find_certificate(session, number)
    held = content_sha256(document)
    report = verify_certificate(session, certificate)
    if held != certificate.sha256:
        report["ok"] = False
        report["problems"] = [
            "the document differs from the certificate issued",
            *report["problems"],
        ]
        report["differences"] = sorted(_differences(certificate_content(certificate), document))[
            :50
        ]
    report["document_sha256"] = held
    return report


def _differences(left: Any, right: Any, path: str = "") -> list[str]:
    """Paths (a.b[2].c) where two JSON values differ."""
    if isinstance(left, dict) and isinstance(right, dict):
        found: list[str] = []
        for key in sorted(set(left) | set(right)):
            found += _differences(left.get(key), right.get(key), f"{path}.{key}" if path else key)
        return found
    if isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        found = []
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            found += _differences(a, b, f"{path}[{index}]")
        return found
    return [] if canonical_json({"v": left}) == canonical_json({"v": right}) else [path or "."]
