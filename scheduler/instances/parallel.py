"""Both cores for the pure-Python searches: a forked copy of the process
searches one half of the printers while this one searches the other half,
then the halves are merged; the halves are redrawn every round so that jobs
can travel between them.

The GIL keeps Python threads on one core, so the second core needs a
process; ``os.fork`` shares the compiled instance copy-on-write (nothing is
pickled but the child's queues) and also works inside daemonic workers
(Celery's), where ``multiprocessing`` refuses to start children. Without
``fork`` (Windows) or when it fails, the search runs in one process.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import random
import select
import signal
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

from scheduler.instances.search import Descent, iterate

T = TypeVar("T")

# Past its deadline the child gets this long to answer before it is killed
# and its half of the round is dropped.
CHILD_GRACE_S = 0.5
MIN_ROUND_S = 0.15  # below this a fork and a merge cost more than they bring


def can_fork() -> bool:
    return hasattr(os, "fork")


def _fork_pickling(
    work: Callable[[], object], *, in_child: Callable[[], None] | None = None
) -> tuple[int, int] | None:
    """Fork a child that runs ``in_child`` then ``work`` and writes ``work``'s result,
    pickled, into a pipe; return (child pid, read end), or None when fork failed."""
    try:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
    except OSError:
        return None
    if pid == 0:  # the child: never returns into the caller
        status = 1
        try:
            os.close(read_fd)
            if in_child is not None:
                in_child()
            payload = pickle.dumps(work(), protocol=pickle.HIGHEST_PROTOCOL)
            view = memoryview(payload)
            while view:
                view = view[os.write(write_fd, view) :]
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)
    return pid, read_fd


def _answer_of(pid: int, read_fd: int, *, deadline: float | None) -> bytes | None:
    """The child's whole answer, or None when it failed or had not finished by
    ``deadline`` (a ``time.monotonic`` value; it is killed then). Always reaps it."""
    chunks: list[bytes] = []
    answered = True
    try:
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([read_fd], [], [], wait)[0]:
                answered = False
                os.kill(pid, signal.SIGKILL)
                break
            chunk = os.read(read_fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    except BaseException:
        os.kill(pid, signal.SIGKILL)  # interrupted (a worker shutting down): no orphan
        raise
    finally:
        os.close(read_fd)
        _, status = os.waitpid(pid, 0)
    if not answered or status != 0 or not chunks:
        return None
    return b"".join(chunks)


def fork_call(
    child: Callable[[], T], parent: Callable[[], object], *, answer_by: float
) -> T | None:
    """Run ``child`` in a forked process while ``parent`` runs here; return
    what ``child`` returned (picklable), or None if the fork failed, the
    child raised, or it did not answer by ``answer_by`` + grace (a
    ``time.perf_counter`` value). ``parent`` always runs."""
    forked = _fork_pickling(child)
    if forked is None:
        parent()
        return None
    pid, read_fd = forked
    try:
        parent()
    except BaseException:
        os.kill(pid, signal.SIGKILL)  # do not wait out the child's deadline
        os.close(read_fd)
        os.waitpid(pid, 0)
        raise
    left_s = answer_by + CHILD_GRACE_S - time.perf_counter()
    payload = _answer_of(pid, read_fd, deadline=time.monotonic() + left_s)
    if payload is None:
        return None
    result: T = pickle.loads(payload)  # noqa: S301 - our own forked child
    return result


def split_rounds(
    search: Descent,
    *,
    deadline: float,
    seed: int,
    round_s: float,
    focus_late: bool = True,
) -> int:
    """:func:`iterate` on random halves of the printers, one half in a forked
    child, until ``deadline``; the child's half is merged in after each round
    when the merged schedule is no worse. Returns the number of rounds whose
    child answered."""
    inst = search.mover.inst
    rng = random.Random(seed)
    printers = list(range(inst.m))
    answered = 0
    while True:
        now = time.perf_counter()
        if deadline - now < MIN_ROUND_S:
            iterate(search, deadline=deadline, rng=rng, focus_late=focus_late)
            break
        end = min(deadline, now + round_s)
        if deadline - end < MIN_ROUND_S:
            end = deadline
        rng.shuffle(printers)
        theirs = set(printers[: inst.m // 2])
        child_mask = [p in theirs for p in range(inst.m)]
        mine = [not c for c in child_mask]
        start = {p: list(search.mover.sched.seqs[p]) for p in theirs}
        child_seed = rng.randrange(1 << 30)

        child = partial(
            _search_half, search, child_mask, end, random.Random(child_seed), focus_late, start
        )
        parent = partial(_search_half, search, mine, end, rng, focus_late, {})
        queues = fork_call(child, parent, answer_by=end)
        search.mover.printers = None
        if queues is None:
            continue
        answered += 1
        if queues:
            ev = search.mover.evaluate({p: (0, q) for p, q in queues.items()}, cutoff=False)
            if ev is not None and ev.key <= search.mover.sched.key():
                search.apply(ev)
    return answered


def _search_half(
    search: Descent,
    mask: list[bool],
    end: float,
    rng: random.Random,
    focus_late: bool,
    start: dict[int, list[int]],
) -> dict[int, list[int]]:
    """Search the printers of ``mask``; the queues of ``start`` that changed."""
    search.mover.printers = mask
    iterate(search, deadline=end, rng=rng, focus_late=focus_late)
    seqs = search.mover.sched.seqs
    return {p: seqs[p] for p, q in start.items() if seqs[p] != q}


def call_niced(work: Callable[[], T], *, niceness: int, timeout_s: float | None = None) -> T:
    """``work()`` in a forked child at a lower CPU priority, so that a long solve only
    takes what the API, the database and the poller leave; its result comes back
    pickled. Runs here instead when ``niceness`` <= 0, without ``fork``, or when the
    child failed or gave no answer within ``timeout_s`` (it is killed then), so that an
    error is raised here, with its traceback, and a result always comes back."""
    if niceness <= 0 or not can_fork():
        return work()
    forked = _fork_pickling(work, in_child=partial(lower_priority, niceness, new_session=True))
    if forked is None:
        return work()
    pid, read_fd = forked
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    payload = _answer_of(pid, read_fd, deadline=deadline)
    if payload is None:
        return work()
    result: T = pickle.loads(payload)  # noqa: S301 - our own forked child
    return result


def lower_priority(niceness: int, *, new_session: bool = False) -> None:
    """This process and what it starts afterwards run ``niceness`` steps lower.
    ``new_session``: leave the caller's session first (a forked child; never a process a
    supervisor signals by its group)."""
    # With autogroup scheduling (the default of most Linux kernels), nice ranks processes
    # only within their session, and every session gets an equal share: a process that
    # leads its own session gives that group the same niceness - never its shell's.
    if new_session:
        with contextlib.suppress(OSError):
            os.setsid()
    if os.getsid(0) == os.getpid():
        with contextlib.suppress(OSError):
            Path("/proc/self/autogroup").write_text(str(niceness))
    with contextlib.suppress(OSError):
        os.nice(niceness)
