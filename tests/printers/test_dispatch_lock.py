"""The per-printer dispatch lock: one holder, renewed while it lives, lapsing when it dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
import redis

from printers.dispatch_lock import LocalDispatchLocks, RedisDispatchLocks, dispatch_locks
from tests.fixtures.octoprint import free_port
from tests.fixtures.services import RedisServer
from tests.waiting import wait_until


def test_local_locks_admit_one_holder_and_say_so() -> None:
    locks = LocalDispatchLocks()
    assert not locks.held("p1")
    with locks.hold("p1") as first:
        assert first
        assert locks.held("p1")
        with locks.hold("p1") as second:
            assert not second
        assert locks.held("p1")  # the refused caller did not release the holder's lock
        with locks.hold("p2") as other:
            assert other  # another printer is another lock
    assert not locks.held("p1")


def test_without_redis_the_process_shares_one_set_of_thread_locks() -> None:
    first = dispatch_locks(redis_url=None, prefix="q", printer_timeout_s=5)
    assert first is dispatch_locks(redis_url=None, prefix="other", printer_timeout_s=1)
    assert isinstance(first, LocalDispatchLocks)


@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


def test_a_redis_lock_outlives_its_expiry_while_its_holder_works(
    private_redis: RedisServer, prefix: str
) -> None:
    locks = RedisDispatchLocks(redis.Redis.from_url(private_redis.url), prefix=prefix, ttl_s=0.6)
    with locks.hold("p1") as held:
        assert held
        time.sleep(2.0)  # more than three expiries: only the renewals keep it
        assert locks.held("p1")
        with locks.hold("p1") as second:
            assert not second
    assert not locks.held("p1")
    with locks.hold("p1") as again:
        assert again


def test_a_killed_holders_lock_lapses(private_redis: RedisServer, prefix: str) -> None:
    """A worker killed mid-dispatch cannot release its lock: it lapses on its own, and
    then the poller may record what that dispatch started."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import time, redis
                from printers.dispatch_lock import RedisDispatchLocks
                locks = RedisDispatchLocks(
                    redis.Redis.from_url({private_redis.url!r}), prefix={prefix!r}, ttl_s=0.6
                )
                with locks.hold("p1") as held:
                    assert held
                    print("held", flush=True)
                    time.sleep(600)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        cwd=os.getcwd(),
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"held"
        locks = RedisDispatchLocks(
            redis.Redis.from_url(private_redis.url), prefix=prefix, ttl_s=0.6
        )
        time.sleep(1.5)  # past its first expiry: still held, the holder renews it
        assert locks.held("p1")
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        wait_until(
            lambda: not locks.held("p1"), timeout_s=30, what="the dead holder's lock to lapse"
        )
        with locks.hold("p1") as held:
            assert held
    finally:
        holder.kill()
        holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()


def test_an_unreachable_redis_counts_as_a_dispatch_under_way(prefix: str) -> None:
    """Not knowing must not make the poller record a print its dispatch may still record."""
    client = redis.Redis(port=free_port(), socket_connect_timeout=0.5)
    locks = RedisDispatchLocks(client, prefix=prefix, ttl_s=10)
    assert locks.held("p1")
