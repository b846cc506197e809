"""Dispatch, polling and failures across the real stack (services, database, simulator).

Failure drills: a printer that dies mid-print, one that answers 409 or 500 to
everything, one too slow to answer; each ends with the job requeued, its waste
recorded, and nothing printed twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import func, select

from core.errors import Conflict
from core.identity import Actor, Role
from core.runtime import Runtime
from printers import service as printers
from printers.control import cancel_job, pause_job, resume_job
from printers.dispatch import DispatchOutcome, dispatch_job, print_file_name
from printers.models import DriverKind, Printer, PrinterEvent, PrinterEventKind, PrinterStatusValue
from printers.monitor import PollPolicy
from printers.poller import poll_printers
from printers.simulator.fleet import RunningSimulator, SimulatedFleet, serve_in_thread
from quality.models import WasteEntry, WasteKind
from scheduler.models import Job, JobState, PrintRun, RunOutcome
from scheduler.service import replan, slice_open_needs
from tests.factories import make_delivery_point, make_need, make_part, make_printer, make_site

POLICY = PollPolicy(offline_after_misses=2, max_attempts=3)


@pytest.fixture(scope="module")
def fast_simulator() -> Iterator[RunningSimulator]:
    # 400x: the 0.6 mm headband (about 7 minutes on a real MK3S) prints in about a second.
    with serve_in_thread(SimulatedFleet(8, seed="workflow", time_scale=400.0)) as running:
        yield running


@pytest.fixture(scope="module")
def slow_simulator() -> Iterator[RunningSimulator]:
    # 20x: the same plate takes about 20 s, long enough to break it mid-print.
    with serve_in_thread(SimulatedFleet(8, seed="drills", time_scale=20.0)) as running:
        yield running


_used: dict[int, int] = {}


def next_printer(simulator: RunningSimulator) -> tuple[str, str, int]:
    """A simulated printer not used by an earlier test in this module, reset."""
    number = _used.get(id(simulator), 0) % len(simulator.fleet.printers) + 1
    _used[id(simulator)] = number
    address = simulator.address(number)
    httpx.post(
        f"{address.base_url}/_sim/reset", headers={"X-Api-Key": address.api_key}
    ).raise_for_status()
    return address.base_url, address.api_key, number


@dataclass
class Floor:
    runtime: Runtime
    operator: Actor
    printer_ids: list[UUID]
    need_id: UUID

    def poll(self, *, dispatching: Callable[[str], bool] | None = None) -> None:
        poll_printers(
            self.runtime.db,
            secret_key=self.runtime.secret_key,
            policy=POLICY,
            concurrency=8,
            timeout_s=1.0,
            dispatching=dispatching,
        )

    def jobs(self) -> list[Job]:
        with self.runtime.db.session() as session:
            return list(
                session.scalars(select(Job).where(Job.need_id == self.need_id).order_by(Job.index))
            )

    def dispatch(self, job_id: UUID) -> DispatchOutcome:
        return dispatch_job(
            self.runtime.db,
            self.runtime.store,
            job_id=job_id,
            secret_key=self.runtime.secret_key,
            timeout_s=2.0,
        )

    def plan_and_accept(self) -> list[Job]:
        slice_open_needs(self.runtime.db, self.runtime.store)
        replan(self.runtime.db, trigger="test", time_limit_s=1.0, horizon_days=7, method="greedy")
        with self.runtime.db.session() as session:
            for job in self.jobs():
                if job.state is JobState.PLANNED:
                    printers.accept_job(session, job_id=job.id, actor=self.operator)
        return self.jobs()

    def wait_for(self, state: JobState, *, rounds: int = 200) -> Job:
        import time

        for _ in range(rounds):
            self.poll()
            found = [j for j in self.jobs() if j.state is state]
            if found:
                return found[0]
            time.sleep(0.1)
        raise AssertionError(
            f"no job reached {state.value}: {[j.state.value for j in self.jobs()]}"
        )

    def wait_printer(self, status: PrinterStatusValue, *, rounds: int = 100) -> None:
        import time

        for _ in range(rounds):
            self.poll()
            with self.runtime.db.session() as session:
                printer = session.get(Printer, self.printer_ids[0])
                if printer is not None and printer.status is status:
                    return
            time.sleep(0.1)
        raise AssertionError(f"the printer never became {status.value}")

    def waste(self) -> list[WasteEntry]:
        with self.runtime.db.session() as session:
            return list(session.scalars(select(WasteEntry)))

    def runs(self) -> list[PrintRun]:
        with self.runtime.db.session() as session:
            return list(session.scalars(select(PrintRun).order_by(PrintRun.dispatched_at)))


def build_floor(
    runtime: Runtime,
    addresses: list[tuple[str, str]],
    *,
    driver: DriverKind = DriverKind.SIMULATOR,
    quantity: int = 1,
) -> Floor:
    from catalog.demo_parts import face_shield_headband
    from core.identity import create_user

    with runtime.db.session() as session:
        site = make_site(session)
        point = make_delivery_point(session)
        ids = [
            make_printer(runtime, session, site, base_url=url, api_key=key, driver=driver).id
            for url, key in addresses
        ]
        part, _ = make_part(runtime, session, face_shield_headband(height_mm=0.6))
        need = make_need(session, part, point, quantity=quantity)
        user = create_user(
            session,
            username=f"op-{site.id.hex[:6]}",
            password="password-123",
            role=Role.OPERATOR,
            sites=[site],
        )
        session.commit()
        return Floor(runtime=runtime, operator=Actor.of(user), printer_ids=ids, need_id=need.id)


def sim_control(
    base_url: str, api_key: str, action: str, body: dict[str, Any] | None = None
) -> None:
    httpx.post(
        f"{base_url}/_sim/{action}", json=body or {}, headers={"X-Api-Key": api_key}
    ).raise_for_status()


def test_a_print_runs_to_printed_and_the_bed_must_be_cleared(
    runtime: Runtime, fast_simulator: RunningSimulator
) -> None:
    url, key, _ = next_printer(fast_simulator)
    floor = build_floor(runtime, [(url, key)])
    (job,) = floor.plan_and_accept()
    assert job.state is JobState.ACCEPTED
    assert floor.dispatch(job.id) is DispatchOutcome.STARTED
    done = floor.wait_for(JobState.PRINTED)
    (run,) = floor.runs()
    assert run.outcome is RunOutcome.DONE
    assert run.file_name == print_file_name(done)
    with runtime.db.session() as session:
        printer = session.get(Printer, floor.printer_ids[0])
        assert printer is not None
        assert printer.needs_clearing
        assert printer.material_remaining_g is not None
        assert printer.material_remaining_g == pytest.approx(1000.0 - run.filament_g)
    assert floor.waste() == []


def test_a_repeated_or_concurrent_dispatch_never_starts_a_second_print(
    runtime: Runtime, slow_simulator: RunningSimulator
) -> None:
    url, key, _ = next_printer(slow_simulator)
    floor = build_floor(runtime, [(url, key)])
    (job,) = floor.plan_and_accept()
    outcomes: list[DispatchOutcome] = []
    threads = [
        threading.Thread(target=lambda: outcomes.append(floor.dispatch(job.id))) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count(DispatchOutcome.STARTED) <= 1
    assert set(outcomes) <= {
        DispatchOutcome.STARTED,
        DispatchOutcome.ALREADY_STARTED,
        DispatchOutcome.NOT_ACCEPTED,
    }
    assert floor.dispatch(job.id) is DispatchOutcome.NOT_ACCEPTED  # and once more, later
    assert len(floor.runs()) == 1
    with httpx.Client(headers={"X-Api-Key": key}) as client:
        state = client.get(f"{url}/api/job").json()
    assert state["state"] == "Printing"
    assert state["job"]["file"]["name"] == print_file_name(floor.jobs()[0])


def _start_behind_our_back(runtime: Runtime, url: str, key: str, job: Job) -> None:
    """What a dispatch does on the wire, without its record: the printer starts the file."""
    from core.aio import run_sync
    from printers.drivers import make_driver

    async def start() -> None:
        driver = make_driver("simulator", url, key)
        await driver.upload(print_file_name(job), runtime.store.get(job.gcode_hash or ""))
        await driver.start(print_file_name(job))
        await driver.aclose()

    run_sync(start())


def _job_actions(runtime: Runtime, job: Job) -> list[str]:
    from core import audit

    with runtime.db.session() as session:
        entries = audit.find_entries(session, entity_type="job", entity_id=str(job.id))
        return [e.action for e in entries]


def test_a_crash_between_start_and_record_is_reconciled_from_the_printer(
    runtime: Runtime, slow_simulator: RunningSimulator
) -> None:
    """The print started but distrifab died before writing it down: the next poll
    finds distrifab's file printing, records the dispatch and says so in the audit trail."""
    url, key, _ = next_printer(slow_simulator)
    floor = build_floor(runtime, [(url, key)])
    (job,) = floor.plan_and_accept()
    _start_behind_our_back(runtime, url, key, job)
    assert floor.jobs()[0].state is JobState.ACCEPTED
    floor.poll()
    assert floor.jobs()[0].state in (JobState.DISPATCHED, JobState.PRINTING)
    assert floor.dispatch(job.id) is DispatchOutcome.NOT_ACCEPTED
    assert "job.reconciled" in _job_actions(runtime, job)


