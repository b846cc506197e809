"""The stage of the fault drills: distrifab distributed over real processes (API, Celery
worker and beat) on a private PostgreSQL and Redis, printers behind a recording relay,
and the consistency check every drill ends with."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import httpx
from sqlalchemy import func, select

from catalog.demo_parts import face_shield_headband
from catalog.service import seed_reference_data
from core.audit import AuditEntry, verify_chain
from core.identity import Role, create_user
from core.migrate import upgrade
from core.runtime import Runtime, set_runtime
from printers.models import DriverKind, Printer
from printers.simulator.fleet import RunningSimulator
from quality.models import WasteEntry
from scheduler.models import Job, JobState, Need, PrintRun, RunOutcome
from scheduler.service import slice_open_needs
from tests import waiting
from tests.factories import make_delivery_point, make_need, make_part, make_printer, make_site
from tests.fixtures.database import TEST_SECRET, make_settings
from tests.fixtures.services import (
    ApiProcess,
    ManagedProcess,
    PostgresServer,
    Processes,
    RedisServer,
    distrifab_env,
)
from tests.trust.wire import Relay
from tests.trust.world import plan_on

T = TypeVar("T")
PASSWORD = "password-123"
ACTIVE = (RunOutcome.DISPATCHED, RunOutcome.PRINTING)
SETTINGS: dict[str, object] = {
    "poll_interval_s": 0.5,
    # Generous enough that a busy 2-core machine does not take a slow answer for a vanished
    # printer (which sends its planned plates elsewhere), short enough for the drills.
    "printer_timeout_s": 3.0,
    "offline_after_misses": 3,
    "replan_debounce_s": 0,
    "replan_time_limit_s": 1,
    "replan_min_interval_s": 0,
}


def wait_until(check: Callable[[], T | None], *, timeout_s: float, what: str) -> T:
    """Waits through a process or server that is still coming back."""
    return waiting.wait_until(
        check, timeout_s=timeout_s, what=what, tolerate=(httpx.HTTPError, OSError)
    )


@dataclass
class Stage:
    runtime: Runtime
    env: dict[str, str]
    processes: Processes
    postgres: PostgresServer
    redis: RedisServer
    relay: Relay
    relay_url: str
    simulator: RunningSimulator
    printer_ids: list[UUID] = field(default_factory=list)
    printer_numbers: dict[UUID, int] = field(default_factory=dict)
    job_ids: list[UUID] = field(default_factory=list)
    operator: str = ""
    coordinator: str = ""
    part_id: UUID | None = None
    point_id: UUID | None = None
    api: ApiProcess | None = None
    worker: ManagedProcess | None = None
    beat: ManagedProcess | None = None
    tokens: list[str] = field(default_factory=list)

    # --- the processes
    def start(self, *, api: bool = True, worker: bool = True, beat: bool = True) -> None:
        if worker:
            self.worker = self.processes.worker(self.env)
        if beat:
            self.beat = self.processes.beat(self.env)
        if api:
            self.api = self.processes.api(self.env)

    def token(self, username: str) -> dict[str, str]:
        assert self.api is not None
        answer = httpx.post(
            f"{self.api.base_url}/api/v1/auth/token",
            json={"username": username, "password": PASSWORD},
            timeout=30,
        )
        assert answer.status_code == 201, answer.text
        self.tokens.append(f"Bearer {answer.json()['access_token']}")
        return {"Authorization": self.tokens[-1]}

    def accept_all(self) -> None:
        assert self.api is not None
        headers = self.token(self.operator)
        for job_id in self.job_ids:
            answer = httpx.post(
                f"{self.api.base_url}/api/v1/jobs/{job_id}/accept", headers=headers, timeout=30
            )
            assert answer.status_code == 200, answer.text

    # --- reading the records
    def jobs(self) -> dict[UUID, Job]:
        with self.runtime.db.session() as session:
            return {j.id: j for j in session.scalars(select(Job).where(Job.id.in_(self.job_ids)))}

    def states(self) -> dict[UUID, JobState]:
        return {job_id: job.state for job_id, job in self.jobs().items()}

    def wait_states(self, wanted: set[JobState], *, timeout_s: float = 120) -> None:
        wait_until(
            lambda: all(s in wanted for s in self.states().values()),
            timeout_s=timeout_s,
            what=f"every job in {sorted(s.value for s in wanted)}: {self.states()}",
        )

    def counts(self) -> dict[str, int]:
        with self.runtime.db.session() as session:
            return {
                "needs": session.scalar(select(func.count(Need.id))) or 0,
                "jobs": session.scalar(select(func.count(Job.id))) or 0,
                "runs": session.scalar(select(func.count(PrintRun.id))) or 0,
                "waste": session.scalar(select(func.count(WasteEntry.id))) or 0,
                "audit": session.scalar(select(func.count(AuditEntry.seq))) or 0,
            }

    def printer_job(self, printer_id: UUID) -> dict[str, Any]:
        """What the printer itself says it is doing (straight to the simulator)."""
        address = self.simulator.address(self.printer_numbers[printer_id])
        answer = httpx.get(
            f"{address.base_url}/api/job", headers={"X-Api-Key": address.api_key}, timeout=5
        )
        answer.raise_for_status()
        body: dict[str, Any] = answer.json()
        return body


def build_stage(
    *,
    postgres: PostgresServer,
    redis: RedisServer,
    processes: Processes,
    relay: Relay,
    relay_url: str,
    simulator: RunningSimulator,
    tmp_path: Path,
    printers: int = 1,
) -> Stage:
    """A fresh database with one site, ``printers`` printers behind the relay and one
    sliced plate planned on each, not yet accepted."""
    url = postgres.create_database()
    queue = f"drill-{uuid.uuid4().hex[:8]}"
    settings = make_settings(tmp_path, url, redis_url=redis.url, celery_queue=queue, **SETTINGS)
    runtime = Runtime.from_settings(settings)
    upgrade(runtime.db.engine)
    with runtime.db.session() as session:
        seed_reference_data(session)
        session.commit()
    set_runtime(runtime)
    env = distrifab_env(
        database_url=url,
        data_dir=settings.data_dir,
        secret_key=TEST_SECRET,
        redis_url=redis.url,
        queue=queue,
        **SETTINGS,
    )
    stage = Stage(runtime, env, processes, postgres, redis, relay, relay_url, simulator)
    for number in range(1, printers + 1):
        address = simulator.address(number)
        httpx.post(
            f"{address.base_url}/_sim/reset", headers={"X-Api-Key": address.api_key}
        ).raise_for_status()
    with runtime.db.session() as session:
        site = make_site(session)
        point = make_delivery_point(session)
        operator = create_user(
            session, username="operator", password=PASSWORD, role=Role.OPERATOR, sites=[site]
        )
        coordinator = create_user(
            session, username="coordinator", password=PASSWORD, role=Role.COORDINATOR
        )
        stage.operator, stage.coordinator = operator.username, coordinator.username
        for number in range(1, printers + 1):
            address = simulator.address(number)
            printer = make_printer(
                runtime,
                session,
                site,
                base_url=f"{relay_url}/printers/{number}",
                api_key=address.api_key,
                driver=DriverKind.SIMULATOR,
            )
            stage.printer_ids.append(printer.id)
            stage.printer_numbers[printer.id] = number
        part, _version = make_part(runtime, session, face_shield_headband(height_mm=0.6))
        needs = [make_need(session, part, point, quantity=1) for _ in range(printers)]
        stage.part_id, stage.point_id = part.id, point.id
        session.commit()
        need_ids = [n.id for n in needs]
    slice_open_needs(runtime.db, runtime.store)
    with runtime.db.session() as session:
        for need_id, printer_id in zip(need_ids, stage.printer_ids, strict=True):
            job = session.scalars(select(Job).where(Job.need_id == need_id)).one()
            printer = session.get(Printer, printer_id)
            assert printer is not None
            plan_on(session, job, printer)
            stage.job_ids.append(job.id)
        session.commit()
    return stage


def assert_consistent(stage: Stage, *, printers_answer: bool = True) -> None:
    """Records, audit trail, printers and the wire agree.

    - the audit chain verifies;
    - replaying each job's transitions from the audit trail ends in its current state;
    - a job on a printer has exactly one active run, for its current attempt; a printed
      one has a finished run for its attempt; a job off the printers has no active run;
    - no printer has two active runs, and one run at most per job and attempt;
    - on the wire, no file was started twice, and every run's file was started once;
    - each printer (when it answers) prints what distrifab thinks it prints.
    """
    with stage.runtime.db.session() as session:
        report = verify_chain(session)
        assert report.ok, report.problems
        jobs = list(session.scalars(select(Job)))
        runs = list(session.scalars(select(PrintRun)))
        entries = list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.entity_type == "job").order_by(AuditEntry.seq)
            )
        )
    by_job: dict[str, list[AuditEntry]] = {}
    for entry in entries:
        by_job.setdefault(entry.entity_id, []).append(entry)
    attempts = [(r.job_id, r.attempt) for r in runs]
    assert len(attempts) == len(set(attempts)), "two runs for one job and attempt"
    active_printers = [r.printer_id for r in runs if r.outcome in ACTIVE]
    assert len(active_printers) == len(set(active_printers)), "a printer with two active runs"
    for job in jobs:
        moves = [e.data for e in by_job.get(str(job.id), []) if "to" in e.data]
        state = "queued"
        for move in moves:
            assert move["from"] == state, f"job {job.id}: audit jumps from {state} to {move}"
            state = move["to"]
        assert state == job.state.value, f"job {job.id}: audit says {state}, job {job.state}"
        mine = [r for r in runs if r.job_id == job.id]
        current = [r for r in mine if r.attempt == job.attempt]
        if job.state in (JobState.DISPATCHED, JobState.PRINTING):
            assert len(current) == 1, f"job {job.id} is {job.state} without its run"
            assert current[0].outcome in ACTIVE
        elif job.state in (JobState.PRINTED, JobState.PASSED, JobState.DELIVERED):
            assert [r.outcome for r in current] == [RunOutcome.DONE]
        else:
            assert not [r for r in mine if r.outcome in ACTIVE], f"job {job.id}: stale run"
    # Secrets never reach a log: not the printers' API keys, not the people's tokens.
    secrets = [stage.simulator.address(n).api_key for n in stage.printer_numbers.values()]
    secrets += [t.removeprefix("Bearer ") for t in stage.tokens]
    for log_file in stage.processes.workdir.glob("*.log"):
        text = log_file.read_text(errors="replace")
        leaked = [s for s in secrets if s in text]
        assert not leaked, f"{log_file.name} contains a secret"
    started = stage.relay.started_files()
    assert len(started) == len(set(started)), f"a print was started twice: {started}"
    for run in runs:
        assert stage.relay.starts_of(run.file_name) == 1, f"{run.file_name} never started"
    if not printers_answer:
        return
    for run in runs:
        if run.outcome not in ACTIVE:
            continue
        shown = stage.printer_job(run.printer_id)
        name = ((shown.get("job") or {}).get("file") or {}).get("name")
        assert name == run.file_name, f"the printer prints {name}, distrifab thinks {run.file_name}"
