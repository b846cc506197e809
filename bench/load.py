"""Load benchmark: 200 people at once on a distributed distrifab while 500 printers are polled.

Deployment, as in production but on loopback: a private PostgreSQL and Redis, ``distrifab
serve --workers N``, one Celery worker and beat (polling every printer every 5 s,
dispatching what is accepted; at its default lower CPU priority), and 500 simulated
printers in their own process (``python -m printers.simulator``) spread over one site per
operator. The printers stand for 500 other machines: here they run at a lower priority
(``--simulator-niceness``, 10) and take what the deployment leaves. The simulated prints
run 60 times faster than real ones, so plates finish and are dispatched every few seconds
(about 5 dispatches a second): a harsher background than a real day's.

The people are a bounded loop of asyncio tasks, each with its own API token and a think
time between actions (uniform 2.5-7.5 s: the pages refresh their live lists every 5 s;
``--think 0.5 1.5`` is the stress variant, someone clicking every second):

- operators (``--users`` minus coordinators): list their site's queue
  (``GET /api/v1/jobs?site_id=...&state=planned``) and accept one of the listed jobs
  (``POST /api/v1/jobs/{id}/accept``) four times in ten;
- coordinators (10 %): list the open needs (``GET /api/v1/needs``), and post a need
  (``POST /api/v1/needs``) three times in ten.

Before the measure, three rounds of reads warm the API processes up. Measured on the
client: p50/p95/p99/max latency per endpoint, errors (any answer but the expected 2xx, and
transport errors), throughput, and each request over 100 ms with its time; next to it what
distrifab's ``Server-Timing`` said of the same requests (time inside distrifab, time in
the database), the CPU each part of the deployment used, and the load generator's own
event-loop lag (its delays would count as distrifab's). On the server side: how stale the
printers' polled state gets (age of ``last_polled_at``, sampled every 5 s), and how many
accepted jobs were dispatched. Targets: p99 <= 100 ms for queue listing and accepting,
no error. ``os.getloadavg()`` is saved before, during and after: this 2-core machine is
shared, read the figures against it (the lead re-runs them on a quiet machine).

Run: ``.venv/bin/python -m bench.load [--users 200] [--printers 500] [--duration 60]``
(``--quick``: 40 users, 100 printers, 20 s). Results: ``bench/results/load-<stamp>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.provenance import code_version

RESULTS = Path(__file__).parent / "results"
SECRET = "bench-secret-key-0123456789abcdef"
PASSWORD = "bench-password-123"
# Between two actions of one person: the pages refresh their live lists every 5 s, so a
# person with the queue open asks for it about that often (``--think`` to change it).
THINK_S = (2.5, 7.5)
TARGET_P99_MS = 100.0
SLOW_MS = 100.0  # requests listed one by one in the results


def calibrate() -> float:
    """Seconds one core takes for a fixed piece of pure Python: the same figures on a
    machine that is slower today (shared hosts vary) read differently."""
    began = time.perf_counter()
    total = 0
    for n in range(5_000_000):
        total += n
    return round(time.perf_counter() - began, 3)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return round(ordered[index], 2)


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "p50_ms": percentile(values, 50),
        "p95_ms": percentile(values, 95),
        "p99_ms": percentile(values, 99),
        "max_ms": round(max(values), 2) if values else None,
        "mean_ms": round(statistics.fmean(values), 2) if values else None,
    }


# --- the world ---------------------------------------------------------------------------


def build(runtime: Any, *, printers: int, operators: int, coordinators: int, sim_port: int) -> Any:
    """Sites, printers, users with tokens, a sliced part and planned plates for every site."""
    from sqlalchemy import select

    from catalog import service as catalog
    from catalog.demo_parts import face_shield_headband
    from catalog.types import SliceSettings
    from core.clock import utcnow
    from core.identity import Actor, Role, create_user, issue_token
    from printers import service as printer_service
    from printers.models import DriverKind, Printer
    from printers.simulator.fleet import SimulatedFleet
    from scheduler import jobs as transitions
    from scheduler import service as scheduler
    from scheduler.models import Job
    from tests.factories import stl_bytes

    admin = Actor.system("bench")
    keys = SimulatedFleet(1, seed="load")
    world: dict[str, Any] = {"operators": [], "coordinators": []}
    with runtime.db.session() as session:
        sites = [
            printer_service.create_site(
                session, name=f"Fablab {n:03d}", lat=49.0 + n / 500, lon=2.5 + n / 500, actor=admin
            )
            for n in range(operators)
        ]
        session.commit()
        for number in range(1, printers + 1):
            site = sites[(number - 1) % len(sites)]
            printer = printer_service.register_printer(
                session,
                site_id=site.id,
                name=f"P{number}",
                driver=DriverKind.SIMULATOR,
                base_url=f"http://127.0.0.1:{sim_port}/printers/{number}",
                api_key=keys.api_key(number),
                profile_key="prusa-mk3s",
                actor=admin,
                secret_key=runtime.secret_key,
            )
            printer_service.load_material(
                session, printer_id=printer.id, material_key="PLA", actor=admin, remaining_g=5000.0
            )
        session.commit()
        point = scheduler.create_delivery_point(
            session, name="CH Compiègne", lat=49.415, lon=2.823, actor=admin
        )
        part = catalog.create_part(session, name="Serre-tête", actor=admin)
        version = catalog.add_design_version(
            session,
            runtime.store,
            part_id=part.id,
            model=stl_bytes(face_shield_headband(height_mm=0.6)),
            file_name="headband.stl",
            actor=admin,
            max_upload_bytes=runtime.settings.max_upload_bytes,
        )
        catalog.approve_version(session, version_id=version.id, actor=admin)
        world["part_id"], world["point_id"] = str(part.id), str(point.id)
        for index, site in enumerate(sites):
            user = create_user(
                session,
                username=f"operator-{index:03d}",
                password=PASSWORD,
                role=Role.OPERATOR,
                sites=[site],
            )
            token, _row = issue_token(session, user, ttl=timedelta(hours=4))
            world["operators"].append({"token": token, "site_id": str(site.id)})
        for index in range(coordinators):
            user = create_user(
                session,
                username=f"coordinator-{index:02d}",
                password=PASSWORD,
                role=Role.COORDINATOR,
            )
            token, _row = issue_token(session, user, ttl=timedelta(hours=4))
            world["coordinators"].append({"token": token})
        session.commit()
        # Enough planned plates for every operator to accept through the whole run.
        for _site in sites:
            scheduler.post_need(
                session,
                part_id=part.id,
                quantity=20,
                due_at=utcnow() + timedelta(days=7),
                delivery_point_id=point.id,
                priority=3,
                actor=admin,
            )
    scheduler.slice_open_needs(runtime.db, runtime.store)
    with runtime.db.session() as session:
        by_site: dict[Any, list[Printer]] = defaultdict(list)
        for printer in session.scalars(select(Printer)):
            by_site[printer.site_id].append(printer)
        queued = list(session.scalars(select(Job).order_by(Job.need_id, Job.index)))
        per_site = len(queued) // len(sites)
        now = utcnow()
        for index, site in enumerate(sites):
            chunk = queued[index * per_site : (index + 1) * per_site]
            for n, job in enumerate(chunk):
                printer = by_site[site.id][n % len(by_site[site.id])]
                record = catalog.find_slice(
                    session,
                    version_id=job.design_version_id,
                    profile_key=printer.profile_key,
                    material_key=job.material_key,
                    copies=job.copies,
                    settings=SliceSettings(copies=job.copies),
                )
                assert record is not None
                transitions.plan(
                    session,
                    job,
                    printer_id=printer.id,
                    site_id=site.id,
                    start_at=now + timedelta(hours=n),
                    end_at=now + timedelta(hours=n + 1),
                    delivery_at=now + timedelta(hours=n + 2),
                    slice_id=record.id,
                    gcode_hash=record.gcode_hash,
                    actor=admin,
                )
            session.commit()
        world["planned_jobs"] = len(queued)
    return world


# --- the people --------------------------------------------------------------------------


def server_timing(header: str | None) -> dict[str, float]:
    """``app;dur=12.3, db;dur=4.5;desc="..."`` -> {"app": 12.3, "db": 4.5}."""
    found: dict[str, float] = {}
    for metric in (header or "").split(","):
        name, _, rest = metric.strip().partition(";")
        for param in rest.split(";"):
            key, _, value = param.partition("=")
            if key.strip() == "dur":
                found[name] = float(value)
    return found


class Recorder:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        # What distrifab's own Server-Timing says of the same requests: the rest of the
        # client's figure is time spent waiting (for a CPU, a connection, the network).
        self.server: dict[str, list[float]] = defaultdict(list)
        self.db: dict[str, list[float]] = defaultdict(list)
        # The slow ones, with when they happened (seconds since the crowd arrived, UTC
        # clock time to match the processes' logs) and what distrifab said of them.
        self.slow: list[dict[str, Any]] = []
        self.began = time.perf_counter()
        self.errors: dict[str, Counter[str]] = defaultdict(Counter)
        self.samples: dict[str, list[str]] = defaultdict(list)

    async def call(
        self, client: httpx.AsyncClient, name: str, method: str, url: str, **kwargs: Any
    ) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            answer = await client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            self.errors[name][type(exc).__name__] += 1
            return None
        self.latency[name].append((time.perf_counter() - started) * 1000)
        timing = server_timing(answer.headers.get("server-timing"))
        if "app" in timing:
            self.server[name].append(timing["app"])
            self.db[name].append(timing.get("db", 0.0))
        took = self.latency[name][-1]
        if took >= SLOW_MS:
            self.slow.append(
                {
                    "t_s": round(started - self.began, 2),
                    "at": datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3],
                    "endpoint": name,
                    "ms": round(took, 1),
                    "app_ms": timing.get("app"),
                    "db_ms": timing.get("db"),
                }
            )
        if answer.status_code >= 300:
            self.errors[name][str(answer.status_code)] += 1
            if len(self.samples[name]) < 5:
                self.samples[name].append(answer.text[:300])
        return answer


async def operator(
    client: httpx.AsyncClient,
    me: dict[str, Any],
    stop_at: float,
    rec: Recorder,
    rng: random.Random,
    think: tuple[float, float],
) -> None:
    headers = {"Authorization": f"Bearer {me['token']}"}
    await asyncio.sleep(rng.uniform(0, think[1]))  # people do not all click at once
    while time.monotonic() < stop_at:
        answer = await rec.call(
            client,
            "GET /jobs (site queue)",
            "GET",
            "/api/v1/jobs",
            params={"site_id": me["site_id"], "state": "planned"},
            headers=headers,
        )
        if answer is not None and answer.status_code == 200 and rng.random() < 0.4:
            queue = answer.json()
            if queue:
                job = queue[0]
                await rec.call(
                    client,
                    "POST /jobs/{id}/accept",
                    "POST",
                    f"/api/v1/jobs/{job['id']}/accept",
                    headers=headers,
                )
        await asyncio.sleep(rng.uniform(*think))


async def coordinator(
    client: httpx.AsyncClient,
    me: dict[str, Any],
    world: dict[str, Any],
    stop_at: float,
    rec: Recorder,
    rng: random.Random,
    think: tuple[float, float],
    quantities: tuple[int, ...],
) -> None:
    headers = {"Authorization": f"Bearer {me['token']}"}
    await asyncio.sleep(rng.uniform(0, think[1]))
    due = (datetime.now(UTC) + timedelta(days=10)).isoformat()
    while time.monotonic() < stop_at:
        if rng.random() < 0.3:
            await rec.call(
                client,
                "POST /needs",
                "POST",
                "/api/v1/needs",
                json={
                    "part_id": world["part_id"],
                    "quantity": rng.choice(quantities),
                    "due_at": due,
                    "delivery_point_id": world["point_id"],
                    "priority": rng.randint(1, 5),
                },
                headers=headers,
            )
        else:
            await rec.call(
                client,
                "GET /needs",
                "GET",
                "/api/v1/needs",
                params={"status": "open"},
                headers=headers,
            )
        await asyncio.sleep(rng.uniform(*think))


async def crowd(
    base_url: str,
    world: dict[str, Any],
    duration_s: float,
    seed: int,
    think: tuple[float, float],
    quantities: tuple[int, ...],
) -> Recorder:
    rec = Recorder()
    rng = random.Random(seed)
    # Idle connections are dropped before uvicorn's 5 s keep-alive ends: reusing one the
    # server is closing at that instant fails (a client artefact, not a server error).
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=400, keepalive_expiry=4)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        stop_at = time.monotonic() + duration_s
        tasks = [
            operator(client, me, stop_at, rec, random.Random(rng.random()), think)
            for me in world["operators"]
        ]
        tasks += [
            coordinator(
                client, me, world, stop_at, rec, random.Random(rng.random()), think, quantities
            )
            for me in world["coordinators"]
        ]
        await asyncio.gather(*tasks)
    return rec


class CpuMeter:
    """CPU seconds each part of the deployment used while the crowd was there (a process
    and everything it forked; PostgreSQL's backends are children of its postmaster)."""

    def __init__(self, roots: dict[str, int], *, alone: frozenset[str] = frozenset()) -> None:
        self.roots = roots
        self.alone = alone  # counted without their children (the load generator started the rest)
        self.began = self._sample()
        self.machine_began = self._machine()
        self.started = time.perf_counter()

    @staticmethod
    def _machine() -> dict[str, float]:
        import psutil

        return dict(psutil.cpu_times()._asdict())

    def _sample(self) -> dict[str, float]:
        import psutil

        used: dict[str, float] = {}
        for name, pid in self.roots.items():
            total = 0.0
            try:
                root = psutil.Process(pid)
                family = [root] if name in self.alone else [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for process in family:
                try:
                    times = process.cpu_times()
                except psutil.Error:
                    continue
                total += times.user + times.system
            used[name] = total
        return used

    def shares(self) -> dict[str, float]:
        """Share of one core per part (1.0 = a whole core) since the meter started.
        Processes that ended in between are not counted (none should)."""
        ended, elapsed = self._sample(), time.perf_counter() - self.started
        return {
            name: round((ended[name] - self.began.get(name, 0.0)) / elapsed, 3) for name in ended
        }

    def machine(self) -> dict[str, float]:
        """The whole machine, in cores, since the meter started: busy (every process),
        idle, and stolen (taken by the hypervisor for other guests: on a shared VM the
        same work runs slower when this is high, whatever the code does)."""
        ended, elapsed = self._machine(), time.perf_counter() - self.started
        spent = {k: (ended[k] - self.machine_began[k]) / elapsed for k in ended}
        idle = spent.get("idle", 0.0) + spent.get("iowait", 0.0)
        stolen = spent.get("steal", 0.0)
        busy = (
            sum(spent.values())
            - idle
            - stolen
            - spent.get("guest", 0.0)
            - spent.get("guest_nice", 0.0)
        )
        return {"busy": round(busy, 3), "idle": round(idle, 3), "stolen": round(stolen, 3)}


async def loop_lag(samples: list[float], every_s: float = 0.05) -> None:
    """How late the load generator's own event loop wakes up: its delays would be counted
    as distrifab's latency, so they are reported next to it."""
    while True:
        began = time.perf_counter()
        await asyncio.sleep(every_s)
        samples.append((time.perf_counter() - began - every_s) * 1000)


def lower_priority_of(pid: int, niceness: int) -> None:
    """Lower a process started in a session of its own: its scheduling group (autogroup,
    which ranks sessions against each other) and the process itself."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/autogroup").write_text(str(niceness))
    os.setpriority(os.PRIO_PROCESS, pid, niceness)


def warm_up(base_url: str, world: dict[str, Any], rounds: int = 3) -> None:
    """A few reads by everyone before the measure: the API processes' first requests
    load code and prepare statements, which a server that runs for days has long done."""
    reads = [
        (me["token"], "/api/v1/jobs", {"site_id": me["site_id"], "state": "planned"})
        for me in world["operators"]
    ] + [(me["token"], "/api/v1/needs", {"status": "open"}) for me in world["coordinators"]]

    async def run() -> None:
        limit = asyncio.Semaphore(8)
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:

            async def read(token: str, path: str, params: dict[str, str]) -> None:
                async with limit:
                    headers = {"Authorization": f"Bearer {token}"}
                    await client.get(path, params=params, headers=headers)

            for _ in range(rounds):
                await asyncio.gather(*(read(*r) for r in reads))

    asyncio.run(run())


def poll_staleness(runtime: Any) -> float | None:
    from sqlalchemy import func, select

    from core.clock import utcnow
    from printers.models import Printer

    with runtime.db.session() as session:
        oldest = session.scalar(select(func.min(Printer.last_polled_at)))
    return None if oldest is None else (utcnow() - oldest).total_seconds()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--coordinators", type=float, default=0.1, help="share of the users")
    parser.add_argument("--printers", type=int, default=500)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument(
        "--quantities",
        type=int,
        nargs="+",
        default=[4, 8, 12, 20],
        help="quantities of the needs posted (new plate sizes make the worker slice)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the processes' logs")
    parser.add_argument(
        "--simulator-niceness",
        type=int,
        default=10,
        help="the simulated printers stand for 500 other machines: here they take the CPU "
        "the deployment leaves (0: same priority as distrifab)",
    )
    parser.add_argument("--quick", action="store_true", help="40 users, 100 printers, 20 s")
    parser.add_argument(
        "--think", type=float, nargs=2, default=THINK_S, help="seconds between actions (min max)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.users, args.printers, args.duration = 40, 100, 20.0
    think = (float(args.think[0]), float(args.think[1]))
    coordinators = max(1, round(args.users * args.coordinators))
    operators = args.users - coordinators

    from api.bootstrap import prepare_database
    from core.runtime import Runtime, set_runtime
    from core.settings import Settings
    from tests.fixtures.octoprint import free_port
    from tests.fixtures.services import (
        Processes,
        RedisServer,
        distrifab_env,
        start_private_postgres,
    )

    load: dict[str, Any] = {"before": os.getloadavg()}
    calibration_s = calibrate()
    root = Path(tempfile.mkdtemp(prefix="distrifab-load-"))
    # Its own top-level folder: PostgreSQL runs as another user, who cannot enter ``root``.
    pg_root = Path(tempfile.mkdtemp(prefix="distrifab-load-pg-"))
    postgres = start_private_postgres(pg_root)
    redis = RedisServer(free_port())
    redis.start()
    processes = Processes(root)
    simulator: subprocess.Popen[bytes] | None = None
    try:
        url = postgres.create_database()
        queue = f"load-{uuid.uuid4().hex[:8]}"
        values: dict[str, Any] = {"poll_interval_s": 5.0, "printer_timeout_s": 5.0}
        settings = Settings(
            data_dir=root / "data",
            database_url=url,
            secret_key=SECRET,
            redis_url=redis.url,
            celery_queue=queue,
            **values,
        )
        runtime = Runtime.from_settings(settings)
        set_runtime(runtime)
        prepare_database(runtime)
        sim_port = free_port()
        simulator = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "printers.simulator",
                "--count",
                str(args.printers),
                "--port",
                str(sim_port),
                "--seed",
                "load",
                "--time-scale",
                "60",
                "--quiet",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        if args.simulator_niceness:
            lower_priority_of(simulator.pid, args.simulator_niceness)
        started = time.perf_counter()
        world = build(
            runtime,
            printers=args.printers,
            operators=operators,
            coordinators=coordinators,
            sim_port=sim_port,
        )
        setup_s = time.perf_counter() - started
        print(f"world ready in {setup_s:.0f} s: {world['planned_jobs']} plates planned", flush=True)
        env = distrifab_env(
            database_url=url,
            data_dir=settings.data_dir,
            secret_key=SECRET,
            redis_url=redis.url,
            queue=queue,
            **values,
        )
        worker = processes.worker(env, concurrency=2)
        beat = processes.beat(env)
        api = processes.api(env, workers=args.api_workers)
        time.sleep(10)  # a couple of polling rounds before the crowd arrives
        warm_up(api.base_url, world)
        # What this process built and loaded so far (the world's rows, the libraries)
        # lives to the end: frozen, the collector's full passes skip it. Left in, they
        # paused the crowd's event loop up to 260 ms, counted as distrifab's latency.
        gc.collect()
        gc.freeze()
        load["start"] = os.getloadavg()
        staleness: list[float] = []
        lag: list[float] = []
        assert api.managed.process is not None
        assert worker.process is not None
        assert beat.process is not None
        assert redis.process is not None
        roots = {
            "api": api.managed.process.pid,
            "worker": worker.process.pid,
            "beat": beat.process.pid,
            "simulator": simulator.pid,
            "postgresql": int((postgres.data_dir / "postmaster.pid").read_text().split()[0]),
            "redis": redis.process.pid,
            "load generator": os.getpid(),
        }
        meter = CpuMeter(roots, alone=frozenset({"load generator"}))

        async def run() -> Recorder:
            lagging = asyncio.create_task(loop_lag(lag))

            async def sample() -> None:
                while True:
                    await asyncio.sleep(5)
                    value = await asyncio.to_thread(poll_staleness, runtime)
                    if value is not None:
                        staleness.append(value)

            sampler = asyncio.create_task(sample())
            try:
                return await crowd(
                    api.base_url, world, args.duration, args.seed, think, tuple(args.quantities)
                )
            finally:
                sampler.cancel()
                lagging.cancel()

        began = time.perf_counter()
        rec = asyncio.run(run())
        elapsed = time.perf_counter() - began
        cpu = meter.shares()
        machine_cpu = meter.machine()
        load["during_end"] = os.getloadavg()
        dispatched = _dispatched(runtime)
    finally:
        processes.stop_all()
        if simulator is not None:
            simulator.terminate()
            simulator.wait(timeout=10)
        redis.stop()
        postgres.stop("immediate")
        shutil.rmtree(pg_root, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    load["after"] = os.getloadavg()
    endpoints = {name: summary(values) for name, values in sorted(rec.latency.items())}
    for name, figures in endpoints.items():
        figures["per_s"] = round(figures["count"] / elapsed, 1)
        figures["errors"] = dict(rec.errors.get(name, {}))
        figures["server"] = summary(rec.server.get(name, []))
        figures["server_db"] = summary(rec.db.get(name, []))
    for name, counter in rec.errors.items():
        endpoints.setdefault(name, {"count": 0, "errors": dict(counter)})
    total = sum(len(v) for v in rec.latency.values())
    errors = sum(sum(c.values()) for c in rec.errors.values())
    targets = {
        name: endpoints.get(name, {}).get("p99_ms") is not None
        and endpoints[name]["p99_ms"] <= TARGET_P99_MS
        for name in ("GET /jobs (site queue)", "POST /jobs/{id}/accept")
    }
    result = {
        "benchmark": "load",
        "at": datetime.now(UTC).strftime("%Y%m%dT%H%M%S"),
        "config": {
            "users": args.users,
            "operators": operators,
            "coordinators": coordinators,
            "printers": args.printers,
            "duration_s": args.duration,
            "api_workers": args.api_workers,
            "simulator_niceness": args.simulator_niceness,
            "worker_niceness": settings.worker_niceness,
            "celery_worker_concurrency": 2,
            "poll_interval_s": 5.0,
            "think_time_s": think,
            "need_quantities": args.quantities,
            "database": "PostgreSQL 15 (private, fsync off)",
            "seed": args.seed,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "note": "shared 2-core machine: load generator, API, worker, beat, PostgreSQL, "
            "Redis and the simulator all on it; latencies are measured by the client",
        },
        "load_avg": load,
        "setup_s": round(setup_s, 1),
        "elapsed_s": round(elapsed, 1),
        "requests": total,
        "throughput_per_s": round(total / elapsed, 1),
        "errors": errors,
        "endpoints": endpoints,
        "error_samples": {k: v for k, v in rec.samples.items() if v},
        "targets": {"p99_ms_max": TARGET_P99_MS, "met": targets, "zero_errors": errors == 0},
        "polling": {
            "printers": args.printers,
            "staleness_s_samples": [round(v, 1) for v in staleness],
            "staleness_s_max": round(max(staleness), 1) if staleness else None,
            "staleness_s_p50": percentile(staleness, 50),
        },
        "jobs_dispatched": dispatched,
        "cpu_cores_used": cpu,
        "machine_cores": machine_cpu,
        "calibration_s": calibration_s,
        "slow_requests": sorted(rec.slow, key=lambda r: r["t_s"]),
        "load_generator_lag": summary(lag),
        "code": code_version(),
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"load-{result['at']}.json"
    path.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: result[k] for k in ("throughput_per_s", "errors", "targets")}, indent=1))
    for name, figures in endpoints.items():
        print(
            f"{name:28} n={figures.get('count')} p50={figures.get('p50_ms')} "
            f"p95={figures.get('p95_ms')} p99={figures.get('p99_ms')} ms errors={figures.get('errors')}"
        )
        inside, db = figures.get("server") or {}, figures.get("server_db") or {}
        print(
            f"{'  in distrifab':28} p50={inside.get('p50_ms')} p95={inside.get('p95_ms')} "
            f"p99={inside.get('p99_ms')} ms; database p50={db.get('p50_ms')} p99={db.get('p99_ms')} ms"
        )
    print(f"calibration {calibration_s} s; {len(rec.slow)} requests over {SLOW_MS:.0f} ms")
    print("CPU (cores):", ", ".join(f"{k} {v:.2f}" for k, v in cpu.items()))
    print("machine (cores):", ", ".join(f"{k} {v:.2f}" for k, v in machine_cpu.items()))
    lagged = summary(lag)
    print(f"load generator's loop lag p50={lagged['p50_ms']} p99={lagged['p99_ms']} ms")
    print(f"saved {path}")


def _dispatched(runtime: Any) -> dict[str, int]:
    from sqlalchemy import func, select

    from scheduler.models import Job

    with runtime.db.session() as session:
        rows = session.execute(select(Job.state, func.count()).group_by(Job.state)).all()
    return {state.value: count for state, count in rows}


if __name__ == "__main__":
    main()
