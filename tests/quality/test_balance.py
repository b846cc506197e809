"""The mass balance closes: on generated histories the unexplained difference is exactly the
filament still on the spools; per-site rows add up to the totals; periods add up."""

from __future__ import annotations

from contextlib import suppress
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.clock import utcnow
from core.errors import Conflict
from core.runtime import Runtime
from quality import balance as mass
from quality import costs, deliveries, inspections, recycling, waste
from quality.balance import Flow, Movement, balance
from quality.models import Disposition, WasteKind
from tests.quality.support import GRAMS_PER_COPY, make_lot, make_world, printed_job

T0 = datetime(2026, 3, 1, tzinfo=UTC)
SITES = [uuid4(), uuid4(), None]

movement = st.builds(
    Movement,
    flow=st.sampled_from(list(Flow)),
    material=st.sampled_from(["PLA", "PETG", "ABS"]),
    site_id=st.sampled_from(SITES),
    at=st.integers(min_value=0, max_value=30 * 24).map(lambda h: T0 + timedelta(hours=h)),
    mass_g=st.integers(min_value=0, max_value=5000).map(float),
    kind=st.sampled_from(list(WasteKind)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(movement, max_size=60), st.integers(min_value=1, max_value=30 * 24 - 1))
def test_rows_add_up_to_totals_and_periods_add_up(moves: list[Movement], split_h: int) -> None:
    end = T0 + timedelta(days=31)
    middle = T0 + timedelta(hours=split_h)
    whole = balance(moves, since=T0, until=end)
    fields = ("received_g", "recycled_back_g", "delivered_g", "in_stock_g", "wasted_g")
    for total in whole.totals:
        rows = [r for r in whole.rows if r.material == total.material]
        for name in (*fields, "unexplained_g", "sent_to_recycling_g"):
            assert abs(getattr(total, name) - sum(getattr(r, name) for r in rows)) < 1e-6
    first = balance(moves, since=T0, until=middle)
    second = balance(moves, since=middle, until=end)
    for row in whole.rows:
        parts = [
            r
            for r in (*first.rows, *second.rows)
            if (r.material, r.site_id) == (row.material, row.site_id)
        ]
        assert abs(row.unexplained_g - sum(r.unexplained_g for r in parts)) < 1e-6
        for kind in WasteKind:
            assert abs(row.waste_g[kind] - sum(r.waste_g[kind] for r in parts)) < 1e-6


# One step of a site's life: what happens, and a size.
step = st.one_of(
    st.tuples(st.just("receive"), st.integers(min_value=100, max_value=2000)),
    st.tuples(st.just("pass"), st.integers(min_value=1, max_value=6)),
    st.tuples(st.just("reject"), st.integers(min_value=1, max_value=6)),
    st.tuples(st.just("fail"), st.integers(min_value=1, max_value=99)),
    st.tuples(st.just("support"), st.integers(min_value=1, max_value=40)),
    st.tuples(st.just("spool_end"), st.integers(min_value=1, max_value=60)),
    st.tuples(st.just("deliver"), st.just(0)),
    st.tuples(st.just("recycle"), st.integers(min_value=0, max_value=100)),
)


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(step, min_size=1, max_size=12))
def test_the_balance_closes_on_generated_histories(
    runtime: Runtime, steps: list[tuple[str, int]]
) -> None:
    """Each example builds its own sites, so earlier examples' records do not count."""
    since = utcnow() - timedelta(minutes=1)
    with runtime.db.session() as session:
        world = make_world(session)
        received = world.lot.received_mass_g
        consumed = 0.0
        recycled_back = 0.0
        wasted = 0.0
        last_job: UUID | None = None
        for action, size in steps:
            if action == "receive":
                make_lot(session, site=world.site, mass_g=float(size))
                session.commit()
                received += size
            elif action in ("pass", "reject"):
                job = printed_job(session, world, copies=size)
                inspections.record_inspection(
                    session,
                    job_ids=[job.id],
                    actor=world.operator,
                    defective_count=0 if action == "pass" else 1,
                    disposition=Disposition.REPRINT,
                )
                consumed += GRAMS_PER_COPY * size
                wasted += GRAMS_PER_COPY * size if action == "reject" else 0.0
                last_job = job.id
            elif action == "fail":
                job = printed_job(session, world, copies=4, fail_at_pct=float(size))
                from sqlalchemy import select

                from scheduler.models import PrintRun

                run = session.scalars(select(PrintRun).where(PrintRun.job_id == job.id)).one()
                entry = waste.record_failed_print_waste(
                    session, run=run, job=job, progress_pct=float(size), actor=world.admin
                )
                session.commit()
                grams = round(GRAMS_PER_COPY * 4 * size / 100, 2)
                assert entry is not None
                assert entry.mass_g == grams
                consumed += grams
                wasted += grams
            elif action == "support" and last_job is not None:
                waste.record_waste(
                    session,
                    material_key="PLA",
                    mass_g=float(size),
                    kind=WasteKind.SUPPORT_AND_BRIM,
                    site_id=world.site.id,
                    job_id=last_job,
                    actor=world.operator,
                )
                wasted += size  # out of the printed mass, not out of the spool
            elif action == "spool_end":
                waste.record_waste(
                    session,
                    material_key="PLA",
                    mass_g=float(size),
                    kind=WasteKind.SPOOL_END,
                    site_id=world.site.id,
                    actor=world.operator,
                )
                consumed += size
                wasted += size
            elif action == "deliver":
                with suppress(Conflict):  # nothing passed yet
                    deliveries.deliver_need(session, need_id=world.need.id, actor=world.coordinator)
            elif action == "recycle":
                entries = waste.find_waste(
                    session, actor=world.operator, site_id=world.site.id, unbatched=True
                )
                if entries:
                    batch = recycling.create_batch(
                        session, material_key="PLA", site_id=world.site.id, actor=world.operator
                    )
                    batch = recycling.add_entries(
                        session,
                        batch_id=batch.id,
                        entry_ids=[e.id for e in entries],
                        actor=world.operator,
                    )
                    recycling.send_batch(session, batch_id=batch.id, actor=world.operator)
                    back = round(batch.total_mass_g * size / 100, 2)
                    recycling.record_return(
                        session,
                        batch_id=batch.id,
                        returned_mass_g=back,
                        actor=world.operator,
                        lot_code=f"C2-{uuid4().hex[:8]}",
                    )
                    recycled_back += back
        report = mass.mass_balance(
            session,
            actor=world.auditor,
            since=since,
            until=utcnow() + timedelta(minutes=1),
            site_id=world.site.id,
        )
    [row] = report.rows
    remaining_on_spools = received + recycled_back - consumed
    assert abs(row.unexplained_g - remaining_on_spools) < 0.05
    assert abs(row.wasted_g - wasted) < 0.05
    assert abs(row.received_g - received) < 1e-6
    assert abs(row.recycled_back_g - recycled_back) < 1e-6
    assert row.sent_to_recycling_g >= row.recycled_back_g