def _printing_while_its_dispatch_is_under_way(
    runtime: Runtime, simulator: RunningSimulator
) -> tuple[Floor, Job, set[str]]:
    """An accepted plate the printer already prints, its dispatch (the printer ids in the
    returned set) not done yet; two poll rounds have seen it and left it unrecorded."""
    url, key, _ = next_printer(simulator)
    floor = build_floor(runtime, [(url, key)])
    (job,) = floor.plan_and_accept()
    under_way = {str(floor.printer_ids[0])}
    _start_behind_our_back(runtime, url, key, job)
    floor.poll(dispatching=under_way.__contains__)
    floor.poll(dispatching=under_way.__contains__)
    assert floor.jobs()[0].state is JobState.ACCEPTED
    return floor, job, under_way


def test_a_print_its_dispatch_is_still_recording_is_left_to_that_dispatch(
    runtime: Runtime, slow_simulator: RunningSimulator
) -> None:
    """The printer already prints the file, the dispatch that started it has not written
    it down yet: the poller leaves it to that dispatch, and the trail says "dispatched",
    not "reconciled" (there was no crash)."""
    floor, job, _ = _printing_while_its_dispatch_is_under_way(runtime, slow_simulator)
    assert floor.dispatch(job.id) is DispatchOutcome.ALREADY_STARTED
    assert floor.jobs()[0].state is JobState.DISPATCHED
    actions = _job_actions(runtime, job)
    assert "job.dispatched" in actions
    assert "job.reconciled" not in actions


