"""The audit chain catches edits, deletions, reordering and truncation done behind distrifab's back."""

from __future__ import annotations

from sqlalchemy import text

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
