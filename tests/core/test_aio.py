"""run_sync: printer commands work from plain code and from inside a running event loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from core.aio import run_sync


async def _where() -> str:
    await asyncio.sleep(0)
    return threading.current_thread().name


async def _fails() -> None:
    await asyncio.sleep(0)
    raise ValueError("printer said no")


def test_runs_on_the_calling_thread_when_no_loop_runs() -> None:
    assert run_sync(_where()) == threading.current_thread().name


def test_runs_on_its_own_thread_inside_a_running_loop() -> None:
    async def caller() -> str:
        return run_sync(_where())

    name = asyncio.run(caller())
    assert name.startswith("distrifab-aio")


def test_the_coroutines_exception_reaches_the_caller_inside_a_loop() -> None:
    async def caller() -> None:
        run_sync(_fails())

    with pytest.raises(ValueError, match="printer said no"):
        asyncio.run(caller())