def test_a_print_whose_dispatch_died_is_recorded_once_its_lock_lapses(
    runtime: Runtime, slow_simulator: RunningSimulator
) -> None:
    """While the dead dispatch's lock lives the poller waits; the first round after it
    lapsed records the print. The printer row already shows the file by then, so only a
    round that asks again (not a progress-only write) can find it."""
    floor, job, under_way = _printing_while_its_dispatch_is_under_way(runtime, slow_simulator)
    under_way.clear()
    floor.poll(dispatching=under_way.__contains__)
    assert floor.jobs()[0].state in (JobState.DISPATCHED, JobState.PRINTING)
    assert "job.reconciled" in _job_actions(runtime, job)
    assert len(floor.runs()) == 1


@pytest.mark.parametrize(
    ("fault", "body"),
    [
        ("kill", None),  # the printer's server dies mid-print
        ("faults", {"http_status": 500, "message": "Internal Server Error"}),
        ("faults", {"http_status": 409, "message": "Printer is not operational"}),
        ("faults", {"delay_s": 5.0}),  # slower than the 1 s poll timeout
    ],
    ids=["killed", "http-500", "http-409", "too-slow"],
)
def test_failure_drills(
    runtime: Runtime, slow_simulator: RunningSimulator, fault: str, body: dict[str, Any] | None
) -> None:
    url, key, _ = next_printer(slow_simulator)
    floor = build_floor(runtime, [(url, key)])
    (job,) = floor.plan_and_accept()
    assert floor.dispatch(job.id) is DispatchOutcome.STARTED
    floor.wait_for(JobState.PRINTING)
    import time

    time.sleep(1.5)  # some plastic on the bed
    floor.poll()
    sim_control(url, key, fault, body)
    for _ in range(POLICY.offline_after_misses + 1):
        floor.poll()
    (after,) = floor.jobs()
    assert after.state is JobState.QUEUED, after.state
    assert after.attempt == 2
    (run,) = floor.runs()
    assert run.outcome is RunOutcome.FAILED
    assert run.error
    (waste,) = floor.waste()
    assert waste.kind is WasteKind.FAILED_PRINT
    assert waste.estimated
    assert 0 < waste.mass_g < run.filament_g
    with runtime.db.session() as session:
        printer = session.get(Printer, floor.printer_ids[0])
        assert printer is not None
        assert printer.status in (PrinterStatusValue.OFFLINE, PrinterStatusValue.ERROR)
        events = session.scalar(
            select(func.count(PrinterEvent.id)).where(
                PrinterEvent.printer_id == printer.id,
                PrinterEvent.kind == PrinterEventKind.PRINT_FAILED,
            )
        )
        assert events == 1
    # More polls of the dead printer change nothing: the failure is recorded once.
    floor.poll()
    floor.poll()
    assert len(floor.waste()) == 1
    assert floor.jobs()[0].attempt == 2
    # Back on its feet, the printer comes back on its own. A revived server lost its
    # job; one that only stopped answering may still be printing the failed plate, so
    # nothing new starts there until an operator has cleared the bed.
    if fault == "kill":
        sim_control(url, key, "revive")
    else:
        sim_control(url, key, "faults")
    floor.poll()
    with runtime.db.session() as session:
        printer = session.get(Printer, floor.printer_ids[0])
        assert printer is not None
        expected = (
            PrinterStatusValue.OPERATIONAL if fault == "kill" else PrinterStatusValue.PRINTING
        )
        assert printer.status is expected
        assert printer.needs_clearing
        online = session.scalar(
            select(func.count(PrinterEvent.id)).where(
                PrinterEvent.printer_id == printer.id, PrinterEvent.kind == PrinterEventKind.ONLINE
            )
        )
        assert online == 1


