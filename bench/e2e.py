"""End to end: a need posted -> sliced -> planned -> accepted -> every job dispatched.

Runs the real stack on simulated printers, embedded (SQLite, background work in
this process) and distributed (PostgreSQL, Redis, a Celery worker and beat in
their own processes), and saves the figures to bench/results/e2e.json.

    .venv/bin/python -m bench.e2e [--printers 12] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text

from bench.provenance import code_version

RESULTS = Path(__file__).parent / "results"
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/0"
SECRET = "bench-secret-key-0123456789abcdef"
VENV_BIN = Path(sys.executable).parent


@contextmanager
def postgres_schema() -> Iterator[str]:
    schema = "bench_" + uuid.uuid4().hex[:10]
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def celery_processes(env: dict[str, str], folder: Path) -> Iterator[None]:
    processes = []
    for command in (["worker", "--concurrency=2"], ["beat"]):
        with open(folder / f"{command[0]}.log", "wb") as log:
            processes.append(
                subprocess.Popen(
                    [str(VENV_BIN / "distrifab"), *command, "--loglevel=warning"],
                    env={**os.environ, **env},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    try:
        yield
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def stl_bytes(mesh: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    mesh.export(buffer, file_type="stl")
    return buffer.getvalue()


def wait(check: Callable[[], bool], timeout_s: float, what: str) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        if check():
            return time.perf_counter() - started
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


def run_once(mode: str, printers: int, folder: Path) -> dict[str, Any]:
    from api.app import build_background
    from api.bootstrap import prepare_database
    from catalog import service as catalog
    from catalog.demo_parts import face_shield_headband
    from catalog.tasks import request_slicing
    from core.celery_app import configure_celery, set_local_runner
    from core.clock import utcnow
    from core.identity import Actor, Role
    from core.runtime import Runtime, set_runtime
    from core.settings import Settings
    from printers import service as printer_service
    from printers.models import DriverKind, SiteKind
    from printers.simulator.fleet import SimulatedFleet, serve_in_thread
    from scheduler import service as scheduler
    from scheduler.models import Job, JobState

    admin = Actor.system("bench")
    with postgres_schema() if mode == "distributed" else _nothing() as pg_url:
        settings = Settings(
            data_dir=folder,
            database_url=pg_url or "",
            secret_key=SECRET,
            redis_url=REDIS if mode == "distributed" else None,
            celery_queue=f"bench-{uuid.uuid4().hex[:8]}",
            poll_interval_s=1.0,
            replan_debounce_s=0.0,
            replan_time_limit_s=2.0,
        )
        runtime = Runtime.from_settings(settings)
        set_runtime(runtime)
        prepare_database(runtime)
        fleet = SimulatedFleet(printers, seed="bench", time_scale=1.0)
        with serve_in_thread(fleet) as simulator:
            with runtime.db.session() as session:
                sites = [
                    printer_service.create_site(
                        session,
                        name=f"Site {n}",
                        kind=SiteKind.FABLAB,
                        lat=49.4 + n / 100,
                        lon=2.8 + n / 100,
                        actor=admin,
                    )
                    for n in range(3)
                ]
                for number in range(1, printers + 1):
                    address = simulator.address(number)
                    printer = printer_service.register_printer(
                        session,
                        site_id=sites[number % 3].id,
                        name=f"P{number}",
                        driver=DriverKind.SIMULATOR,
                        base_url=address.base_url,
                        api_key=address.api_key,
                        profile_key="prusa-mk3s",
                        actor=admin,
                        secret_key=runtime.secret_key,
                    )
                    printer_service.load_material(
                        session,
                        printer_id=printer.id,
                        material_key="PLA",
                        remaining_g=1000,
                        actor=admin,
                    )
                part = catalog.create_part(session, name="Headband", actor=admin)
                version = catalog.add_design_version(
                    session,
                    runtime.store,
                    part_id=part.id,
                    model=stl_bytes(face_shield_headband()),
                    file_name="headband.stl",
                    actor=admin,
                    max_upload_bytes=runtime.settings.max_upload_bytes,
                )
                catalog.approve_version(session, version_id=version.id, actor=admin)
                point = scheduler.create_delivery_point(
                    session, name="CH", lat=49.415, lon=2.823, actor=admin
                )
                part_id, point_id = part.id, point.id
                site_ids = [s.id for s in sites]
            runner = None
            if mode == "embedded":
                runner = build_background(runtime)
                set_local_runner(runner)
                runner.start()
                context: Any = _nothing()
            else:
                configure_celery(settings)
                context = celery_processes(
                    {
                        "DISTRIFAB_DATABASE_URL": settings.resolved_database_url,
                        "DISTRIFAB_REDIS_URL": REDIS,
                        "DISTRIFAB_SECRET_KEY": SECRET,
                        "DISTRIFAB_DATA_DIR": str(folder),
                        "DISTRIFAB_CELERY_QUEUE": settings.celery_queue,
                        "DISTRIFAB_POLL_INTERVAL_S": "1",
                        "DISTRIFAB_REPLAN_DEBOUNCE_S": "0",
                        "DISTRIFAB_REPLAN_TIME_LIMIT_S": "2",
                    },
                    folder,
                )
            try:
                with context:
                    if mode == "distributed":
                        # Measure the flow, not the worker's start-up.
                        from core.celery_app import celery_app

                        wait(
                            lambda: bool(celery_app.control.ping(timeout=0.5)),
                            60,
                            "the Celery worker",
                        )
                    coordinator = Actor(user_id=None, username="coordinator", role=Role.COORDINATOR)
                    operator = Actor(
                        user_id=None,
                        username="operator",
                        role=Role.OPERATOR,
                        site_ids=frozenset(site_ids),
                    )
                    started = time.perf_counter()
                    with runtime.db.session() as session:
                        need = scheduler.post_need(
                            session,
                            part_id=part_id,
                            quantity=printers,
                            due_at=utcnow() + timedelta(days=1),
                            delivery_point_id=point_id,
                            priority=5,
                            actor=coordinator,
                        )
                        need_id = need.id
                    request_slicing()

                    def count(states: tuple[JobState, ...]) -> int:
                        with runtime.db.session() as session:
                            return (
                                session.scalar(
                                    select(func.count(Job.id)).where(
                                        Job.need_id == need_id,
                                        Job.state.in_([s.value for s in states]),
                                    )
                                )
                                or 0
                            )

                    jobs_total = count(tuple(JobState))
                    planned_s = wait(
                        lambda: count((JobState.PLANNED,)) == jobs_total, 180, "jobs planned"
                    )
                    t_planned = time.perf_counter() - started
                    with runtime.db.session() as session:
                        for job in scheduler.find_jobs(session, actor=coordinator, need_id=need_id):
                            printer_service.accept_job(session, job_id=job.id, actor=operator)
                    from core.celery_app import enqueue
                    from printers.tasks import dispatch_sweep

                    enqueue(dispatch_sweep)
                    t_accepted = time.perf_counter() - started
                    later = (JobState.DISPATCHED, JobState.PRINTING, JobState.PRINTED)
                    wait(lambda: count(later) == jobs_total, 180, "jobs dispatched")
                    t_dispatched = time.perf_counter() - started
            finally:
                if runner is not None:
                    runner.stop(wait=False)
                    set_local_runner(None)
        runtime.db.dispose()
        set_runtime(None)
    _ = planned_s
    return {
        "jobs": jobs_total,
        "posted_to_planned_s": round(t_planned, 3),
        "accept_all_s": round(t_accepted - t_planned, 3),
        "accepted_to_all_dispatched_s": round(t_dispatched - t_accepted, 3),
        "posted_to_all_dispatched_s": round(t_dispatched, 3),
    }


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--printers", type=int, default=12)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modes", default="embedded,distributed")
    args = parser.parse_args()
    from core.logs import configure_logging

    configure_logging(json_output=False, level="WARNING")
    report: dict[str, Any] = {
        "benchmark": "e2e need posted to all jobs dispatched",
        "printers": args.printers,
        "part": "face-shield headband (20 mm), one per plate on a Prusa MK3S profile",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_start": os.getloadavg(),
        },
        "modes": {},
    }
    for mode in args.modes.split(","):
        runs = []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="distrifab-bench-") as folder:
                runs.append(run_once(mode, args.printers, Path(folder)))
                print(mode, runs[-1], flush=True)
        report["modes"][mode] = {
            "runs": runs,
            "median": {
                key: statistics.median(r[key] for r in runs) for key in runs[0] if key != "jobs"
            },
        }
    report["machine"]["loadavg_end"] = os.getloadavg()
    report["code"] = code_version()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "e2e.json").write_text(json.dumps(report, indent=2) + "\n")
    for mode, figures in report["modes"].items():
        print(f"{mode:12s}", "  ".join(f"{k}={v:.2f}s" for k, v in figures["median"].items()))


if __name__ == "__main__":
    main()
