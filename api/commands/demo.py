"""``distrifab demo``: the whole flow in about a minute, in the terminal, with simulated printers.

A coordinator posts two needs for the hospital; the engine slices and plans
them across three sites; simulated operators accept, take prints off the bed,
inspect and deliver; the audit trail is verified at the end. Everything runs
through the same use cases and background tasks as the real service.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from core.i18n import _

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.identity import Actor
    from core.runtime import Runtime
    from scheduler.models import Need

out = Console(highlight=False)


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        data_dir: Annotated[
            Path | None,
            typer.Option(help="Keep the demo's database here (default: a temporary folder)"),
        ] = None,
        time_scale: Annotated[float, typer.Option(help="Simulated printing speed-up")] = 600.0,
        headbands: Annotated[int, typer.Option(help="Face-shield headbands to order")] = 12,
        timeout_s: Annotated[float, typer.Option(help="Give up after this many seconds")] = 300.0,
    ) -> None:
        """Run the whole story with simulated printers and show it as it happens."""
        from api.app import build_background
        from api.bootstrap import prepare_database
        from api.demo import DEMO_PRINTER_COUNT, DEMO_SEED, build_demo_network
        from core.audit import verify_chain
        from core.celery_app import set_local_runner
        from core.clock import utcnow
        from core.logs import configure_logging
        from core.runtime import Runtime, set_runtime
        from core.settings import Settings
        from printers.simulator.fleet import DEMO_PROFILES, SimulatedFleet, serve_in_thread
        from scheduler import service as scheduler

        configure_logging(json_output=False, level="WARNING")
        folder = data_dir or Path(tempfile.mkdtemp(prefix="distrifab-demo-"))
        settings = Settings(
            data_dir=folder,
            database_url="",
            redis_url=None,
            poll_interval_s=1.0,
            replan_debounce_s=0.5,
            replan_time_limit_s=2.0,
        )
        runtime = Runtime.from_settings(settings)
        set_runtime(runtime)
        prepare_database(runtime)
        fleet = SimulatedFleet(
            DEMO_PRINTER_COUNT, seed=DEMO_SEED, time_scale=time_scale, profiles=DEMO_PROFILES
        )
        with serve_in_thread(fleet) as simulator:
            out.print(
                _(
                    "Building the Oise demo network: 3 sites, {count} simulated printers, 1 hospital...",
                    count=DEMO_PRINTER_COUNT,
                )
            )
            network = build_demo_network(runtime, simulator)
            runner = build_background(runtime)
            set_local_runner(runner)
            runner.start()
            try:
                from core.identity import Actor, Role

                coordinator = Actor(user_id=None, username="coordinator", role=Role.COORDINATOR)
                with runtime.db.session() as session:
                    parts = list(network.part_ids.values())
                    scheduler.post_need(
                        session,
                        part_id=parts[0],
                        quantity=headbands,
                        due_at=utcnow() + timedelta(days=1),
                        delivery_point_id=network.hospital_id,
                        priority=5,
                        actor=coordinator,
                    )
                    scheduler.post_need(
                        session,
                        part_id=parts[1],
                        quantity=20,
                        due_at=utcnow() + timedelta(days=3),
                        delivery_point_id=network.hospital_id,
                        priority=2,
                        actor=coordinator,
                    )
                from catalog.tasks import request_slicing

                request_slicing()
                out.print(_("Two needs posted by the coordinator; slicing and planning..."))
                delivered = _run_story(runtime, network.site_ids, timeout_s=timeout_s)
            finally:
                runner.stop(wait=False)
                set_local_runner(None)
            with runtime.db.session() as session:
                report = verify_chain(session)
        out.print(
            _(
                "Audit trail: {count} entries, chain intact: {ok}.",
                count=report.entries,
                ok=report.ok,
            )
        )
        out.print(_("Demo data kept in {folder}", folder=folder))
        if not delivered:
            raise typer.Exit(code=1)


def _run_story(runtime: Runtime, site_ids: Mapping[str, UUID], *, timeout_s: float) -> bool:
    """Play the operators until every need is delivered; True when it is."""
    from core.identity import Actor, Role
    from printers import service as printers
    from quality import service as quality
    from scheduler import service as scheduler
    from scheduler.models import JobState, NeedStatus

    operators = {
        site_id: Actor(
            user_id=None,
            username=f"operator@{name}",
            role=Role.OPERATOR,
            site_ids=frozenset({site_id}),
        )
        for name, site_id in site_ids.items()
    }
    coordinator = Actor(user_id=None, username="coordinator", role=Role.COORDINATOR)
    started = time.monotonic()
    with Live(console=out, refresh_per_second=4) as live:
        while time.monotonic() - started < timeout_s:
            with runtime.db.session() as session:
                needs = scheduler.find_needs(session)
                for job in [j for n in needs for j in n.jobs]:
                    actor = operators.get(job.site_id) if job.site_id else None
                    if actor is None:
                        continue
                    if job.state is JobState.PLANNED:
                        printers.accept_job(session, job_id=job.id, actor=actor)
                        from core.celery_app import enqueue
                        from printers.tasks import dispatch_job

                        enqueue(dispatch_job, str(job.id))
                    elif job.state is JobState.PRINTED:
                        _inspect(session, job.id, actor)
                for printer in printers.find_printers(session, actor=coordinator):
                    if printer.needs_clearing:
                        printers.mark_removed(
                            session, printer_id=printer.id, actor=operators[printer.site_id]
                        )
                for need in scheduler.find_needs(session):
                    if (
                        need.status is NeedStatus.OPEN
                        and any(j.state is JobState.PASSED for j in need.jobs)
                        and all(j.state in (JobState.PASSED, JobState.DELIVERED) for j in need.jobs)
                    ):
                        quality.deliver_need(
                            session, need_id=need.id, actor=coordinator, recipient="Pharmacie du CH"
                        )
                needs = scheduler.find_needs(session)
                live.update(_render(needs, time.monotonic() - started))
                if needs and all(n.status is NeedStatus.DELIVERED for n in needs):
                    return True
            time.sleep(0.5)
    return False


def _inspect(session: Session, job_id: UUID, actor: Actor) -> None:
    """The operator measures the sample the plan asks for; every part conforms here."""
    from quality.inspections import Measurement, inspection_plan, record_inspection
    from quality.plans import CheckKind

    lot = inspection_plan(session, job_ids=[job_id], actor=actor)
    measured = []
    for item in lot.sample:
        for check in lot.checks:
            if check.kind is CheckKind.DIMENSIONAL:
                measured.append(Measurement(item.number, check.key, value=check.nominal_mm))
            elif check.kind in (CheckKind.MARKING, CheckKind.IFU):
                measured.append(Measurement(item.number, check.key, text=check.expected, ok=True))
            else:
                measured.append(Measurement(item.number, check.key, ok=True))
    record_inspection(session, job_ids=[job_id], actor=actor, measurements=measured)


def _render(needs: Sequence[Need], elapsed_s: float) -> Group:
    from scheduler.models import JobState
    from scheduler.service import need_progress

    table = Table(title=_("Needs ({seconds:.0f} s)", seconds=elapsed_s))
    for column in (
        _("Part"),
        _("Qty"),
        _("Queued"),
        _("Planned"),
        _("Printing"),
        _("Printed"),
        _("Passed"),
        _("Delivered"),
    ):
        table.add_column(column)
    for need in needs:
        p = need_progress(need)
        table.add_row(
            need.part.name,
            str(p.quantity),
            str(p.queued),
            str(p.planned),
            str(p.in_progress),
            str(p.printed),
            str(p.passed),
            str(p.delivered),
        )
    printing = Table(title=_("Jobs on printers"))
    for column in (_("Plate"), _("State"), _("Printer")):
        printing.add_column(column)
    for need in needs:
        for job in need.jobs:
            if job.state in (JobState.ACCEPTED, JobState.DISPATCHED, JobState.PRINTING):
                printing.add_row(
                    f"{need.part.name[:20]} #{job.index}",
                    job.state.value,
                    job.printer.name if job.printer else "-",
                )
    return Group(table, printing)
