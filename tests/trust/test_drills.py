"""Fault drills on real processes: nothing lost, nothing printed twice.

distrifab runs distributed, as deployed: ``distrifab serve``, a Celery worker and beat
on a private PostgreSQL and Redis (stopping them harms nobody else), printers simulated
behind a relay that records every start on the wire. Each drill breaks one part at the
worst moment, lets the system recover on its own, and ends with the same check: the
records, the audit trail, the printers and the wire agree, and no need, job or record
was lost (:func:`tests.trust.drills.assert_consistent`).
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select, text

from core.audit import AuditEntry
from core.runtime import set_runtime
from printers.dispatch import print_file_name
from printers.models import Printer, PrinterStatusValue
from printers.simulator.fleet import RunningSimulator, SimulatedFleet, serve_in_thread
from quality.models import WasteEntry, WasteKind
from scheduler.models import JobState, Need, PrintRun, RunOutcome
from tests.fixtures.services import PostgresServer, Processes, RedisServer
from tests.trust.drills import Stage, assert_consistent, build_stage, wait_until
from tests.trust.wire import Relay, relay_to

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

S = JobState
ON_PRINTER = {S.DISPATCHED, S.PRINTING}


@pytest.fixture(scope="module")
def simulator() -> Iterator[RunningSimulator]:
    # 20x: the 0.6 mm headband prints in about 20 s, long enough to break things meanwhile.
    with serve_in_thread(SimulatedFleet(4, seed="drills", time_scale=20.0)) as running:
        yield running


@pytest.fixture(scope="module")
def relay(simulator: RunningSimulator) -> Iterator[tuple[Relay, str]]:
    with relay_to(simulator.url) as pair:
        yield pair


@pytest.fixture
def stage_of(
    private_postgres: PostgresServer,
    private_redis: RedisServer,
    distrifab_processes: Processes,
    relay: tuple[Relay, str],
    simulator: RunningSimulator,
    tmp_path: Path,
) -> Iterator[Any]:
    recorder, url = relay
    recorder.starts.clear()
    recorder.hold_start_s = 0.0
    stages: list[Stage] = []

    def make(printers: int = 1) -> Stage:
        stage = build_stage(
            postgres=private_postgres,
            redis=private_redis,
            processes=distrifab_processes,
            relay=recorder,
            relay_url=url,
            simulator=simulator,
            tmp_path=tmp_path,
            printers=printers,
        )
        stages.append(stage)
        return stage

    yield make
    # The stage installed its runtime as the process's: close its pool here, or its
    # connections are found open by the garbage collector during some later test.
    set_runtime(None)
    for stage in stages:
        stage.runtime.db.dispose()
    gc.collect()


def file_names(stage: Stage) -> list[str]:
    return [print_file_name(job) for job in stage.jobs().values()]


def test_the_worker_killed_during_a_dispatch(stage_of: Any) -> None:
    """The printer started the print, the worker died before writing it down: the print
    is found and recorded, never started again."""
    stage: Stage = stage_of()
    stage.relay.hold_start_s = 600.0  # the worker waits on the start's answer until killed
    stage.start()
    before = stage.counts()
    stage.accept_all()
    (name,) = file_names(stage)
    wait_until(lambda: stage.relay.starts_of(name), timeout_s=90, what="the print to start")
    assert stage.worker is not None
    stage.worker.kill()
    stage.relay.hold_start_s = 0.0
    # The dispatch never wrote it down. The poller leaves a print to a dispatch that holds
    # the printer's lock, but the start's answer may have timed out before the kill (the
    # dispatch then let go and the poller recorded it): both are right, a second start is
    # not. Otherwise the dead worker's lock lapses and the poller or the sweep records it.
    assert set(stage.states().values()) <= {S.ACCEPTED} | ON_PRINTER
    stage.worker = stage.processes.worker(stage.env, name="worker-2")
    stage.wait_states(ON_PRINTER | {S.PRINTED})
    assert stage.relay.starts_of(name) == 1
    with stage.runtime.db.session() as session:
        actions = [e.action for e in session.scalars(select(AuditEntry))]
    # Found on the printer (by the poller's reconciliation or the dispatch sweep's question).
    assert "job.dispatched" in actions
    after = stage.counts()
    assert after["runs"] == 1
    assert (after["needs"], after["jobs"]) == (before["needs"], before["jobs"])
    assert_consistent(stage)


def test_redis_restarted_during_polling(stage_of: Any) -> None:
    """Every queued message is lost with Redis; polling resumes and every print is
    followed to its end, once; an acceptance made while Redis is down is not lost."""
    stage: Stage = stage_of(printers=3)
    stage.start()
    headers = stage.token(stage.operator)
    assert stage.api is not None
    first, *others = stage.job_ids
    for job_id in others:
        answer = httpx.post(f"{stage.api.base_url}/api/v1/jobs/{job_id}/accept", headers=headers)
        assert answer.status_code == 200, answer.text
    wait_until(
        lambda: all(stage.states()[j] in ON_PRINTER for j in others),
        timeout_s=90,
        what="two prints under way",
    )
    before = stage.counts()
    stage.redis.stop()
    try:
        # Accepted while the broker is down: recorded, and dispatched once it is back.
        answer = httpx.post(
            f"{stage.api.base_url}/api/v1/jobs/{first}/accept", headers=headers, timeout=60
        )
        assert answer.status_code == 200, answer.text
        assert stage.states()[first] is S.ACCEPTED
    finally:
        stage.redis.start()
    stage.wait_states({S.PRINTED}, timeout_s=180)
    for name in file_names(stage):
        assert stage.relay.starts_of(name) == 1
    with stage.runtime.db.session() as session:
        failed = session.scalars(select(AuditEntry).where(AuditEntry.action == "job.failed"))
        assert not list(failed), "a Redis restart must not fail a print"
    after = stage.counts()
    assert (after["needs"], after["jobs"]) == (before["needs"], before["jobs"])
    assert after["runs"] == 3
    assert_consistent(stage)


def _backend_waiting_on_a_lock(postgres: PostgresServer, database: str) -> bool:
    engine = create_engine(postgres.url(database), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            waiting = connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = :db AND wait_event_type = 'Lock'"
                ),
                {"db": database},
            ).scalar()
    finally:
        engine.dispose()
    return bool(waiting)


# The crash kills the server under this process's own connections too; psycopg warns when
# one of those dead connections is collected, which is no fault of the code under test.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_the_database_restarted_during_a_transition(stage_of: Any) -> None:
    """The acceptance has moved the job and waits to chain its audit entry when the
    database crashes: nothing of it remains, the API says so, and the same request
    made again succeeds once."""
    stage: Stage = stage_of()
    stage.start(worker=False, beat=False)  # nothing else may take the audit lock
    headers = stage.token(stage.operator)
    assert stage.api is not None
    database = stage.runtime.db.engine.url.database
    assert database is not None
    (job_id,) = stage.job_ids
    before = stage.counts()
    holder = create_engine(stage.postgres.url(database))
    connection = holder.connect()
    transaction = connection.begin()
    connection.execute(text("SELECT last_seq FROM audit_head WHERE id = 1 FOR UPDATE"))
    answers: list[httpx.Response | Exception] = []

    def accept() -> None:
        try:
            answers.append(
                httpx.post(
                    f"{stage.api.base_url}/api/v1/jobs/{job_id}/accept",  # type: ignore[union-attr]
                    headers=headers,
                    timeout=60,
                )
            )
        except httpx.HTTPError as exc:
            answers.append(exc)

    thread = threading.Thread(target=accept)
    thread.start()
    wait_until(
        lambda: _backend_waiting_on_a_lock(stage.postgres, database),
        timeout_s=30,
        what="the acceptance to wait on the audit trail",
    )
    stage.postgres.crash()  # mid-transition: the job row is changed, not committed
    stage.postgres.start()
    thread.join(60)
    with contextlib.suppress(Exception):  # its server died: nothing to roll back
        transaction.rollback()
    connection.invalidate()
    holder.dispose()
    (answer,) = answers
    assert isinstance(answer, httpx.Response), answer
    assert answer.status_code == 503, answer.text  # "nothing was changed, try again"
    assert answer.headers.get("retry-after")
    stage.runtime.db.engine.dispose()  # the test's own pool died with the server
    assert stage.states()[job_id] is S.PLANNED
    assert stage.counts() == before
    # The client tries again, as told: one acceptance, one audit entry, one print.
    again = wait_until(
        lambda: (lambda r: r if r.status_code == 200 else None)(
            httpx.post(
                f"{stage.api.base_url}/api/v1/jobs/{job_id}/accept",  # type: ignore[union-attr]
                headers=headers,
                timeout=60,
            )
        ),
        timeout_s=60,
        what="the acceptance to go through after the restart",
    )
    assert again.json()["state"] == "accepted"
    stage.worker = stage.processes.worker(stage.env)
    stage.beat = stage.processes.beat(stage.env)
    stage.wait_states(ON_PRINTER | {S.PRINTED})
    with stage.runtime.db.session() as session:
        accepted = session.scalars(
            select(AuditEntry).where(
                AuditEntry.entity_id == str(job_id), AuditEntry.action == "job.accepted"
            )
        )
        assert len(list(accepted)) == 1
    assert_consistent(stage)
    gc.collect()  # the dead connections' warnings belong to this test, where they are ignored


def test_a_printer_that_vanishes_mid_print(stage_of: Any) -> None:
    """The printer's server stops answering in the middle of a print: after the allowed
    misses the print is failed once, its plastic goes to the waste ledger, the job is
    queued for another attempt; the printer is back in the plan when it answers again."""
    stage: Stage = stage_of()
    stage.start()
    stage.accept_all()
    stage.wait_states({S.PRINTING})
    (job_id,) = stage.job_ids
    (printer_id,) = stage.printer_ids
    address = stage.simulator.address(stage.printer_numbers[printer_id])
    sim = {"X-Api-Key": address.api_key}
    httpx.post(f"{address.base_url}/_sim/kill", headers=sim).raise_for_status()
    wait_until(
        lambda: stage.jobs()[job_id].attempt == 2,
        timeout_s=60,
        what="the vanished print to be failed and requeued",
    )
    with stage.runtime.db.session() as session:
        printer = session.get(Printer, printer_id)
        assert printer is not None
        assert printer.status is PrinterStatusValue.OFFLINE
        (run,) = session.scalars(select(PrintRun).where(PrintRun.job_id == job_id))
        assert run.outcome is RunOutcome.FAILED
        waste = list(session.scalars(select(WasteEntry).where(WasteEntry.job_id == job_id)))
        assert [w.kind for w in waste] == [WasteKind.FAILED_PRINT]
        failed = list(
            session.scalars(
                select(AuditEntry).where(
                    AuditEntry.entity_id == str(job_id), AuditEntry.action == "job.failed"
                )
            )
        )
        assert len(failed) == 1
    assert_consistent(stage, printers_answer=False)
    httpx.post(f"{address.base_url}/_sim/revive", headers=sim).raise_for_status()

    def back_online() -> bool:
        with stage.runtime.db.session() as session:
            printer = session.get(Printer, printer_id)
            return printer is not None and printer.status is PrinterStatusValue.OPERATIONAL

    wait_until(back_online, timeout_s=60, what="the printer to be seen again")
    assert stage.jobs()[job_id].state in (S.QUEUED, S.PLANNED)
    assert_consistent(stage)


def test_the_api_killed_and_restarted(stage_of: Any) -> None:
    """Needs are posted while the API process is killed: each need it confirmed is there,
    whole (its plates and audit entry), and nothing is half-written."""
    stage: Stage = stage_of()
    stage.start(worker=False, beat=False)
    assert stage.api is not None
    base = stage.api.base_url
    headers = stage.token(stage.coordinator)
    before = stage.counts()
    confirmed: list[str] = []
    lock = threading.Lock()

    def post(index: int) -> None:
        body = {
            "part_id": str(stage.part_id),
            "quantity": 3 + index % 5,
            "due_at": "2027-01-01T00:00:00+00:00",
            "delivery_point_id": str(stage.point_id),
            "note": f"drill {index}",
        }
        try:
            answer = httpx.post(f"{base}/api/v1/needs", json=body, headers=headers, timeout=30)
        except httpx.HTTPError:
            return  # the process died under this request: its fate is checked below
        if answer.status_code == 201:
            with lock:
                confirmed.append(answer.json()["id"])

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(post, i) for i in range(40)]
        wait_until(lambda: len(confirmed) >= 8, timeout_s=120, what="some needs confirmed")
        stage.api.managed.kill()
        for future in futures:
            future.result()
    stage.api.managed.start()
    headers = stage.token(stage.coordinator)  # tokens are in the database: still valid
    with stage.runtime.db.session() as session:
        needs = {str(n.id): n for n in session.scalars(select(Need))}
        for need_id in confirmed:
            assert need_id in needs, f"need {need_id} was confirmed and lost"
        posted = {
            e.entity_id
            for e in session.scalars(select(AuditEntry).where(AuditEntry.action == "need.posted"))
        }
        assert posted == set(needs), "a need without its audit entry, or the reverse"
        for need in needs.values():
            assert sum(job.copies for job in need.jobs) == need.quantity, "a half-written need"
    after = stage.counts()
    assert after["needs"] >= before["needs"] + len(confirmed)
    answer = httpx.get(f"{base}/api/v1/needs", headers=headers, timeout=30)
    assert answer.status_code == 200
    assert {n["id"] for n in answer.json()} == set(needs)
    assert_consistent(stage)
