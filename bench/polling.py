"""Polling benchmark: one process follows 1,000 simulated printers every 5 s.

The simulator runs in its own process (``python -m printers.simulator``), so this
process is only the poller: ``poll_many`` rounds started every ``--interval`` seconds over
kept-alive :class:`PollClients`, as the embedded poller does. Measured:

- staleness: for each answering printer, how old its newest known state can get, i.e.
  from the start of one successful poll to the answer of the next (max, p99, p50);
- CPU of this process over the polling phase (percent of one core), and of the
  simulator for reference;
- round durations and outcome counts, including injected down and slow printers.

Results go to ``bench/results/polling-<stamp>.json`` with ``os.getloadavg()`` before and
after: the 2-core machine is shared, so read the figures against the load.

Run: ``.venv/bin/python -m bench.polling [--printers 1000] [--duration 60]``
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Hashable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.provenance import code_version
from printers.drivers import make_driver
from printers.polling import (
    Liveness,
    PollClients,
    PollResult,
    PollTarget,
    next_liveness,
    poll_many,
    slowest_first,
)
from printers.simulator.fleet import SimulatedFleet

RESULTS = Path(__file__).parent / "results"
# Two hours of printing by the slicer's count: still printing when the bench ends.
LONG_GCODE = b"M73 P0 R120\nG28\nM104 S210\nM140 S60\n" + b"G1 X10 Y10 E1 F1200\n" * 200


def _version_or_none(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_simulator(count: int, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "printers.simulator",
            "--count",
            str(count),
            "--port",
            str(port),
            "--time-scale",
            "1",
            "--quiet",
        ],
        cwd=Path(__file__).parent.parent,
    )
    deadline = time.monotonic() + 60
    fleet = SimulatedFleet(1)  # same default seed: printer 1's key
    while time.monotonic() < deadline:
        try:
            response = httpx.get(
                f"http://127.0.0.1:{port}/printers/1/api/version",
                headers={"X-Api-Key": fleet.api_key(1)},
            )
            if response.status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("the simulator did not start")


async def prepare(
    targets: list[PollTarget], *, printing: int, down: int, slow: int, slow_s: float
) -> None:
    """Start prints on the first ``printing`` printers; break the last down+slow ones."""
    async with httpx.AsyncClient() as client:
        semaphore = asyncio.Semaphore(20)

        async def start(target: PollTarget) -> None:
            async with semaphore:
                driver = make_driver(target.kind, target.base_url, target.api_key, client=client)
                await driver.upload("bench.gcode", LONG_GCODE)
                await driver.start("bench.gcode")

        async def fault(target: PollTarget, body: dict[str, Any]) -> None:
            response = await client.post(
                f"{target.base_url}/_sim/faults",
                json=body,
                headers={"X-Api-Key": target.api_key},
            )
            response.raise_for_status()

        await asyncio.gather(*(start(t) for t in targets[:printing]))
        broken = targets[len(targets) - down - slow :]
        await asyncio.gather(*(fault(t, {"down": True}) for t in broken[:down]))
        await asyncio.gather(*(fault(t, {"delay_s": slow_s}) for t in broken[down:]))


def _busy_s(before: Any, after: Any) -> float:
    return float((after.user - before.user) + (after.system - before.system))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run_rounds(
    targets: list[PollTarget],
    *,
    interval_s: float,
    duration_s: float,
    concurrency: int,
    timeout_s: float,
    offline_after_misses: int,
    temperatures_every: int,
    me: psutil.Process,
    simulator: psutil.Process,
) -> dict[str, Any]:
    # Per printer: (start, answer) wall-clock times of each successful poll.
    answered: dict[object, list[tuple[float, float]]] = {t.printer_id: [] for t in targets}
    liveness: dict[object, Liveness] = {t.printer_id: Liveness() for t in targets}
    last_duration_s: dict[Hashable, float] = {}
    rounds: list[float] = []
    results: Counter[str] = Counter()
    states: Counter[str] = Counter()
    async with PollClients(concurrency) as clients:
        # A warm-up round opens the connections and learns which printers are slow; a
        # poller does it once when it starts, so it is reported apart.
        warm_up_start = time.monotonic()
        for outcome in await poll_many(
            targets, concurrency=concurrency, timeout_s=timeout_s, clients=clients
        ):
            last_duration_s[outcome.target.printer_id] = outcome.duration_s
        warm_up_s = time.monotonic() - warm_up_start
        me_before, sim_before = me.cpu_times(), simulator.cpu_times()
        began = time.monotonic()
        next_round = began
        while next_round < began + duration_s:
            await asyncio.sleep(max(0.0, next_round - time.monotonic()))
            round_start = time.monotonic()
            ordered = slowest_first(targets, last_duration_s)
            outcomes = await poll_many(
                ordered,
                concurrency=concurrency,
                timeout_s=timeout_s,
                clients=clients,
                temperatures=len(rounds) % temperatures_every == 0,
            )
            round_end = time.monotonic()
            rounds.append(round_end - round_start)
            for outcome in outcomes:
                key = outcome.target.printer_id
                last_duration_s[key] = outcome.duration_s
                results[outcome.result.value] += 1
                liveness[key] = next_liveness(
                    liveness[key], outcome, offline_after_misses=offline_after_misses
                )
                if outcome.result is PollResult.OK and outcome.status is not None:
                    states[outcome.status.state.value] += 1
                    answer_at = outcome.polled_at.timestamp()
                    answered[key].append((answer_at - outcome.duration_s, answer_at))
            next_round += interval_s
            if next_round < time.monotonic():
                next_round = time.monotonic()  # overran: start the next round at once
        polling_wall_s = time.monotonic() - began
        ended = time.time()  # wall clock, like the outcomes' polled_at
        me_after, sim_after = me.cpu_times(), simulator.cpu_times()

    staleness: list[float] = []
    for polls in answered.values():
        for (started, _), (_, next_answer) in itertools.pairwise(polls):
            staleness.append(next_answer - started)
        if polls:
            staleness.append(ended - polls[-1][0])
    never_answered = [key for key, polls in answered.items() if not polls]
    return {
        "warm_up_round_s": warm_up_s,
        "poller_cpu_pct_of_one_core": 100 * _busy_s(me_before, me_after) / polling_wall_s,
        "simulator_cpu_pct_of_one_core": 100 * _busy_s(sim_before, sim_after) / polling_wall_s,
        "polls_per_s": sum(results.values()) / polling_wall_s,
        "rounds": len(rounds),
        "round_s": {
            "max": max(rounds),
            "mean": statistics.fmean(rounds),
            "min": min(rounds),
        },
        "staleness_s": {
            "max": max(staleness),
            "p99": percentile(staleness, 0.99),
            "p50": percentile(staleness, 0.50),
            "samples": len(staleness),
        },
        "outcomes": dict(results),
        "states_seen": dict(states),
        "never_answered": len(never_answered),
        "offline_at_end": sum(1 for value in liveness.values() if value.offline),
        "polling_wall_s": polling_wall_s,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--printers", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=4.0)
    parser.add_argument("--printing", type=float, default=0.5, help="fraction printing")
    parser.add_argument("--down", type=int, default=10, help="printers that never answer")
    parser.add_argument("--slow", type=int, default=10, help="printers answering late")
    parser.add_argument("--slow-s", type=float, default=1.0, help="delay per request")
    parser.add_argument("--offline-after-misses", type=int, default=3)
    parser.add_argument(
        "--temperatures-every", type=int, default=1, help="read temperatures every Nth round"
    )
    args = parser.parse_args(argv)

    port = free_port()
    simulator = start_simulator(args.printers, port)
    try:
        fleet = SimulatedFleet(1)  # only for the key derivation of the default seed
        targets = [
            PollTarget(n, "simulator", f"http://127.0.0.1:{port}/printers/{n}", fleet.api_key(n))
            for n in range(1, args.printers + 1)
        ]
        asyncio.run(
            prepare(
                targets,
                printing=int(args.printing * args.printers),
                down=args.down,
                slow=args.slow,
                slow_s=args.slow_s,
            )
        )
        load_before = os.getloadavg()
        figures = asyncio.run(
            run_rounds(
                targets,
                interval_s=args.interval,
                duration_s=args.duration,
                concurrency=args.concurrency,
                timeout_s=args.timeout,
                offline_after_misses=args.offline_after_misses,
                temperatures_every=args.temperatures_every,
                me=psutil.Process(),
                simulator=psutil.Process(simulator.pid),
            )
        )
        load_after = os.getloadavg()
    finally:
        simulator.terminate()
        try:
            simulator.wait(10)
        except subprocess.TimeoutExpired:
            simulator.kill()

    record = {
        "benchmark": "polling",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "httpx": httpx.__version__,
        "httpcore": importlib.metadata.version("httpcore"),
        # Without sniffio httpcore retries a failing import on every request (~25 % CPU).
        "sniffio": _version_or_none("sniffio"),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "parameters": vars(args),
        "code": code_version(),
        **figures,
    }
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    path = RESULTS / f"polling-{stamp}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    print(f"saved {path}")


if __name__ == "__main__":
    main()
