"""The real poller (the Celery task's body) on 1,000 simulated printers, with PostgreSQL.

Unlike bench/polling.py (transport only), this runs ``printers.poller.poll_printers``
every ``--interval`` seconds in this process, as one Celery worker does, and
measures what the issue asks of the stored state:

- staleness of the stored state: from one round's timestamp to the commit of the
  next round, i.e. how old a printer's row can get (max, p99);
- latency from a printer's state change (prints cancelled on the printer at
  random moments) to the changed row being committed;
- CPU of this process (the poller) as a share of one core, and the database server's.

The simulator runs in its own process. Results: bench/results/poller_db.json.

    .venv/bin/python -m bench.poller_db [--printers 1000] [--duration 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy import create_engine, select, text

from bench.provenance import code_version

RESULTS = Path(__file__).parent / "results"
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SECRET = "bench-secret-key-0123456789abcdef"
# Hours of printing by its M73 estimate: still printing when the benchmark ends.
LONG_GCODE = b"M73 P0 R600\nG28\n" + b"G1 X10 Y10 E1 F1200\n" * 200


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def start_prints(addresses: list[tuple[str, str]]) -> None:
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        semaphore = asyncio.Semaphore(50)

        async def one(url: str, key: str) -> None:
            async with semaphore:
                headers = {"X-Api-Key": key}
                files = {"file": ("long.gcode", LONG_GCODE)}
                response = await client.post(
                    f"{url}/api/files/local",
                    headers=headers,
                    files=files,
                    data={"select": "true", "print": "true"},
                )
                response.raise_for_status()

        await asyncio.gather(*(one(u, k) for u, k in addresses))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--printers", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--printing", type=float, default=0.5)
    parser.add_argument(
        "--changes", type=int, default=40, help="prints cancelled on the printers during the run"
    )
    args = parser.parse_args()

    from api.bootstrap import prepare_database
    from core.identity import Actor
    from core.logs import configure_logging
    from core.runtime import Runtime, set_runtime
    from core.settings import Settings
    from printers import service as printer_service
    from printers.models import DriverKind, Printer, PrinterStatusValue
    from printers.monitor import PollPolicy
    from printers.poller import poll_printers
    from printers.simulator.fleet import SimulatedFleet

    configure_logging(json_output=False, level="WARNING")
    schema = "bench_" + uuid.uuid4().hex[:10]
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    port = free_port()
    simulator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "printers.simulator",
            "--count",
            str(args.printers),
            "--port",
            str(port),
            "--quiet",
            "--time-scale",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="distrifab-poller-bench-"))
        settings = Settings(
            data_dir=folder,
            database_url=f"{POSTGRES}?options=-csearch_path%3D{schema}",
            secret_key=SECRET,
        )
        runtime = Runtime.from_settings(settings)
        set_runtime(runtime)
        prepare_database(runtime)
        keys = SimulatedFleet(1)  # keys derive from the seed and the number only
        addresses = [
            (f"http://127.0.0.1:{port}/printers/{n}", keys.api_key(n))
            for n in range(1, args.printers + 1)
        ]
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(
                    f"{addresses[0][0]}/api/version", headers={"X-Api-Key": addresses[0][1]}
                ).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        actor = Actor.system("bench")
        registering = time.perf_counter()
        with runtime.db.session() as session:
            sites = [
                printer_service.create_site(
                    session, name=f"Site {n}", lat=49.0 + n / 100, lon=2.5 + n / 100, actor=actor
                )
                for n in range(20)
            ]
            for index, (url, key) in enumerate(addresses):
                printer_service.register_printer(
                    session,
                    site_id=sites[index % 20].id,
                    name=f"P{index + 1}",
                    driver=DriverKind.SIMULATOR,
                    base_url=url,
                    api_key=key,
                    profile_key="prusa-mk3s",
                    actor=actor,
                    secret_key=runtime.secret_key,
                )
        registering_s = time.perf_counter() - registering
        printing = addresses[: int(len(addresses) * args.printing)]
        asyncio.run(start_prints(printing))
        policy = PollPolicy(offline_after_misses=3, max_attempts=3)

        def one_round() -> tuple[float, float, float]:
            started = time.time()
            poll_printers(
                runtime.db,
                secret_key=runtime.secret_key,
                policy=policy,
                concurrency=100,
                timeout_s=4.0,
            )
            with runtime.db.session() as session:
                stamp = session.scalar(select(Printer.last_polled_at).limit(1))
            assert stamp is not None
            return started, stamp.timestamp(), time.time()

        one_round()  # first round: every printer goes from unknown to its state (not measured)
        server = next(
            (p for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"), None
        )
        me = psutil.Process()
        cpu_before = me.cpu_times()
        db_before = sum(
            p.cpu_times().user + p.cpu_times().system
            for p in psutil.process_iter(["name"])
            if p.info["name"] == "postgres"
        )
        changes: dict[str, float] = {}
        rng = random.Random(7)
        to_change = rng.sample(printing, min(args.changes, len(printing)))
        change_at = sorted(rng.uniform(0, args.duration - 2 * args.interval) for _ in to_change)
        rounds: list[tuple[float, float, float]] = []
        detected: dict[str, float] = {}
        began = time.time()
        next_round = began
        pending = list(zip(change_at, to_change, strict=True))
        while time.time() - began < args.duration:
            now = time.time()
            while pending and began + pending[0][0] <= now:
                _, (url, key) = pending.pop(0)
                httpx.post(
                    f"{url}/api/job", json={"command": "cancel"}, headers={"X-Api-Key": key}
                ).raise_for_status()
                changes[url] = time.time()
            if now >= next_round:
                rounds.append(one_round())
                committed = rounds[-1][2]
                with runtime.db.session() as session:
                    rows = session.execute(
                        select(Printer.base_url, Printer.status).where(
                            Printer.base_url.in_(list(changes))
                        )
                    )
                    for url, status in rows:
                        if url not in detected and status is PrinterStatusValue.OPERATIONAL:
                            detected[url] = committed
                next_round += args.interval
            time.sleep(0.02)
        wall = time.time() - began
        cpu_after = me.cpu_times()
        db_after = sum(
            p.cpu_times().user + p.cpu_times().system
            for p in psutil.process_iter(["name"])
            if p.info["name"] == "postgres"
        )
        staleness = [rounds[i + 1][2] - rounds[i][1] for i in range(len(rounds) - 1)]
        latencies = [detected[url] - at for url, at in changes.items() if url in detected]
        report: dict[str, Any] = {
            "benchmark": "stored printer state, real poller with PostgreSQL",
            "printers": args.printers,
            "printing": len(printing),
            "interval_s": args.interval,
            "duration_s": round(wall, 1),
            "rounds": len(rounds),
            "round_duration_s": {
                "max": round(max(r[2] - r[0] for r in rounds), 3),
                "median": round(statistics.median(r[2] - r[0] for r in rounds), 3),
            },
            "stored_staleness_s": {
                "max": round(max(staleness), 3),
                "p99": round(percentile(staleness, 0.99), 3),
                "median": round(statistics.median(staleness), 3),
            },
            "state_change_to_stored_s": {
                "changes": len(changes),
                "detected": len(latencies),
                "max": round(max(latencies), 3) if latencies else None,
                "median": round(statistics.median(latencies), 3) if latencies else None,
            },
            "poller_cpu_pct_of_one_core": round(
                100
                * ((cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system))
                / wall,
                1,
            ),
            "postgres_cpu_pct_of_one_core": round(100 * (db_after - db_before) / wall, 1),
            "registering_s": round(registering_s, 1),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "loadavg": os.getloadavg(),
            },
            "code": code_version(),
        }
        _ = server
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "poller_db.json").write_text(json.dumps(report, indent=2) + "\n")
        print(json.dumps(report, indent=2))
        runtime.db.dispose()
    finally:
        simulator.terminate()
        simulator.wait(timeout=10)
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
