"""The audit trail: append-only, hash-chained, verifiable.

Each entry carries the SHA-256 of its own canonical content and of the entry
before it. A one-row head table holds the last sequence number and hash: it is
locked while appending (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite
transactions are already serialised by ``BEGIN IMMEDIATE``) so that two
transactions can never chain onto the same predecessor, and it lets
``verify_chain`` notice a truncated tail.
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

from sqlalchemy import BigInteger, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

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


def record(
    session: Session,
    *,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: object,
    data: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry in the caller's transaction (flush, no commit)."""
    head = _lock_head(session)
    seq = head.last_seq + 1
    at = utcnow()
    data_json = canonical_json(data or {})
    digest = entry_hash(
        seq=seq,
        at=at,
        actor_id=actor.user_id,
        actor=actor.username,
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        data_json=data_json,
        prev_hash=head.last_hash,
    )
    entry = AuditEntry(
        seq=seq,
        at=at,
        actor_id=actor.user_id,
        actor=actor.username,
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        data_json=data_json,
        prev_hash=head.last_hash,
        hash=digest,
    )
    session.add(entry)
    head.last_seq = seq
    head.last_hash = digest
    session.flush()
    return entry


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
