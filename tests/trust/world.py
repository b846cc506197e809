"""A small network with one object of every kind the routes act on, built through the
real use cases, for the access matrix and the schema fuzzing.

Two sites: A (``operator``'s) and B (``other_operator``'s). Every object a route
acts on belongs to site A, so ``other_operator`` is always the operator of one site
acting on another site's objects. Jobs sit in the states their routes need: one
planned (accept, refuse), one printing on a simulated printer (pause, resume,
cancel), one printed (inspect), passed and delivered ones (deliveries,
certificates), and non-conformities pending, used as is and decided.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import UUID

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog import service as catalog
from catalog.demo_parts import face_shield_headband
from catalog.models import SliceRecord, SpoolLot
from catalog.types import SliceSettings
from core.clock import utcnow
from core.identity import Actor, Role, create_user, issue_token
from core.runtime import Runtime
from printers.dispatch import dispatch_job, print_file_name
from printers.models import DriverKind, Printer
from printers.simulator.fleet import RunningSimulator
from quality import certificates, deliveries, inspections, recycling, waste
from quality.models import Disposition, Inspection, WasteKind
from scheduler import jobs as transitions
from scheduler.models import Job, PrintRun, RunOutcome
from scheduler.service import replan, slice_open_needs
from tests.factories import (
    ADMIN,
    make_delivery_point,
    make_need,
    make_part,
    make_printer,
    make_site,
    stl_bytes,
)

PASSWORD = "password-123"
ROLES = ("anonymous", "coordinator", "operator", "other_operator", "auditor", "admin")
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class World:
    runtime: Runtime
    simulator: RunningSimulator
    ids: dict[str, UUID] = field(default_factory=dict)
    usernames: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, dict[str, str]] = field(default_factory=dict)
    csrf: dict[str, str] = field(default_factory=dict)
    printing_file: str = ""
    printing_gcode: bytes = b""
    printing_printer: int = 2
    certificate: dict[str, Any] = field(default_factory=dict)

    def api_headers(self, role: str) -> dict[str, str]:
        token = self.tokens.get(role)
        return {"Authorization": f"Bearer {token}"} if token else {}

    def restart_print(self) -> None:
        """Put the simulated printer back to printing the job in flight (a cell before may
        have paused or cancelled it; the database is restored, the printer is not)."""
        address = self.simulator.address(self.printing_printer)
        headers = {"X-Api-Key": address.api_key}
        with httpx.Client(base_url=address.base_url, headers=headers, timeout=5) as client:
            client.post("/_sim/reset", json={}).raise_for_status()
            client.post(
                "/api/files/local",
                files={"file": (self.printing_file, self.printing_gcode)},
                data={"select": "true", "print": "true"},
            ).raise_for_status()


def _slice_for(session: Session, job: Job, printer: Printer) -> SliceRecord:
    found = catalog.find_slice(
        session,
        version_id=job.design_version_id,
        profile_key=printer.profile_key,
        material_key=job.material_key,
        copies=job.copies,
        settings=SliceSettings(copies=job.copies),
    )
    assert found is not None, "slice_open_needs should have sliced every job"
    return found


def plan_on(session: Session, job: Job, printer: Printer) -> SliceRecord:
    record = _slice_for(session, job, printer)
    now = utcnow()
    transitions.plan(
        session,
        job,
        printer_id=printer.id,
        site_id=printer.site_id,
        start_at=now + timedelta(hours=1),
        end_at=now + timedelta(hours=2),
        delivery_at=now + timedelta(hours=3),
        slice_id=record.id,
        gcode_hash=record.gcode_hash,
        actor=ADMIN,
    )
    return record


def _printed(session: Session, job: Job, printer: Printer, operator: Actor) -> None:
    """Drive a job to printed through the state machine, with its finished run (no printer
    needed: these plates are history by the time the matrix runs)."""
    record = plan_on(session, job, printer)
    transitions.accept(session, job, actor=operator)
    run = PrintRun(
        job_id=job.id,
        attempt=job.attempt,
        printer_id=printer.id,
        site_id=printer.site_id,
        operator_id=operator.user_id,
        material_key=job.material_key,
        gcode_hash=record.gcode_hash,
        file_name=print_file_name(job),
        filament_g=record.filament_g,
        dispatched_at=utcnow() - timedelta(hours=1),
        started_at=utcnow() - timedelta(hours=1),
        ended_at=utcnow(),
        outcome=RunOutcome.DONE,
        progress_pct=100.0,
    )
    session.add(run)
    session.flush()
    transitions.dispatch(session, job, actor=ADMIN, run_id=run.id, file_name=run.file_name)
    transitions.start_printing(session, job, actor=ADMIN)
    transitions.printed(session, job, actor=ADMIN)
    session.commit()


def _inspect(
    session: Session, job: Job, operator: Actor, *, defective: int, disposition: Disposition
) -> UUID:
    inspection = inspections.record_inspection(
        session,
        job_ids=[job.id],
        actor=operator,
        defective_count=defective,
        cause="cracked" if defective else "",
        disposition=disposition,
    )
    return inspection.id


def build_world(runtime: Runtime, simulator: RunningSimulator) -> World:
    world = World(runtime=runtime, simulator=simulator)
    ids = world.ids
    for address in simulator.addresses():  # idle and empty, whatever an earlier world did
        httpx.post(
            f"{address.base_url}/_sim/reset", headers={"X-Api-Key": address.api_key}
        ).raise_for_status()
    with runtime.db.session() as session:
        site = make_site(session, name="Fablab A")
        other = make_site(session, name="Fablab B")
        point = make_delivery_point(session, name="CH Compiègne")
        users: dict[str, Any] = {}
        for role, kind, sites in (
            ("coordinator", Role.COORDINATOR, ()),
            ("operator", Role.OPERATOR, (site,)),
            ("other_operator", Role.OPERATOR, (other,)),
            ("auditor", Role.AUDITOR, ()),
            ("admin", Role.ADMIN, ()),
        ):
            users[role] = create_user(
                session, username=role.replace("_", "-"), password=PASSWORD, role=kind, sites=sites
            )
            world.usernames[role] = users[role].username
        session.commit()
        actors = {role: Actor.of(user) for role, user in users.items()}
        for role, user in users.items():
            world.tokens[role], _row = issue_token(session, user, ttl=timedelta(days=1))
        session.commit()
        part, version = make_part(runtime, session, face_shield_headband(height_mm=0.6))
        draft = catalog.add_design_version(
            session,
            runtime.store,
            part_id=part.id,
            model=stl_bytes(face_shield_headband(height_mm=0.9)),
            file_name="headband-v2.stl",
            actor=ADMIN,
            max_upload_bytes=runtime.settings.max_upload_bytes,
        )
        printers = {}
        for name, owner, number in (("A1", site, 1), ("A2", site, 2), ("B1", other, 3)):
            address = simulator.address(number)
            printers[name] = make_printer(
                runtime,
                session,
                owner,
                base_url=address.base_url,
                api_key=address.api_key,
                driver=DriverKind.SIMULATOR,
            )
        needs = {
            name: make_need(session, part, point, quantity=1)
            for name in (
                "planned",
                "printing",
                "printed",
                "passed",
                "delivered",
                "pending",
                "as_is",
                "reprint",
            )
        }
        session.commit()
        ids.update(
            site=site.id,
            other_site=other.id,
            point=point.id,
            part=part.id,
            version=version.id,
            draft=draft.id,
            printer=printers["A1"].id,
            printer_b=printers["B1"].id,
            printing_printer=printers["A2"].id,
            user=users["operator"].id,
            need=needs["planned"].id,
            need_passed=needs["passed"].id,
        )
    slice_open_needs(runtime.db, runtime.store)
    # A plan record for GET /plans/latest; the jobs are then placed where each route needs.
    replan(runtime.db, trigger="test", time_limit_s=1.0, horizon_days=7, method="greedy")
    with runtime.db.session() as session:
        jobs = {
            name: session.scalars(select(Job).where(Job.need_id == need.id)).one()
            for name, need in needs.items()
        }
        a1, a2 = (session.get(Printer, printers[n].id) for n in ("A1", "A2"))
        assert a1 is not None
        assert a2 is not None
        operator = actors["operator"]
        plan_on(session, jobs["planned"], a1)
        record = plan_on(session, jobs["printing"], a2)
        transitions.accept(session, jobs["printing"], actor=operator)
        session.commit()
        world.printing_gcode = runtime.store.get(record.gcode_hash)
        world.printing_file = print_file_name(jobs["printing"])
        for name in ("printed", "passed", "delivered", "pending", "as_is", "reprint"):
            _printed(session, jobs[name], a1, operator)
        _inspect(session, jobs["passed"], operator, defective=0, disposition=Disposition.REPRINT)
        _inspect(session, jobs["delivered"], operator, defective=0, disposition=Disposition.REPRINT)
        for name, disposition in (
            ("pending", Disposition.PENDING),
            ("as_is", Disposition.USE_AS_IS),
            ("reprint", Disposition.REPRINT),
        ):
            inspection_id = _inspect(
                session, jobs[name], operator, defective=1, disposition=disposition
            )
            nc = inspections.non_conformity_of(session, inspection_id)
            assert nc is not None
            ids[f"nc_{name}"] = nc.id
        delivery = deliveries.deliver_need(
            session, need_id=needs["delivered"].id, actor=operator, recipient="Pharmacie"
        )
        world.certificate = json.loads(
            certificates.get_certificate(
                session, delivery_id=delivery.id, actor=operator
            ).content_json
        )
        entries = [
            waste.record_waste(
                session,
                material_key="PLA",
                mass_g=40.0,
                kind=WasteKind.SUPPORT_AND_BRIM,
                site_id=site_id,
                actor=operator,
            )
            for site_id in (ids["site"], ids["site"], ids["site"])
        ]
        batch = recycling.create_batch(
            session, material_key="PLA", actor=operator, site_id=ids["site"]
        )
        sent = recycling.create_batch(
            session, material_key="PLA", actor=operator, site_id=ids["site"]
        )
        recycling.add_entries(session, batch_id=batch.id, entry_ids=[entries[1].id], actor=operator)
        recycling.add_entries(session, batch_id=sent.id, entry_ids=[entries[2].id], actor=operator)
        recycling.send_batch(session, batch_id=sent.id, actor=operator)
        lot = session.scalars(select(SpoolLot)).first()
        ids.update(
            job_planned=jobs["planned"].id,
            job_printing=jobs["printing"].id,
            job_printed=jobs["printed"].id,
            job_passed=jobs["passed"].id,
            delivery=delivery.id,
            inspection=session.scalars(
                select(Inspection).where(Inspection.job_id == jobs["passed"].id)
            )
            .one()
            .id,
            waste=entries[0].id,
            batch=batch.id,
            batch_sent=sent.id,
        )
        if lot is not None:
            ids["lot"] = lot.id
        session.commit()
    # The print in flight is real: dispatched to the simulator through the use case.
    outcome = dispatch_job(
        runtime.db,
        runtime.store,
        job_id=ids["job_printing"],
        secret_key=runtime.secret_key,
        timeout_s=5.0,
    )
    assert outcome.value == "started", outcome
    return world


def sign_in_pages(world: World, client: TestClient) -> None:
    """A cookie session (and its CSRF token) per role, through the login page itself."""
    for role, username in world.usernames.items():
        client.cookies.clear()
        page = client.get("/login")
        token = CSRF_INPUT.search(page.text)
        assert token is not None, "the login page has no CSRF field"
        answer = client.post(
            "/login",
            data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)},
            follow_redirects=False,
        )
        assert answer.status_code == 303, (role, answer.status_code, answer.text[:300])
        world.cookies[role] = dict(client.cookies)
        home = client.get("/sites")
        found = CSRF_INPUT.search(home.text)
        assert found is not None, f"no CSRF field on /sites for {role}"
        world.csrf[role] = found.group(1)
    client.cookies.clear()
    # An anonymous visitor has a session too (the login page gave it one), without a user.
    client.get("/login")
    world.cookies["anonymous"] = dict(client.cookies)
    found = CSRF_INPUT.search(client.get("/login").text)
    world.csrf["anonymous"] = found.group(1) if found else ""
    client.cookies.clear()


def new_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"
