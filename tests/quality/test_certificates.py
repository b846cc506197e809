"""Deliveries and their certificates of conformity: frozen at delivery, hashed into the audit
trail, rendered as a real PDF, and caught when anything is edited behind distrifab's back."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import func, select, text

from core.audit import AuditEntry, canonical_json, verify_chain
from core.errors import Conflict, NotFound
from core.i18n import using_language
from core.runtime import Runtime
from quality import certificates, deliveries, inspections
from quality.certificate_pdf import render_pdf
from quality.models import Certificate, Delivery, Disposition
from scheduler import jobs as transitions
from scheduler.models import JobState, NeedStatus
from tests.quality.support import World, make_world, printed_job


@pytest.fixture
def world(runtime: Runtime) -> World:
    with runtime.db.session() as session:
        return make_world(session)


def passed_plates(runtime: Runtime, world: World, count: int = 2) -> list:  # type: ignore[type-arg]
    with runtime.db.session() as session:
        jobs = [printed_job(session, world) for _ in range(count)]
        for job in jobs:
            inspections.record_inspection(
                session, job_ids=[job.id], actor=world.operator, defective_count=0
            )
        return jobs


def test_a_delivery_issues_its_certificate(runtime: Runtime, world: World) -> None:
    jobs = passed_plates(runtime, world)
    with runtime.db.session() as session:
        delivery = deliveries.deliver_need(
            session, need_id=world.need.id, actor=world.coordinator, recipient="Pharmacie du CH"
        )
        certificate = certificates.get_certificate(
            session, delivery_id=delivery.id, actor=world.auditor
        )
        content = certificates.certificate_content(certificate)
        assert certificate.sha256 == hashlib.sha256(canonical_json(content).encode()).hexdigest()
        assert certificate.content_json == canonical_json(content)
        assert content["delivery"]["recipient"] == "Pharmacie du CH"
        assert content["inspection_summary"]["lots"] == 2
        assert content["inspection_summary"]["parts_delivered"] == 8
        assert {p["job_id"] for p in content["plates"]} == {str(j.id) for j in jobs}
        plate = content["plates"][0]
        assert plate["print"]["gcode_sha256"] == world.slice.gcode_hash
        assert plate["material"]["spool_lot"]["lot_code"] == world.lot.lot_code
        assert plate["inspection"]["inspector"] == world.operator.username
        issued = session.scalar(select(AuditEntry).where(AuditEntry.action == "certificate.issued"))
        assert issued is not None
        assert issued.data["sha256"] == certificate.sha256
        assert {transitions.get_job(session, j.id).state for j in jobs} == {JobState.DELIVERED}
        report = certificates.verify_certificate(session, certificate)
        assert report["ok"], report


def test_the_pdf_carries_the_table_and_the_hash(runtime: Runtime, world: World) -> None:
    passed_plates(runtime, world, count=1)
    with runtime.db.session() as session:
        delivery = deliveries.deliver_need(session, need_id=world.need.id, actor=world.coordinator)
        certificate = certificates.get_certificate(
            session, delivery_id=delivery.id, actor=world.admin
        )
        content = certificates.certificate_content(certificate)
    pdf = render_pdf(content, certificate.sha256)
    assert pdf.startswith(b"%PDF-")
    assert render_pdf(content, certificate.sha256) == pdf  # reproducible
    with using_language("fr"):
        french = render_pdf(content, certificate.sha256)
    assert french != pdf
    # Page text is drawn with an embedded TrueType subset (glyph ids, not letters); the
    # document's properties carry the number and the hash in clear.
    assert certificate.sha256.encode() in pdf
    assert certificate.number.encode() in pdf
    assert b"/Type /Pages" in pdf
    assert len(pdf) > 5000  # fonts, the table and the QR code, not an empty page


def test_retried_deliveries_do_not_deliver_twice(runtime: Runtime, world: World) -> None:
    jobs = passed_plates(runtime, world, count=3)
    with runtime.db.session() as session:
        first = deliveries.deliver_need(
            session,
            need_id=world.need.id,
            actor=world.coordinator,
            job_ids=[jobs[0].id, jobs[1].id],
            idempotency_key="coordinator-batch-0001",
        )
        again = deliveries.deliver_need(
            session,
            need_id=world.need.id,
            actor=world.coordinator,
            job_ids=[jobs[0].id, jobs[1].id],
            idempotency_key="coordinator-batch-0001",
        )
        same_plates = deliveries.deliver_need(
            session,
            need_id=world.need.id,
            actor=world.coordinator,
            job_ids=[jobs[1].id, jobs[0].id],
        )
        assert again.id == first.id == same_plates.id
        assert first.quantity == 8
        with pytest.raises(Conflict, match="only passed plates"):
            deliveries.deliver_need(
                session,
                need_id=world.need.id,
                actor=world.coordinator,
                job_ids=[jobs[0].id, jobs[2].id],
            )
        assert session.scalar(select(func.count(Delivery.id))) == 1
        assert session.scalar(select(func.count(Certificate.id))) == 1
        rest = deliveries.deliver_need(session, need_id=world.need.id, actor=world.coordinator)
        assert rest.quantity == 4
        assert session.get(type(world.need), world.need.id).status is NeedStatus.DELIVERED  # type: ignore[union-attr]


def test_who_may_deliver_and_read_certificates(runtime: Runtime, world: World) -> None:
    passed_plates(runtime, world, count=1)
    with runtime.db.session() as session:
        with pytest.raises(Conflict, match="no inspected and passed"):
            deliveries.deliver_need(session, need_id=world.need.id, actor=world.other_operator)
        delivery = deliveries.deliver_need(session, need_id=world.need.id, actor=world.operator)
        certificates.get_certificate(session, delivery_id=delivery.id, actor=world.operator)
        with pytest.raises(NotFound):
            certificates.get_certificate(
                session, delivery_id=delivery.id, actor=world.other_operator
            )


def test_a_concession_is_on_the_certificate(runtime: Runtime, world: World) -> None:
    with runtime.db.session() as session:
        job = printed_job(session, world)
        inspection = inspections.record_inspection(
            session,
            job_ids=[job.id],
            actor=world.operator,
            defective_count=1,
            disposition=Disposition.USE_AS_IS,
        )
        nc = inspections.non_conformity_of(session, inspection.id)
        assert nc is not None
        from quality import nonconformities

        nonconformities.approve_concession(session, nc_id=nc.id, actor=world.coordinator)
        delivery = deliveries.deliver_need(session, need_id=world.need.id, actor=world.coordinator)
        content = certificates.certificate_content(
            certificates.get_certificate(session, delivery_id=delivery.id, actor=world.auditor)
        )
    assert content["inspection_summary"]["lots_under_concession"] == 1
    assert content["plates"][0]["concession"]["approved_by"] == world.coordinator.username
    assert content["plates"][0]["inspection"]["verdict"] == "rejected"


def test_edits_behind_distrifabs_back_are_caught(runtime: Runtime, world: World) -> None:
    passed_plates(runtime, world, count=1)
    with runtime.db.session() as session:
        delivery = deliveries.deliver_need(session, need_id=world.need.id, actor=world.coordinator)
        certificate = certificates.get_certificate(
            session, delivery_id=delivery.id, actor=world.admin
        )
        document = certificates.certificate_content(certificate)
        assert certificates.verify_document(session, document)["ok"]
        forged = json.loads(json.dumps(document))
        forged["inspection_summary"]["defective_found"] = 0
        forged["plates"][0]["copies"] = 40
        report = certificates.verify_document(session, forged)
        assert not report["ok"]
        assert "plates[0].copies" in report["differences"]
    # Someone rewrites the inspection's result straight in the database...
    with runtime.db.engine.begin() as connection:
        connection.execute(text("UPDATE inspections SET defective_count = 3, sample_size = 1"))
    with runtime.db.session() as session:
        report = certificates.verify_certificate(session, session.get(Certificate, certificate.id))  # type: ignore[arg-type]
        assert not report["ok"]
        assert "plates[0].inspection.sample_size" in report["differences"]
    # ...or the certificate itself, hash and all: the audit trail kept the first hash.
    tampered = json.loads(certificate.content_json)
    tampered["delivery"]["quantity"] = 400
    body = canonical_json(tampered)
    with runtime.db.engine.begin() as connection:
        connection.execute(
            text("UPDATE certificates SET content_json = :c, sha256 = :h"),
            {"c": body, "h": hashlib.sha256(body.encode()).hexdigest()},
        )
    with runtime.db.session() as session:
        report = certificates.verify_certificate(session, session.get(Certificate, certificate.id))  # type: ignore[arg-type]
        assert "the audit trail recorded another hash for this certificate" in report["problems"]
        assert verify_chain(session).ok  # the chain itself was not touched
