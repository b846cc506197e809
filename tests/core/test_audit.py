"""The audit chain catches edits, deletions, reordering and truncation done behind distrifab's back."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from core import audit
from core.identity import Actor
from core.runtime import Runtime

ACTOR = Actor.system("test")


def write_entries(runtime: Runtime, count: int) -> None:
    with runtime.db.session() as session:
        for index in range(count):
            audit.record(
                session,
                actor=ACTOR,
                action="test.event",
                entity_type="thing",
                entity_id=index,
                data={"n": index},
            )
        session.commit()


def verify(runtime: Runtime) -> audit.ChainReport:
    with runtime.db.session() as session:
        return audit.verify_chain(session)


def raw(runtime: Runtime, sql: str, **params: object) -> None:
    """Write behind distrifab's back, straight to the database."""
    with runtime.db.engine.begin() as connection:
        connection.execute(text(sql), params)


def test_intact_chain_verifies(runtime: Runtime) -> None:
    write_entries(runtime, 5)
    report = verify(runtime)
    assert report.ok
    assert report.entries == 5


def test_chain_links_each_entry_to_the_previous(runtime: Runtime) -> None:
    write_entries(runtime, 3)
    with runtime.db.session() as session:
        entries = audit.find_entries(session)
    assert entries[0].prev_hash == audit.GENESIS_HASH
    assert [e.prev_hash for e in entries[1:]] == [e.hash for e in entries[:-1]]


def test_edited_row_is_caught_and_named(runtime: Runtime) -> None:
    write_entries(runtime, 5)
    raw(runtime, "UPDATE audit_entries SET data_json = :d WHERE seq = 3", d='{"n":99}')
    report = verify(runtime)
    assert not report.ok
    assert [(p.seq, p.kind) for p in report.problems] == [(3, "edited")]


def test_deleted_row_is_caught(runtime: Runtime) -> None:
    write_entries(runtime, 5)
    raw(runtime, "DELETE FROM audit_entries WHERE seq = 2")
    report = verify(runtime)
    assert any(p.kind == "missing" and p.seq == 3 for p in report.problems)


def test_reordered_rows_are_caught(runtime: Runtime) -> None:
    write_entries(runtime, 4)
    # Swap the contents of entries 2 and 3 but keep the sequence numbers.
    with runtime.db.engine.begin() as connection:
        rows = {
            r.seq: r
            for r in connection.execute(
                text(
                    "SELECT seq, action, entity_id, data_json, prev_hash, hash, at FROM audit_entries"
                )
            )
        }
        for target, source in ((2, 3), (3, 2)):
            row = rows[source]
            connection.execute(
                text(
                    "UPDATE audit_entries SET entity_id = :e, data_json = :d, prev_hash = :p, hash = :h WHERE seq = :s"
                ),
                {
                    "e": row.entity_id,
                    "d": row.data_json,
                    "p": row.prev_hash,
                    "h": f"x{target}" + row.hash[2:],
                    "s": target,
                },
            )
    assert not verify(runtime).ok


def test_truncated_tail_is_caught(runtime: Runtime) -> None:
    write_entries(runtime, 4)
    raw(runtime, "DELETE FROM audit_entries WHERE seq = 4")
    report = verify(runtime)
    assert [p.kind for p in report.problems] == ["tail_truncated"]


def test_rehashed_forgery_breaks_the_next_link(runtime: Runtime) -> None:
    """Someone who edits an entry and recomputes its hash still breaks the link after it."""
    write_entries(runtime, 3)
    with runtime.db.session() as session:
        entry = audit.find_entries(session)[1]
        forged = audit.entry_hash(
            seq=entry.seq,
            at=entry.at,
            actor_id=entry.actor_id,
            actor=entry.actor,
            action=entry.action,
            entity_type=entry.entity_type,
            entity_id=entry.entity_id,
            data_json='{"n":42}',
            prev_hash=entry.prev_hash,
        )
    raw(
        runtime,
        "UPDATE audit_entries SET data_json = :d, hash = :h WHERE seq = 2",
        d='{"n":42}',
        h=forged,
    )
    report = verify(runtime)
    assert [(p.seq, p.kind) for p in report.problems] == [(3, "reordered")]


def note(session: Session, entity_id: object) -> None:
    audit.record(
        session,
        actor=ACTOR,
        action="test.event",
        entity_type="thing",
        entity_id=entity_id,
    )


def test_a_rolled_back_transaction_leaves_no_entry(runtime: Runtime) -> None:
    with runtime.db.session() as session:
        note(session, "lost")
        assert audit.pending_entries(session) == 1
        session.rollback()
        assert audit.pending_entries(session) == 0
        note(session, "kept")
        session.commit()
    with runtime.db.session() as session:
        entries = audit.find_entries(session)
    assert [e.entity_id for e in entries] == ["kept"]
    assert verify(runtime).ok


def test_a_session_closed_without_commit_leaves_no_entry(runtime: Runtime) -> None:
    with runtime.db.session() as session:
        note(session, "abandoned")
    write_entries(runtime, 1)
    with runtime.db.session() as session:
        assert [e.entity_id for e in audit.find_entries(session)] == ["0"]


def test_entries_are_chained_in_commit_order(runtime: Runtime) -> None:
    """The chain's order is the order in which transactions committed, not the order in
    which their entries were noted."""
    with runtime.db.session() as first, runtime.db.session() as second:
        note(first, "noted first, committed second")
        first.flush()
        note(second, "noted second, committed first")
        second.commit()
        first.commit()
    with runtime.db.session() as session:
        entries = audit.find_entries(session)
    assert [e.entity_id for e in entries] == [
        "noted second, committed first",
        "noted first, committed second",
    ]
    assert [e.seq for e in entries] == [1, 2]
    assert entries[1].at >= entries[0].at
    assert verify(runtime).ok


@pytest.mark.parametrize("backend", ["postgres"])
def test_an_open_transaction_does_not_hold_the_chain(runtime: Runtime) -> None:
    """On PostgreSQL a transaction that has noted entries but not committed leaves the
    chain's head free: another transaction appends without waiting for it (a lock
    timeout turns a wait into an error here)."""
    write_entries(runtime, 1)  # the head row exists: a wait would be for its lock
    with runtime.db.session() as slow, runtime.db.session() as quick:
        note(slow, "slow")
        slow.execute(text("SELECT 1"))  # its transaction is open on the server
        quick.execute(text("SET LOCAL lock_timeout = '5s'"))
        note(quick, "quick")
        quick.commit()
        slow.commit()
    with runtime.db.session() as session:
        assert [e.entity_id for e in audit.find_entries(session)] == ["0", "quick", "slow"]
    assert verify(runtime).ok
