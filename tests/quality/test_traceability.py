"""Traceability both ways: a delivered item back to its origins, and a recall from a spool
lot, a printer over a time window, or a design version to every delivery and recipient."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.clock import utcnow
from core.errors import Invalid, NotFound
from core.runtime import Runtime
from quality import deliveries, inspections, traceability
from tests.quality.support import World, make_lot, make_printer_row, make_world, printed_job


@pytest.fixture
def world(runtime: Runtime) -> World:
    with runtime.db.session() as session:
        return make_world(session)


def test_a_delivered_item_traces_back_to_everything(runtime: Runtime, world: World) -> None:
    with runtime.db.session() as session:
        failed = printed_job(session, world, fail_at_pct=40.0)
        from scheduler import jobs as transitions
        from tests.quality.support import run_printed

        job = transitions.get_job(session, failed.id)
        transitions.requeue(session, job, actor=world.admin, reason="failed", new_attempt=True)
        run_printed(session, world, job)
        session.commit()
        inspections.record_inspection(
            session, job_ids=[job.id], actor=world.operator, defective_count=0
        )
        delivery = deliveries.deliver_need(
            session, need_id=world.need.id, actor=world.coordinator, recipient="Urgences"
        )
        trace = traceability.trace_delivery(session, delivery.id, actor=world.auditor)
        story = traceability.trace_job(session, job.id, actor=world.operator)
    assert trace["need"]["id"] == str(world.need.id)
    assert trace["design_version"]["model_sha256"] == world.version.model_hash
    assert trace["design_version"]["approved_at"] is not None
    assert trace["delivery"]["delivery_point"]["name"] == world.point.name
    [plate] = trace["plates"]
    assert plate["attempt"] == 2  # the print that was delivered, not the failed one
    assert plate["print"]["printer"] == world.printer.name
    assert plate["print"]["site"] == world.site.name
    assert plate["print"]["started_at"]
    assert plate["print"]["ended_at"]
    assert plate["print"]["gcode_sha256"] == world.slice.gcode_hash
    assert plate["slice"]["settings_sha256"] == world.slice.settings_hash
    assert plate["slice"]["settings"] == world.slice.settings
    assert plate["material"]["spool_lot"]["lot_code"] == world.lot.lot_code
    assert plate["inspection"]["inspector"] == world.operator.username
    assert [a["print"]["outcome"] for a in story["attempts"]] == ["failed", "done"]
    with runtime.db.session() as session, pytest.raises(NotFound):
        traceability.trace_delivery(session, delivery.id, actor=world.other_operator)


def test_recall_by_lot_printer_window_and_design(runtime: Runtime, world: World) -> None:
    with runtime.db.session() as session:
        other_lot = make_lot(session, site=world.site)
        other_printer = make_printer_row(session, world.site, lot=other_lot)
        session.commit()
        early = utcnow() - timedelta(hours=5)
        bad = [printed_job(session, world, ended_at=early) for _ in range(2)]
        good = printed_job(session, world, printer=other_printer)
        pending = printed_job(session, world, ended_at=early)  # printed, not delivered yet
        for job in [*bad, good]:
            inspections.record_inspection(
                session, job_ids=[job.id], actor=world.operator, defective_count=0
            )
        first = deliveries.deliver_need(
            session,
            need_id=world.need.id,
            actor=world.coordinator,
            job_ids=[bad[0].id, good.id],
            recipient="Réanimation",
        )
        second = deliveries.deliver_need(
            session,
            need_id=world.need.id,
            actor=world.coordinator,
            job_ids=[bad[1].id],
            recipient="EHPAD",
        )
        by_lot = traceability.recall(session, actor=world.auditor, lot_code=world.lot.lot_code)
        by_window = traceability.recall(
            session,
            actor=world.auditor,
            printer_id=world.printer.id,
            since=early - timedelta(hours=2),
            until=early + timedelta(minutes=1),
        )
        outside = traceability.recall(
            session,
            actor=world.auditor,
            printer_id=world.printer.id,
            since=utcnow() + timedelta(hours=1),
        )
        by_design = traceability.recall(
            session, actor=world.auditor, design_version_id=world.version.id
        )
        as_other = traceability.recall(
            session, actor=world.other_operator, design_version_id=world.version.id
        )
        with pytest.raises(Invalid):
            traceability.recall(session, actor=world.auditor)
        with pytest.raises(Invalid, match="goes with a printer"):
            traceability.recall(session, actor=world.auditor, since=early, lot_code="x")
    assert {d["delivery_id"] for d in by_lot["deliveries"]} == {str(first.id), str(second.id)}
    assert by_lot["affected_quantity"] == 8  # bad[0] and bad[1]; good came from the other lot
    assert {r["recipient"] for r in by_lot["recipients"]} == {"Réanimation", "EHPAD"}
    assert [p["job_id"] for p in by_lot["undelivered"]] == [str(pending.id)]
    assert by_window["affected_quantity"] == 8
    assert outside["deliveries"] == []
    assert by_design["affected_quantity"] == 12
    assert as_other["deliveries"] == []  # nothing of the other site's
