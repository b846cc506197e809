"""The job state machine: legal moves only, one audit entry per change, idempotent repeats."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest
from sqlalchemy import func, select

from core.audit import AuditEntry
from core.clock import utcnow
from core.errors import IllegalTransition
from core.identity import Actor
from core.runtime import Runtime
from scheduler import jobs as transitions
from scheduler.models import Job, JobState, Need
from tests.factories import make_delivery_point, make_site

ACTOR = Actor.system("test")
S = JobState


def make_job(runtime: Runtime) -> Job:
    """A job row without going through slicing: the state machine does not care."""
    from catalog.models import DesignVersion, Part

    with runtime.db.session() as session:
        site = make_site(session)
        point = make_delivery_point(session)
        part = Part(name=f"p-{uuid4().hex[:6]}")
        session.add(part)
        session.flush()
        version = DesignVersion(
            part_id=part.id,
            number=1,
            model_hash="0" * 64,
            model_file_name="x.stl",
            size_x_mm=10,
            size_y_mm=10,
            size_z_mm=10,
            volume_mm3=1000,
        )
        session.add(version)
        session.flush()
        need = Need(
            part_id=part.id,
            design_version_id=version.id,
            material_key="PLA",
            quantity=2,
            due_at=utcnow() + timedelta(days=1),
            delivery_point_id=point.id,
        )
        session.add(need)
        session.flush()
        job = Job(
            need_id=need.id,
            index=1,
            design_version_id=version.id,
            material_key="PLA",
            copies=2,
            site_id=site.id,
        )
        session.add(job)
        session.commit()
        return job


def audit_count(runtime: Runtime) -> int:
    with runtime.db.session() as session:
        return session.scalar(select(func.count(AuditEntry.seq))) or 0


def test_every_illegal_move_is_refused(runtime: Runtime) -> None:
    job = make_job(runtime)
    with runtime.db.session() as session:
        job = transitions.get_job(session, job.id)
        for target in JobState:
            if target in transitions.LEGAL[S.QUEUED] or target is S.QUEUED:
                continue
            with pytest.raises(IllegalTransition):
                transitions._move(session, job, target, actor=ACTOR)
        assert job.state is S.QUEUED


def test_happy_path_writes_one_audit_entry_per_transition(runtime: Runtime) -> None:
    job = make_job(runtime)
    before = audit_count(runtime)
    path = [S.PLANNED, S.ACCEPTED, S.DISPATCHED, S.PRINTING, S.PRINTED, S.PASSED, S.DELIVERED]
    with runtime.db.session() as session:
        job = transitions.get_job(session, job.id)
        for target in path:
            assert transitions._move(session, job, target, actor=ACTOR)
            session.commit()
    assert audit_count(runtime) == before + len(path)
    with runtime.db.session() as session:
        actions = [
            e.action
            for e in session.scalars(
                select(AuditEntry)
                .where(AuditEntry.entity_id == str(job.id))
                .order_by(AuditEntry.seq)
            )
        ]
    assert actions == [f"job.{s.value}" for s in path]


def test_repeating_a_transition_changes_nothing(runtime: Runtime) -> None:
    job = make_job(runtime)
    with runtime.db.session() as session:
        job = transitions.get_job(session, job.id)
        transitions._move(session, job, S.PLANNED, actor=ACTOR)
        transitions.accept(session, job, actor=ACTOR)
        session.commit()
        count = audit_count(runtime)
        version = job.version
        assert transitions.accept(session, job, actor=ACTOR) is False
        session.commit()
    assert audit_count(runtime) == count
    with runtime.db.session() as session:
        assert transitions.get_job(session, job.id).version == version


def test_failure_requeue_counts_attempts(runtime: Runtime) -> None:
    job = make_job(runtime)
    with runtime.db.session() as session:
        job = transitions.get_job(session, job.id)
        for target in (S.PLANNED, S.ACCEPTED, S.DISPATCHED, S.PRINTING):
            transitions._move(session, job, target, actor=ACTOR)
        transitions.fail(session, job, actor=ACTOR, reason="nozzle clog", progress_pct=40.0)
        transitions.requeue(session, job, actor=ACTOR, reason="retry", new_attempt=True)
        session.commit()
        assert job.state is S.QUEUED
        assert job.attempt == 2
        assert job.printer_id is None


def test_a_stale_writer_loses(runtime: Runtime) -> None:
    """Two sessions hold the same job; the one that writes second gets a conflict,
    never a silently lost update (optimistic version column)."""
    from sqlalchemy.orm.exc import StaleDataError

    job = make_job(runtime)
    with runtime.db.session() as first, runtime.db.session() as second:
        stale = first.get(Job, job.id)
        assert stale is not None
        first.commit()  # end the read; the object keeps version 1 in memory
        fresh = second.get(Job, job.id)
        assert fresh is not None
        transitions._move(second, fresh, S.PLANNED, actor=ACTOR)
        second.commit()
        stale.copies = 3
        with pytest.raises(StaleDataError):
            first.flush()
