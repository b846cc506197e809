"""What keeps the API fast while planning runs: grouped progress, batched plan writes,
one re-plan at a time without holding a worker, a lower CPU priority for the solve."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest
from sqlalchemy import select

from core.audit import verify_chain
from core.clock import utcnow
from core.identity import Actor, Role, create_user
from core.runtime import Runtime, set_runtime
from printers import service as printers
from scheduler import service as scheduler
from scheduler import tasks
from scheduler.instances.parallel import call_niced
from scheduler.models import Job, JobState, Need, PlanRecord
from tests.factories import make_delivery_point, make_need, make_part, make_printer, make_site
from tests.fixtures.database import make_settings
from tests.fixtures.services import RedisServer


def world(runtime: Runtime, *, needs: int = 2, quantity: int = 3) -> tuple[list[UUID], Actor]:
    from catalog.demo_parts import face_shield_headband

    with runtime.db.session() as session:
        site = make_site(session)
        point = make_delivery_point(session)
        for n in range(2):
            make_printer(runtime, session, site, base_url=f"http://127.0.0.1:9/p{n}", api_key="k")
        part, _ = make_part(runtime, session, face_shield_headband(height_mm=0.6))
        need_ids = [
            make_need(session, part, point, quantity=quantity, due_in=timedelta(days=2 + n)).id
            for n in range(needs)
        ]
        operator = create_user(
            session,
            username=f"op-{site.id.hex[:6]}",
            password="password-123",
            role=Role.OPERATOR,
            sites=[site],
        )
        session.commit()
        return need_ids, Actor.of(operator)


def test_grouped_progress_is_the_progress_of_each_need(runtime: Runtime) -> None:
    need_ids, operator = world(runtime, needs=3, quantity=4)
    scheduler.slice_open_needs(runtime.db, runtime.store)
    scheduler.replan(runtime.db, trigger="test", time_limit_s=0.5, horizon_days=7)
    with runtime.db.session() as session:
        # Some plates accepted, one refused (back to the queue): several states per need.
        planned = list(
            session.scalars(
                select(Job).where(Job.state == JobState.PLANNED).order_by(Job.need_id, Job.index)
            )
        )
        assert len(planned) >= 3
        printers.accept_job(session, job_id=planned[0].id, actor=operator)
        printers.accept_job(session, job_id=planned[1].id, actor=operator)
        printers.refuse_job(session, job_id=planned[-1].id, actor=operator, reason="maintenance")
    with runtime.db.session() as session:
        needs = list(session.scalars(select(Need).where(Need.id.in_(need_ids))))
        grouped = scheduler.needs_progress(session, needs)
        one_by_one = {need.id: scheduler.need_progress(need) for need in needs}
    assert grouped == one_by_one
    assert {p.in_progress for p in grouped.values()} != {0}
    assert {p.queued for p in grouped.values()} != {0}
    assert any(p.forecast_delivery_at is not None for p in grouped.values())


def test_a_plan_written_in_batches_places_every_job_and_keeps_the_chain(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scheduler, "APPLY_BATCH", 2)  # several batches for 6 plates
    need_ids, _operator = world(runtime, needs=2, quantity=3)
    scheduler.slice_open_needs(runtime.db, runtime.store)
    record = scheduler.replan(
        runtime.db, trigger="test", time_limit_s=0.5, horizon_days=7, explain_budget_s=5.0
    )
    assert record is not None
    with runtime.db.session() as session:
        jobs = list(session.scalars(select(Job).where(Job.need_id.in_(need_ids))))
        assert len(jobs) == 6
        assert {j.state for j in jobs} == {JobState.PLANNED}
        stored = session.get(PlanRecord, record.id)
        assert stored is not None
        assert stored.jobs_moved == 6
        assert {j["job_id"] for j in stored.explanation["jobs"]} == {str(j.id) for j in jobs}
        assert verify_chain(session).ok


def test_a_replan_requested_while_one_runs_waits_for_it_without_a_worker(
    private_redis: RedisServer, tmp_path: Path, database_url: str
) -> None:
    runtime = Runtime.from_settings(
        make_settings(
            tmp_path,
            database_url,
            redis_url=private_redis.url,
            celery_queue=f"q{os.getpid()}{utcnow().timestamp():.0f}",
            replan_min_interval_s=30.0,
        )
    )
    set_runtime(runtime)
    sent: list[tuple[str, float | None]] = []

    def enqueue(task: object, trigger: str, *, countdown: float | None = None) -> None:
        sent.append((trigger, countdown))

    try:
        pending, lock_key, quiet = tasks._keys()
        client = tasks._redis()
        assert client is not None
        client.delete(pending, lock_key, quiet)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(tasks, "enqueue", enqueue)
            lock = client.lock(lock_key, timeout=60)
            assert lock.acquire(blocking=False)
            assert tasks.replan.run("need_posted") is None  # returns at once
            assert sent == [("need_posted", 0.0)]  # and asks again (debounce 0 here)
            lock.release()
            # A finished re-plan starts a quiet interval: the next request is served at
            # its end, and the requests made meanwhile by that one run.
            assert tasks.replan.run("sweep") is None  # nothing to plan in this database
            client.delete(pending)
            tasks.request_replan("need_posted")
            tasks.request_replan("need_posted")
            assert len(sent) == 2
            trigger, countdown = sent[1]
            assert trigger == "need_posted"
            assert countdown is not None
            assert 20.0 < countdown <= 30.0
    finally:
        set_runtime(None)
        runtime.db.dispose()


def test_the_solve_runs_at_a_lower_priority_and_comes_back() -> None:
    mine = os.nice(0)
    assert call_niced(lambda: os.nice(0), niceness=5) == min(19, mine + 5)
    assert call_niced(lambda: os.nice(0), niceness=0) == mine
    assert call_niced(lambda: {"plan": [1, 2, 3]}, niceness=5) == {"plan": [1, 2, 3]}


def test_a_failing_solve_fails_here_with_its_error() -> None:
    def broken() -> int:
        raise ValueError("no plan")

    with pytest.raises(ValueError, match="no plan"):
        call_niced(broken, niceness=5)


def test_explanations_within_a_budget_still_cover_every_job() -> None:
    from scheduler.allocator import allocate
    from scheduler.explain import explain_plan
    from scheduler.generator import crisis_problem

    problem = crisis_problem(60, 6, 3, seed=3, running_share=0.0)
    plan = allocate(problem, time_limit_s=0.3, seed=0)
    full = explain_plan(problem, plan)
    assert full.alternatives_skipped == 0
    assert any(job.alternatives for job in full.jobs)
    none = explain_plan(problem, plan, budget_s=0.0)
    assert [j.job_id for j in none.jobs] == [j.job_id for j in full.jobs]
    assert all(not job.alternatives for job in none.jobs)
    assert none.alternatives_skipped == sum(1 for j in full.jobs if not j.frozen)
    assert none.late_needs == full.late_needs
    assert none.to_dict()["alternatives_skipped"] == none.alternatives_skipped


def test_a_dispatch_is_only_worth_sending_to_a_free_printer(runtime: Runtime) -> None:
    from printers.dispatch import printer_is_free
    from printers.models import Printer
    from scheduler.models import PrintRun, RunOutcome

    need_ids, _operator = world(runtime, needs=1, quantity=2)
    scheduler.slice_open_needs(runtime.db, runtime.store)
    scheduler.replan(runtime.db, trigger="test", time_limit_s=0.5, horizon_days=7)
    with runtime.db.session() as session:
        first, second = session.scalars(select(Job).where(Job.need_id == need_ids[0]))
        assert first.printer_id is not None
        printer = session.get(Printer, first.printer_id)
        assert printer is not None
        assert printer_is_free(session, printer_id=printer.id, job_id=second.id)
        run = PrintRun(
            job_id=first.id,
            attempt=1,
            printer_id=printer.id,
            site_id=printer.site_id,
            material_key="PLA",
            gcode_hash="0" * 64,
            file_name="df-test.gcode",
            filament_g=1.0,
            outcome=RunOutcome.PRINTING,
        )
        session.add(run)
        session.flush()
        assert not printer_is_free(session, printer_id=printer.id, job_id=second.id)
        assert printer_is_free(session, printer_id=printer.id, job_id=first.id)  # its own
        run.outcome = RunOutcome.DONE
        printer.needs_clearing = True
        session.flush()
        assert not printer_is_free(session, printer_id=printer.id, job_id=second.id)
        printer.needs_clearing = False
        session.flush()
        assert printer_is_free(session, printer_id=printer.id, job_id=second.id)


def test_every_answer_carries_its_request_id(runtime: Runtime) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app(runtime, background=False)) as client:
        answer = client.get("/api/v1/needs", headers={"X-Request-ID": "load-42"})
        assert answer.status_code == 401
        assert answer.headers["X-Request-ID"] == "load-42"
        assert answer.json()["instance"] == "urn:request:load-42"
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert len(client.get("/healthz").headers["X-Request-ID"]) == 32


def test_a_solve_that_never_answers_is_done_here() -> None:
    import time

    parent = os.getpid()

    def stuck_in_the_child() -> str:
        if os.getpid() != parent:
            time.sleep(20)
            return "planned in the child"
        return "planned here"

    assert call_niced(stuck_in_the_child, niceness=5, timeout_s=0.5) == "planned here"


def test_the_sweep_sends_one_job_per_free_printer(runtime: Runtime) -> None:
    from printers.dispatch import next_dispatchable
    from printers.models import Printer

    need_ids, operator = world(runtime, needs=1, quantity=4)
    scheduler.slice_open_needs(runtime.db, runtime.store)
    scheduler.replan(runtime.db, trigger="test", time_limit_s=0.5, horizon_days=7)
    with runtime.db.session() as session:
        jobs = list(session.scalars(select(Job).where(Job.need_id == need_ids[0])))
        for job in jobs:
            printers.accept_job(session, job_id=job.id, actor=operator)
        by_printer: dict[UUID, list[Job]] = {}
        for job in sorted(jobs, key=lambda j: j.planned_start_at or utcnow()):
            assert job.printer_id is not None
            by_printer.setdefault(job.printer_id, []).append(job)
        first = {printer_id: queue[0].id for printer_id, queue in by_printer.items()}
        assert sorted(next_dispatchable(session)) == sorted(first.values())
        cleared, disabled = (list(by_printer) + list(by_printer))[:2]
        session.get(Printer, cleared).needs_clearing = True  # type: ignore[union-attr]
        session.flush()
        assert cleared not in {
            j.printer_id for j in jobs if j.id in set(next_dispatchable(session))
        }
        if disabled != cleared:
            session.get(Printer, disabled).enabled = False  # type: ignore[union-attr]
            session.flush()
            assert next_dispatchable(session) == []
