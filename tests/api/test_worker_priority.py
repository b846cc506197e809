"""``distrifab worker`` runs below the API's CPU priority, its pool processes too."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psutil

from tests.fixtures.services import Processes


def test_the_worker_and_its_pool_run_at_the_configured_niceness(
    process_env: Callable[..., dict[str, str]], distrifab_processes: Processes
) -> None:
    env = process_env(worker_niceness=7)
    worker = distrifab_processes.worker(env, concurrency=2)
    assert worker.process is not None
    main = psutil.Process(worker.process.pid)
    pool = main.children()
    assert len(pool) == 2
    base = psutil.Process().nice()
    assert [p.nice() for p in [main, *pool]] == [min(19, base + 7)] * 3
    # Started in a session of its own (as systemd or a process manager would), the
    # worker lowers its session's scheduling group too: with autogroup on, niceness
    # alone only ranks it against its own session.
    autogroup = Path(f"/proc/{main.pid}/autogroup")
    if autogroup.exists():
        assert autogroup.read_text().split()[-1] == "7"