def test_a_print_cancelled_on_the_printer_is_a_failure(
    runtime: Runtime, slow_simulator: RunningSimulator
) -> None:
    url, key, _ = next_printer(slow_simulator)
    floor = build_floor(runtime, [(url, key)])
    (job,) = floor.plan_and_accept()
    floor.dispatch(job.id)
    floor.wait_for(JobState.PRINTING)
    with httpx.Client(headers={"X-Api-Key": key}) as client:
        client.post(f"{url}/api/job", json={"command": "cancel"}).raise_for_status()
    floor.wait_for(JobState.QUEUED)  # through OctoPrint's short "Cancelling" state
    (after,) = floor.jobs()
    assert after.attempt == 2
    (run,) = floor.runs()
    assert run.outcome is RunOutcome.FAILED
    assert "cancelled on the printer" in (run.error or "")


def test_pause_resume_and_cancel_from_distrifab(
    runtime: Runtime, slow_simulator: RunningSimulator
) -> None:
    url, key, _ = next_printer(slow_simulator)
    floor = build_floor(runtime, [(url, key)])
    (job,) = floor.plan_and_accept()
    floor.dispatch(job.id)
    floor.wait_for(JobState.PRINTING)
    common = {"actor": floor.operator, "secret_key": runtime.secret_key, "timeout_s": 2.0}
    pause_job(runtime.db, job_id=job.id, **common)  # type: ignore[arg-type]
    floor.wait_printer(PrinterStatusValue.PAUSED)  # through the short "Pausing" state
    assert floor.jobs()[0].state is JobState.PRINTING  # paused is still in progress
    resume_job(runtime.db, job_id=job.id, **common)  # type: ignore[arg-type]
    floor.poll()
    cancel_job(runtime.db, job_id=job.id, reason="warping", max_attempts=3, **common)  # type: ignore[arg-type]
    with pytest.raises(Conflict):  # nothing left to cancel
        cancel_job(runtime.db, job_id=job.id, reason="warping", max_attempts=3, **common)  # type: ignore[arg-type]
    floor.poll()
    (after,) = floor.jobs()
    assert after.state is JobState.QUEUED
    assert [r.outcome for r in floor.runs()] == [RunOutcome.CANCELLED]
    assert len(floor.waste()) <= 1


