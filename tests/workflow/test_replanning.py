"""Re-planning on the database: refusals, printers going away, frozen jobs, stability, explanations."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest
from sqlalchemy import func, select

from core.audit import AuditEntry
from core.clock import utcnow
from core.identity import Actor, Role, create_user
from core.runtime import Runtime
from printers import service as printers
from printers.errors import PrinterUnreachable
from printers.models import Printer, PrinterStatusValue
from printers.monitor import PollPolicy, record_poll
from scheduler import jobs as scheduler_jobs
from scheduler import service as scheduler
from scheduler.models import Job, JobRefusal, JobState, PlanRecord
from tests.factories import make_delivery_point, make_need, make_part, make_printer, make_site


def setup(
    runtime: Runtime, printers_count: int = 2, quantity: int = 2
) -> tuple[list[UUID], UUID, Actor]:
    from catalog.demo_parts import face_shield_headband

    with runtime.db.session() as session:
        site = make_site(session)
        point = make_delivery_point(session)
        # Registration checks nothing here: these printers are never contacted.
        ids = [
            make_printer(
                runtime, session, site, base_url=f"http://127.0.0.1:9/p{n}", api_key="k"
            ).id
            for n in range(printers_count)
        ]
        part, _ = make_part(runtime, session, face_shield_headband(height_mm=0.6))
        need = make_need(session, part, point, quantity=quantity)
        operator = create_user(
            session,
            username=f"op-{site.id.hex[:6]}",
            password="password-123",
            role=Role.OPERATOR,
            sites=[site],
        )
        session.commit()
        return ids, need.id, Actor.of(operator)


def plan(runtime: Runtime, trigger: str = "test") -> PlanRecord | None:
    scheduler.slice_open_needs(runtime.db, runtime.store)
    return scheduler.replan(runtime.db, trigger=trigger, time_limit_s=1.0, horizon_days=7)


def jobs(runtime: Runtime, need_id: UUID) -> list[Job]:
    with runtime.db.session() as session:
        return list(session.scalars(select(Job).where(Job.need_id == need_id).order_by(Job.index)))


def audit_actions(runtime: Runtime, action: str) -> int:
    with runtime.db.session() as session:
        return (
            session.scalar(select(func.count(AuditEntry.seq)).where(AuditEntry.action == action))
            or 0
        )


def test_a_refused_job_is_planned_elsewhere_and_never_back(runtime: Runtime) -> None:
    _printer_ids, need_id, operator = setup(runtime)
    plan(runtime)
    first = jobs(runtime, need_id)[0]
    assert first.state is JobState.PLANNED
    refused_on = first.printer_id
    with runtime.db.session() as session:
        printers.refuse_job(session, job_id=first.id, actor=operator, reason="maintenance")
    after = jobs(runtime, need_id)[0]
    assert after.state is JobState.QUEUED
    assert after.attempt == 1  # nothing was printed
    for _ in range(3):
        plan(runtime)
        again = jobs(runtime, need_id)[0]
        assert again.state is JobState.PLANNED
        assert again.printer_id != refused_on
    with runtime.db.session() as session:
        assert session.scalar(select(func.count(JobRefusal.id))) == 1


def test_jobs_leave_a_printer_that_goes_offline_but_frozen_ones_stay(runtime: Runtime) -> None:
    printer_ids, need_id, operator = setup(runtime, printers_count=2, quantity=4)
    plan(runtime)
    planned = jobs(runtime, need_id)
    accepted = planned[0]
    with runtime.db.session() as session:
        printers.accept_job(session, job_id=accepted.id, actor=operator)
    gone = next(p for p in printer_ids if p != accepted.printer_id)
    policy = PollPolicy(offline_after_misses=2, max_attempts=3)
    for _ in range(2):
        with runtime.db.session() as session:
            record_poll(session, printer_id=gone, result=PrinterUnreachable("down"), policy=policy)
            session.commit()
    with runtime.db.session() as session:
        printer = session.get(Printer, gone)
        assert printer is not None
        assert printer.status is PrinterStatusValue.OFFLINE
    plan(runtime, "printer_offline")
    after = {j.id: j for j in jobs(runtime, need_id)}
    assert after[accepted.id].state is JobState.ACCEPTED
    assert after[accepted.id].printer_id == accepted.printer_id
    assert all(j.printer_id != gone for j in after.values())


def test_replanning_an_unchanged_situation_moves_nothing(runtime: Runtime) -> None:
    _ids, need_id, _operator = setup(runtime, printers_count=2, quantity=3)
    plan(runtime)
    before = {j.id: j.printer_id for j in jobs(runtime, need_id)}
    replanned = audit_actions(runtime, "job.replanned")
    for _ in range(3):
        record = plan(runtime)
        assert record is not None
        assert record.jobs_moved == 0
    assert {j.id: j.printer_id for j in jobs(runtime, need_id)} == before
    assert audit_actions(runtime, "job.replanned") == replanned


def test_a_deadline_change_is_audited_and_the_plan_explained(runtime: Runtime) -> None:
    _ids, need_id, _operator = setup(runtime, printers_count=2, quantity=2)
    plan(runtime)
    coordinator = Actor(user_id=None, username="coordinator", role=Role.COORDINATOR)
    with runtime.db.session() as session:
        need = scheduler.update_need(
            session,
            need_id=need_id,
            actor=coordinator,
            due_at=utcnow() + timedelta(minutes=5),
            priority=5,
        )
        assert need.priority == 5
    record = plan(runtime, "need_changed")
    assert record is not None
    assert record.trigger == "need_changed"
    explained = {j["job_id"] for j in record.explanation["jobs"]}
    assert explained == {str(j.id) for j in jobs(runtime, need_id)}
    (late,) = record.explanation["late_needs"]  # 5 minutes is not enough for a plate
    assert late["need_id"] == str(need_id)
    assert late["late_s"] > 0
    assert late["causes"]
    assert audit_actions(runtime, "need.updated") == 1


@pytest.mark.parametrize("backend", ["postgres"])
def test_plans_are_stored_with_their_figures(runtime: Runtime) -> None:
    _ids, _need_id, _operator = setup(runtime)
    record = plan(runtime)
    assert record is not None
    with runtime.db.session() as session:
        stored = session.get(PlanRecord, record.id)
        assert stored is not None
        assert stored.jobs_planned == 2
        assert stored.status in ("optimal", "feasible", "greedy")
        assert stored.solve_time_s >= 0
        assert stored.method


def test_plates_are_sized_per_printer_model_and_refit_when_the_large_beds_leave(
    runtime: Runtime,
) -> None:
    """A need is cut into plates of each printer model's own size; when the printers with
    the large beds go away, their waiting plates are cut to fit the beds left, copies kept."""
    from catalog.demo_parts import door_opener
    from catalog.models import DesignVersion

    with runtime.db.session() as session:
        site = make_site(session)
        point = make_delivery_point(session)
        large = [
            make_printer(runtime, session, site, base_url=f"http://127.0.0.1:9/m{n}", api_key="k")
            for n in range(3)
        ]
        make_printer(
            runtime,
            session,
            site,
            base_url="http://127.0.0.1:9/mini",
            api_key="k",
            profile_key="prusa-mini",
        )
        part, version = make_part(runtime, session, door_opener())
        fits = session.get(DesignVersion, version.id).check_report["copies_per_profile"]  # type: ignore[union-attr]
        big, small = min(fits["prusa-mk3s"], 8), min(fits["prusa-mini"], 8)
        assert big > small, fits  # more door openers fit the MK3S bed than the MINI's
        need = make_need(session, part, point, quantity=10 * big)
        session.commit()
        need_id = need.id
    sizes = sorted({j.copies for j in jobs(runtime, need_id)}, reverse=True)
    assert sizes[0] == big  # the large beds get full plates of their own size
    assert sum(j.copies for j in jobs(runtime, need_id)) == 10 * big
    assert any(j.copies <= small for j in jobs(runtime, need_id))
    # Planned, a plate goes only to a printer whose bed takes it.
    plan(runtime)
    large_ids = {p.id for p in large}
    planned = [j for j in jobs(runtime, need_id) if j.printer_id is not None]
    assert planned
    assert all(j.printer_id in large_ids for j in planned if j.copies > small)
    with runtime.db.session() as session:
        for job in session.scalars(select(Job).where(Job.need_id == need_id)):
            scheduler_jobs.unplan(session, job, actor=Actor.system("test"), reason="test")
        session.commit()
    # The MK3S printers go away before anything is planned: no bed in use takes `big` any more.
    with runtime.db.session() as session:
        for printer in large:
            session.get(Printer, printer.id).status = PrinterStatusValue.OFFLINE  # type: ignore[union-attr]
        session.commit()
    scheduler.slice_open_needs(runtime.db, runtime.store)
    after = jobs(runtime, need_id)
    assert sum(j.copies for j in after) == 10 * big  # nothing lost
    assert max(j.copies for j in after) <= small
    assert len({j.index for j in after}) == len(after)
    split = audit_actions(runtime, "job.split")
    assert split > 0
    scheduler.slice_open_needs(runtime.db, runtime.store)  # a second sweep cuts nothing more
    assert audit_actions(runtime, "job.split") == split
    assert len(jobs(runtime, need_id)) == len(after)
