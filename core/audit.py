"""The audit trail: append-only, hash-chained, verifiable.

Each entry carries the SHA-256 of its own canonical content and of the entry
before it. A one-row head table holds the last sequence number and hash: it is
locked while appending (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite
transactions are already serialised by ``BEGIN IMMEDIATE``) so that two
transactions can never chain onto the same predecessor, and it lets
``verify_chain`` notice a truncated tail.

``record`` only notes an entry in its session; the entries are chained and written
when the transaction commits (``seal``, run by the session's ``before_commit``), so
the head is locked from that moment to the commit, not from a transaction's first
entry to its end. Held for a whole re-plan batch or a posted need, the lock made every
operator's accept wait behind it (the load benchmark's slowest accepts). A transaction
that rolls back drops its notes with the rest of its work.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, String, Text, event, select
from sqlalchemy.orm import Mapped, Session, SessionTransaction, mapped_column

from core.clock import utcnow
from core.db import Base
from core.identity import Actor

GENESIS_HASH = "0" * 64


class AuditEntry(Base):
    __tablename__ = "audit_entries"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    actor_id: Mapped[UUID | None]
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64), index=True)
    # Canonical JSON text, hashed as stored: a JSON column could normalise it
    # differently on SQLite and PostgreSQL and break verification.
    data_json: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    @property
    def data(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.data_json)
        return value


class AuditHead(Base):
    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(64), default=GENESIS_HASH)


def _plain(value: Any) -> Any:
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return value


def canonical_json(data: dict[str, Any]) -> str:
    return json.dumps(_plain(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(
    *,
    seq: int,
    at: datetime,
    actor_id: UUID | None,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str,
    data_json: str,
    prev_hash: str,
) -> str:
    body = canonical_json(
        {
            "seq": seq,
            "at": at.isoformat(),
            "actor_id": str(actor_id) if actor_id else None,
            "actor": actor,
            "action": action,
            "entity_type": entity_type,
            "entity_id": entity_id,
            "data": data_json,
            "prev": prev_hash,
        }
    )
    return hashlib.sha256(body.encode()).hexdigest()


def _lock_head(session: Session) -> AuditHead:
    head = session.scalar(select(AuditHead).where(AuditHead.id == 1).with_for_update())
    if head is None:
        head = AuditHead(id=1, last_seq=0, last_hash=GENESIS_HASH)
        session.add(head)
        session.flush()
    return head


@dataclass(frozen=True, slots=True)
class _Pending:
    actor_id: UUID | None
    actor: str
    action: str
    entity_type: str
    entity_id: str
    data_json: str


_PENDING = "distrifab_audit_pending"


def record(
    session: Session,
    *,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: object,
    data: dict[str, Any] | None = None,
) -> None:
    """Note one entry in the caller's transaction; it is chained and written when the
    transaction commits (or by an explicit ``seal``), and dropped if it rolls back."""
    if not session.in_transaction():
        # So that a rollback before anything else was done still ends a transaction,
        # and drops this entry with it (no database work: the session begins lazily).
        session.begin()
    pending: list[_Pending] = session.info.setdefault(_PENDING, [])
    pending.append(
        _Pending(
            actor_id=actor.user_id,
            actor=actor.username,
            action=action,
            entity_type=entity_type,
            entity_id=str(entity_id),
            data_json=canonical_json(data or {}),
        )
    )


def seal(session: Session) -> list[AuditEntry]:
    """Chain and write the entries noted so far in this transaction (flush, no commit).
    From here to the commit the head stays locked: call it last."""
    pending: list[_Pending] = session.info.pop(_PENDING, [])
    if not pending:
        return []
    head = _lock_head(session)
    at = utcnow()  # the commit's time: the moment the entries become true for others
    entries = []
    for note in pending:
        seq = head.last_seq + 1
        fields: dict[str, Any] = {
            "seq": seq,
            "at": at,
            "actor_id": note.actor_id,
            "actor": note.actor,
            "action": note.action,
            "entity_type": note.entity_type,
            "entity_id": note.entity_id,
            "data_json": note.data_json,
            "prev_hash": head.last_hash,
        }
        digest = entry_hash(**fields)
        entries.append(AuditEntry(**fields, hash=digest))
        head.last_seq = seq
        head.last_hash = digest
    session.add_all(entries)
    session.flush()
    return entries


def pending_entries(session: Session) -> int:
    """How many entries this session's transaction will write when it commits."""
    return len(session.info.get(_PENDING, ()))


