"""Inspections of printed lots: the verdict computed from the sampling plan and the
measurements, lots of several plates, switching to tightened inspection, non-conformities
and their dispositions, idempotent repeats, and nothing half-written on refusal."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from core.audit import AuditEntry
from core.errors import Conflict, Forbidden, Invalid, NotFound
from core.runtime import Runtime
from quality import inspections, nonconformities, plans
from quality.inspections import Measurement
from quality.models import Disposition, Inspection, NonConformity, Verdict, WasteEntry, WasteKind
from quality.sampling import Severity
from scheduler import jobs as transitions
from scheduler.models import JobState
from tests.quality.support import GRAMS_PER_COPY, World, make_world, printed_job

CHECKS: list[dict[str, Any]] = [
    {"key": "width", "kind": "dimensional", "label": "Inner width", "nominal_mm": 181.0,
     "tolerance_mm": 1.0},
    {"key": "edges", "kind": "visual", "label": "No sharp edge or burr"},
    {"key": "marking", "kind": "marking", "label": "Marking", "expected": "DF EN166 3"},
    {"key": "ifu", "kind": "ifu", "label": "Instructions for use", "expected": "IFU-visor v3"},
]  # fmt: skip


def counts(runtime: Runtime) -> tuple[int, int, int, int]:
    with runtime.db.session() as session:
        return (
            session.scalar(select(func.count(Inspection.id))) or 0,
            session.scalar(select(func.count(NonConformity.id))) or 0,
            session.scalar(select(func.count(WasteEntry.id))) or 0,
            session.scalar(select(func.count(AuditEntry.seq))) or 0,
        )


def all_pass(sample_size: int, *, width: float = 181.2) -> list[Measurement]:
    found = []
    for n in range(1, sample_size + 1):
        found += [
            Measurement(n, "width", value=width),
            Measurement(n, "edges", ok=True),
            Measurement(n, "marking", ok=True),
            Measurement(n, "ifu", text="IFU-visor v3"),
        ]
    return found


@pytest.fixture
def world(runtime: Runtime) -> World:
    with runtime.db.session() as session:
        return make_world(session)


def with_plan(runtime: Runtime, world: World, aql: float = 2.5) -> None:
    with runtime.db.session() as session:
        plans.revise_plan(
            session,
            design_version_id=world.version.id,
            actor=world.coordinator,
            standard="EN 166:2001",
            standard_note="French adapted procedure, note of 30 April 2020",
            checks=CHECKS,
            aql=aql,
        )


def test_accepted_lot_passes_and_a_repeat_changes_nothing(runtime: Runtime, world: World) -> None:
    with runtime.db.session() as session:
        job = printed_job(session, world)
        first = inspections.record_inspection(
            session, job_ids=[job.id], actor=world.operator, defective_count=0
        )
        assert first.verdict is Verdict.PASSED
        assert (first.lot_size, first.sample_size, first.accept_number) == (4, 4, 0)
        assert first.severity == Severity.NORMAL.value
        assert len(first.sample) == 4
        assert transitions.get_job(session, job.id).state is JobState.PASSED
    before = counts(runtime)
    with runtime.db.session() as session:
        again = inspections.record_inspection(
            session, job_ids=[job.id], actor=world.operator, defective_count=0
        )
    assert again.id == first.id
    assert counts(runtime) == before


def test_verdict_is_computed_from_the_measurements(runtime: Runtime, world: World) -> None:
    with_plan(runtime, world)
    with runtime.db.session() as session:
        job = printed_job(session, world, copies=20)
        plan = inspections.inspection_plan(session, job_ids=[job.id], actor=world.operator)
        n = plan.sampling.sample_size
        assert (plan.sampling.code_letter, n, plan.sampling.accept_number) == ("C", 5, 0)
        measured = all_pass(n)
        # One part out of tolerance: 183.0 mm against 181.0 ± 1.0.
        measured[0] = Measurement(1, "width", value=183.0)
        inspection = inspections.record_inspection(
            session,
            job_ids=[job.id],
            actor=world.operator,
            measurements=measured,
            cause="headband too wide: bed temperature",
            disposition=Disposition.PENDING,
        )
        assert inspection.defective_count == 1
        assert inspection.verdict is Verdict.REJECTED
        assert {m["ok"] for m in inspection.measurements if m["sample"] == 1} == {False, True}
        nc = inspections.non_conformity_of(session, inspection.id)
        assert nc is not None
        assert (nc.disposition, nc.status, nc.quantity) == ("pending", "open", 20)
        # Pending: the plate waits, printed, while someone decides.
        assert transitions.get_job(session, job.id).state is JobState.PRINTED


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda ms: ms[:-1], "has no result for check"),
        (lambda ms: [*ms, Measurement(99, "width", value=181.0)], "sample numbers go from 1"),
        (lambda ms: [*ms[:-1], Measurement(5, "ifu", ok=True)], "needs the version"),
        (lambda ms: [*ms[1:], Measurement(1, "width")], "needs a measured value"),
        (lambda ms: [*ms, Measurement(1, "colour", ok=True)], "has no check colour"),
    ],
)
def test_incomplete_or_malformed_measurements_write_nothing(
    runtime: Runtime, world: World, change: Any, message: str
) -> None:
    with_plan(runtime, world)
    with runtime.db.session() as session:
        job = printed_job(session, world, copies=20)
    before = counts(runtime)
    with runtime.db.session() as session, pytest.raises(Invalid, match=message):
        inspections.record_inspection(
            session, job_ids=[job.id], actor=world.operator, measurements=change(all_pass(5))
        )
    assert counts(runtime) == before
    with runtime.db.session() as session:
        assert transitions.get_job(session, job.id).state is JobState.PRINTED


def test_a_typed_count_that_contradicts_the_measurements_is_refused(
    runtime: Runtime, world: World
) -> None:
    with_plan(runtime, world)
    with runtime.db.session() as session:
        job = printed_job(session, world, copies=20)
        with pytest.raises(Invalid, match="show 0 defective parts, not 2"):
            inspections.record_inspection(
                session,
                job_ids=[job.id],
                actor=world.operator,
                measurements=all_pass(5),
                defective_count=2,
            )


def test_rejected_lot_is_reprinted_and_its_parts_go_to_the_ledger(
    runtime: Runtime, world: World
) -> None:
    with runtime.db.session() as session:
        job = printed_job(session, world, copies=4)
        inspection = inspections.record_inspection(
            session,
            job_ids=[job.id],
            actor=world.operator,
            defective_count=1,
            cause="layer shift",
            idempotency_key="tablet-42-submission-1",
        )
        assert inspection.verdict is Verdict.REJECTED
        job = transitions.get_job(session, job.id)
        assert (job.state, job.attempt) == (JobState.QUEUED, 2)
        waste = session.scalars(select(WasteEntry).where(WasteEntry.job_id == job.id)).all()
        assert [(w.kind, w.mass_g, w.estimated) for w in waste] == [
            (WasteKind.REJECTED_PART, GRAMS_PER_COPY * 4, True)
        ]
        nc = inspections.non_conformity_of(session, inspection.id)
        assert nc is not None
        assert nc.disposition == "reprint"
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.entity_id == str(job.id))
        ).all()
        assert actions[-2:] == ["job.rejected", "job.requeued"]
    before = counts(runtime)
    with runtime.db.session() as session:
        # The tablet retries after losing the answer: the same inspection, nothing new.
        again = inspections.record_inspection(
            session,
            job_ids=[job.id],
            actor=world.operator,
            defective_count=1,
            idempotency_key="tablet-42-submission-1",
        )
    assert again.id == inspection.id
    assert counts(runtime) == before


def test_a_lot_of_several_plates_is_sampled_as_one(runtime: Runtime, world: World) -> None:
    with runtime.db.session() as session:
        jobs = [printed_job(session, world, copies=20) for _ in range(3)]
        inspection = inspections.record_inspection(
            session, job_ids=[j.id for j in jobs], actor=world.operator, defective_count=1
        )
        # 60 parts: letter E, AQL 2.5 -> n=20, Ac=1.
        assert (inspection.lot_size, inspection.code_letter, inspection.sample_size) == (
            60,
            "E",
            20,
        )
        assert inspection.verdict is Verdict.PASSED
        assert {transitions.get_job(session, j.id).state for j in jobs} == {JobState.PASSED}
        assert {item["job_id"] for item in inspection.sample} <= {str(j.id) for j in jobs}
        assert len(inspections.find_inspections(session, job_id=jobs[2].id)) == 1


def test_a_lot_is_one_site_and_one_design(runtime: Runtime, world: World) -> None:
    with runtime.db.session() as session:
        here = printed_job(session, world)
        there = printed_job(session, world, printer=world.other_printer)
        with pytest.raises(Invalid, match="one site"):
            inspections.record_inspection(
                session, job_ids=[here.id, there.id], actor=world.admin, defective_count=0
            )
        with pytest.raises(Invalid, match="twice"):
            inspections.record_inspection(
                session, job_ids=[here.id, here.id], actor=world.operator, defective_count=0
            )


def test_who_may_inspect(runtime: Runtime, world: World) -> None:
    with runtime.db.session() as session:
        job = printed_job(session, world)
    before = counts(runtime)
    with runtime.db.session() as session:
        with pytest.raises(NotFound):  # another site's plate looks missing
            inspections.record_inspection(
                session, job_ids=[job.id], actor=world.other_operator, defective_count=0
            )
        with pytest.raises(Forbidden):
            inspections.record_inspection(
                session, job_ids=[job.id], actor=world.auditor, defective_count=0
            )
        with pytest.raises(Forbidden):
            inspections.record_inspection(
                session, job_ids=[job.id], actor=world.coordinator, defective_count=0
            )
    assert counts(runtime) == before


def test_rejections_switch_to_tightened_then_back_to_normal(runtime: Runtime, world: World) -> None:
    def inspect(defective: int) -> Inspection:
        with runtime.db.session() as session:
            job = printed_job(session, world, copies=20)
            return inspections.record_inspection(
                session, job_ids=[job.id], actor=world.operator, defective_count=defective
            )

    assert inspect(1).severity == "normal"  # n=5, Ac=0: rejected
    assert inspect(0).severity == "normal"
    second = inspect(1)
    assert second.verdict is Verdict.REJECTED
    tightened = [inspect(0) for _ in range(5)]
    # Lot of 20, letter C, AQL 2.5 tightened: the arrow leads to D, n=8.
    assert {(i.severity, i.sample_size) for i in tightened} == {("tightened", 8)}
    assert inspect(0).severity == "normal"


def test_five_rejections_on_tightened_discontinue_sampling(runtime: Runtime, world: World) -> None:
    def inspect(defective: int) -> None:
        with runtime.db.session() as session:
            job = printed_job(session, world, copies=4)
            inspections.record_inspection(
                session, job_ids=[job.id], actor=world.operator, defective_count=defective
            )

    for _ in range(2 + 5):
        inspect(1)
    with runtime.db.session() as session:
        job = printed_job(session, world, copies=4)
    with runtime.db.session() as session, pytest.raises(Conflict, match="discontinued"):
        inspections.record_inspection(
            session, job_ids=[job.id], actor=world.operator, defective_count=0
        )
    with runtime.db.session() as session:
        with pytest.raises(Forbidden):
            inspections.resume_sampling(
                session,
                design_version_id=world.version.id,
                site_id=world.site.id,
                corrective_action="new nozzle",
                actor=world.operator,
            )
        inspections.resume_sampling(
            session,
            design_version_id=world.version.id,
            site_id=world.site.id,
            corrective_action="nozzle replaced, bed levelled, first layer checked",
            actor=world.coordinator,
        )
        resumed = inspections.record_inspection(
            session, job_ids=[job.id], actor=world.operator, defective_count=0
        )
        assert resumed.severity == "tightened"


def test_use_as_is_needs_a_coordinator_other_than_the_inspector(
    runtime: Runtime, world: World
) -> None:
    with runtime.db.session() as session:
        job = printed_job(session, world)
        inspection = inspections.record_inspection(
            session,
            job_ids=[job.id],
            actor=world.operator,
            defective_count=1,
            cause="cosmetic stringing",
            disposition=Disposition.PENDING,
        )
        nc = inspections.non_conformity_of(session, inspection.id)
        assert nc is not None
        nc_id = nc.id
    with runtime.db.session() as session:
        with pytest.raises(NotFound):
            nonconformities.decide(
                session, nc_id=nc_id, disposition=Disposition.SCRAP, actor=world.other_operator
            )
        with pytest.raises(Conflict, match="decide"):
            nonconformities.close(session, nc_id=nc_id, actor=world.operator, note="done")
        nonconformities.decide(
            session, nc_id=nc_id, disposition=Disposition.USE_AS_IS, actor=world.operator
        )
        with pytest.raises(Forbidden):
            nonconformities.approve_concession(session, nc_id=nc_id, actor=world.operator)
        with pytest.raises(Forbidden):
            nonconformities.approve_concession(session, nc_id=nc_id, actor=world.auditor)
        approved = nonconformities.approve_concession(
            session, nc_id=nc_id, actor=world.coordinator, note="stringing only, no sharp edge"
        )
        assert approved.approved_at is not None
        assert transitions.get_job(session, job.id).state is JobState.PASSED
        with pytest.raises(Conflict):
            nonconformities.decide(
                session, nc_id=nc_id, disposition=Disposition.SCRAP, actor=world.coordinator
            )
        closed = nonconformities.close(
            session, nc_id=nc_id, actor=world.operator, note="retention strip re-tuned"
        )
        assert closed.status == "closed"
        # Waste is only for reprinted or scrapped lots.
        assert not session.scalars(select(WasteEntry).where(WasteEntry.job_id == job.id)).all()


def test_scrap_sends_the_lot_to_waste_without_a_reprint(runtime: Runtime, world: World) -> None:
    with runtime.db.session() as session:
        job = printed_job(session, world)
        inspections.record_inspection(
            session,
            job_ids=[job.id],
            actor=world.operator,
            defective_count=2,
            disposition=Disposition.SCRAP,
        )
        job = transitions.get_job(session, job.id)
        assert (job.state, job.attempt) == (JobState.CANCELLED, 1)  # scrapped for good, no reprint
        kinds = session.scalars(select(WasteEntry.kind).where(WasteEntry.job_id == job.id)).all()
        assert kinds == [WasteKind.REJECTED_PART]


def test_plans_are_revised_not_edited(runtime: Runtime, world: World) -> None:
    with_plan(runtime, world)
    with runtime.db.session() as session:
        same = plans.revise_plan(
            session,
            design_version_id=world.version.id,
            actor=world.coordinator,
            standard="EN 166:2001",
            standard_note="French adapted procedure, note of 30 April 2020",
            checks=CHECKS,
            aql=2.5,
        )
        assert same.revision == 1
        second = plans.revise_plan(
            session,
            design_version_id=world.version.id,
            actor=world.coordinator,
            standard="EN 166:2001",
            checks=CHECKS[:2],
            aql=4.0,
        )
        assert second.revision == 2
        assert [p.revision for p in plans.find_plans(session, world.version.id)] == [1, 2]
        for bad, message in (
            ([{"key": "w", "kind": "dimensional"}], "nominal_mm"),
            ([{"key": "m", "kind": "marking"}], "expected"),
            ([{"key": "x", "kind": "smell"}], "kind must be one of"),
            ([{"key": "a", "kind": "visual"}, {"key": "a", "kind": "visual"}], "twice"),
        ):
            with pytest.raises(Invalid, match=message):
                plans.revise_plan(
                    session,
                    design_version_id=world.version.id,
                    actor=world.coordinator,
                    standard="EN 166",
                    checks=bad,
                )
        with pytest.raises(Forbidden):
            plans.revise_plan(
                session,
                design_version_id=world.version.id,
                actor=world.operator,
                standard="EN 166",
                checks=[],
            )