def test_cost_of_quality_counts_scrap_and_reprints(runtime: Runtime) -> None:
    with runtime.db.session() as session:
        world = make_world(session)
        printed_job(session, world, copies=4, fail_at_pct=50.0)
        job = printed_job(session, world, copies=4)
        inspections.record_inspection(
            session, job_ids=[job.id], actor=world.operator, defective_count=1
        )
        from sqlalchemy import select

        from scheduler.models import PrintRun

        failed_run = session.scalars(
            select(PrintRun).where(PrintRun.progress_pct == 50.0, PrintRun.site_id == world.site.id)
        ).one()
        from scheduler import jobs as transitions

        failed_job = transitions.get_job(session, failed_run.job_id)
        waste.record_failed_print_waste(
            session, run=failed_run, job=failed_job, progress_pct=50.0, actor=world.admin
        )
        session.commit()
        report = costs.cost_of_quality(session, need_id=world.need.id, actor=world.auditor)
    assert report["failed_prints"] == 1
    assert report["lots_rejected"] == 1
    assert report["reprints"] == 2
    assert report["scrap_g"] == 50.0 + 100.0
    # PLA at the catalogue price; the failed attempt at half its sliced cost of 2.50 EUR.
    assert report["wasted_attempts_eur"] == "3.75"
    assert float(report["scrap_material_eur"]) > 0