@event.listens_for(Session, "before_commit")
def _seal_before_commit(session: Session) -> None:
    seal(session)


@event.listens_for(Session, "after_transaction_end")
def _drop_unsealed(session: Session, transaction: SessionTransaction) -> None:
    # A rolled-back (or closed) transaction loses its entries with its changes; after a
    # commit the list is already empty.
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


@dataclass(frozen=True, slots=True)
class ChainProblem:
    seq: int | None
    kind: str  # "edited", "missing", "reordered", "tail_truncated", "head_mismatch"
    detail: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    entries: int
    problems: tuple[ChainProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def _iter_entries(session: Session, batch: int = 5000) -> Iterator[AuditEntry]:
    last = 0
    while True:
        rows = list(
            session.scalars(
                select(AuditEntry)
                .where(AuditEntry.seq > last)
                .order_by(AuditEntry.seq)
                .limit(batch)
            )
        )
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def verify_chain(session: Session) -> ChainReport:
    """Recompute every hash and link; report each break with the sequence number where it is."""
    problems: list[ChainProblem] = []
    expected_prev = GENESIS_HASH
    expected_seq = 1
    count = 0
    last_hash = GENESIS_HASH
    last_seq = 0
    for entry in _iter_entries(session):
        count += 1
        recomputed = entry_hash(
            seq=entry.seq,
            at=entry.at,
            actor_id=entry.actor_id,
            actor=entry.actor,
            action=entry.action,
            entity_type=entry.entity_type,
            entity_id=entry.entity_id,
            data_json=entry.data_json,
            prev_hash=entry.prev_hash,
        )
        if entry.seq != expected_seq:
            problems.append(
                ChainProblem(
                    entry.seq,
                    "missing",
                    f"entries {expected_seq} to {entry.seq - 1} are missing",
                )
            )
        if recomputed != entry.hash:
            problems.append(
                ChainProblem(entry.seq, "edited", f"entry {entry.seq} does not match its hash")
            )
        elif entry.prev_hash != expected_prev and entry.seq == expected_seq:
            problems.append(
                ChainProblem(
                    entry.seq,
                    "reordered",
                    f"entry {entry.seq} does not follow the entry before it",
                )
            )
        expected_prev = entry.hash
        expected_seq = entry.seq + 1
        last_hash = entry.hash
        last_seq = entry.seq
    head = session.get(AuditHead, 1)
    if head is not None and (head.last_seq, head.last_hash) != (last_seq, last_hash):
        if head.last_seq > last_seq:
            problems.append(
                ChainProblem(
                    last_seq + 1,
                    "tail_truncated",
                    f"entries {last_seq + 1} to {head.last_seq} are missing from the end",
                )
            )
        else:
            problems.append(
                ChainProblem(None, "head_mismatch", "the chain head does not match the last entry")
            )
    return ChainReport(entries=count, problems=tuple(problems))


def find_entries(
    session: Session,
    *,
    entity_type: str | None = None,
    entity_id: str | None = None,
    since_seq: int = 0,
    limit: int = 200,
) -> list[AuditEntry]:
    query = select(AuditEntry).where(AuditEntry.seq > since_seq)
    if entity_type:
        query = query.where(AuditEntry.entity_type == entity_type)
    if entity_id:
        query = query.where(AuditEntry.entity_id == entity_id)
    return list(session.scalars(query.order_by(AuditEntry.seq).limit(limit)))