def test_an_operator_cannot_control_another_sites_print(
    runtime: Runtime, slow_simulator: RunningSimulator
) -> None:
    from core.errors import Forbidden

    url, key, _ = next_printer(slow_simulator)
    floor = build_floor(runtime, [(url, key)])
    (job,) = floor.plan_and_accept()
    floor.dispatch(job.id)
    floor.wait_for(JobState.PRINTING)
    stranger = Actor(user_id=None, username="stranger", role=Role.OPERATOR, site_ids=frozenset())
    with pytest.raises(Forbidden):
        pause_job(
            runtime.db, job_id=job.id, actor=stranger, secret_key=runtime.secret_key, timeout_s=2.0
        )


@pytest.mark.octoprint
@pytest.mark.parametrize("backend", ["postgres"])
def test_five_real_octoprint_servers_print_at_once(
    runtime: Runtime, octoprint_servers: Any
) -> None:
    servers = octoprint_servers(5)
    floor = build_floor(
        runtime, [(s.base_url, s.api_key) for s in servers], driver=DriverKind.OCTOPRINT, quantity=5
    )
    jobs = floor.plan_and_accept()
    assert len(jobs) == 5
    assert len({j.printer_id for j in jobs}) == 5
    for job in jobs:
        assert floor.dispatch(job.id) is DispatchOutcome.STARTED
    import time

    seen_all_printing = False
    for _ in range(600):
        floor.poll()
        states = [j.state for j in floor.jobs()]
        if states.count(JobState.PRINTING) == 5:
            seen_all_printing = True
        if all(s is JobState.PRINTED for s in states):
            break
        time.sleep(0.2)
    assert seen_all_printing
    assert all(j.state is JobState.PRINTED for j in floor.jobs())
    assert [r.outcome for r in floor.runs()] == [RunOutcome.DONE] * 5


def test_an_idle_answer_in_flight_during_the_dispatch_fails_nothing(
    runtime: Runtime, slow_simulator: RunningSimulator
) -> None:
    """A poll sent before the start can come back after the dispatch is recorded: its idle
    printer with no file is no news about the print, until the start's grace has passed."""
    from datetime import timedelta

    from printers.drivers.base import PrinterState, PrinterStatus
    from printers.monitor import START_GRACE, record_poll

    url, key, _ = next_printer(slow_simulator)
    floor = build_floor(runtime, [(url, key)])
    (job,) = floor.plan_and_accept()
    assert floor.dispatch(job.id) is DispatchOutcome.STARTED
    stale = PrinterStatus(state=PrinterState.OPERATIONAL, state_text="Operational")
    policy = PollPolicy(offline_after_misses=3, max_attempts=3)
    with runtime.db.session() as session:
        run = session.scalars(select(PrintRun).where(PrintRun.job_id == job.id)).one()
        dispatched_at = run.dispatched_at
        record_poll(
            session,
            printer_id=run.printer_id,
            result=stale,
            policy=policy,
            now=dispatched_at + timedelta(seconds=1),
        )
        session.commit()
    assert floor.jobs()[0].state is JobState.DISPATCHED
    # Past the grace, the same answer means the print is gone: failed and requeued.
    with runtime.db.session() as session:
        run = session.scalars(select(PrintRun).where(PrintRun.job_id == job.id)).one()
        record_poll(
            session,
            printer_id=run.printer_id,
            result=stale,
            policy=policy,
            now=dispatched_at + START_GRACE + timedelta(seconds=1),
        )
        session.commit()
    with runtime.db.session() as session:
        run = session.scalars(select(PrintRun).where(PrintRun.job_id == job.id)).one()
        assert run.outcome is RunOutcome.FAILED


def test_two_dispatch_tasks_for_one_printer_start_one_print(
    runtime: Runtime, slow_simulator: RunningSimulator
) -> None:
    """An accept's task and a sweep's task on two worker slots, each for another plate of
    the same printer: one print starts, the other plate waits its turn."""
    from printers.tasks import dispatch_job as dispatch_task

    url, key, _ = next_printer(slow_simulator)
    floor = build_floor(runtime, [(url, key)], quantity=2)
    jobs = floor.plan_and_accept()
    assert [j.state for j in jobs] == [JobState.ACCEPTED, JobState.ACCEPTED]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def send(job_id: UUID) -> None:
        barrier.wait()
        outcomes.append(dispatch_task.run(str(job_id)))

    threads = [threading.Thread(target=send, args=(j.id,)) for j in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == [DispatchOutcome.STARTED, DispatchOutcome.WAITING]
    with runtime.db.session() as session:
        assert session.scalar(select(func.count(PrintRun.id))) == 1
