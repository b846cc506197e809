"""Users, roles, site bindings, passwords (argon2) and API tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING
from uuid import UUID, uuid4

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Column, Enum, ForeignKey, String, Table, select
from sqlalchemy.orm import Mapped, Session, lazyload, mapped_column, relationship

if TYPE_CHECKING:
    from printers.models import Site  # sites live with the printers; type only

from core.clock import utcnow
from core.db import Base
from core.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized


class Role(StrEnum):
    COORDINATOR = "coordinator"
    OPERATOR = "operator"
    AUDITOR = "auditor"
    ADMIN = "admin"


user_sites = Table(
    "user_sites",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("site_id", ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True),
)


class User(Base):
    __tablename__ = "users"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16))
    language: Mapped[str | None] = mapped_column(String(8))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    sites: Mapped[list[Site]] = relationship(secondary=user_sites, lazy="selectin")
    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user", cascade="all")


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    user_id: Mapped[UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # Only a SHA-256 of the token is kept: a stolen database gives no usable token.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="tokens")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting, as the domain sees it: no ORM object crosses this line."""

    user_id: UUID | None
    username: str
    role: Role
    site_ids: frozenset[UUID] = field(default_factory=frozenset)

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        return cls(user_id=None, username=name, role=Role.ADMIN)

    @classmethod
    def of(cls, user: User) -> Actor:
        return cls(
            user_id=user.id,
            username=user.username,
            role=user.role,
            site_ids=frozenset(site.id for site in user.sites),
        )

    @property
    def is_system(self) -> bool:
        return self.user_id is None

    def sees_all_sites(self) -> bool:
        return self.role is not Role.OPERATOR


def require_role(actor: Actor, *roles: Role) -> None:
    if actor.role is Role.ADMIN or actor.role in roles:
        return
    raise Forbidden(
        f"this action needs the role {' or '.join(r.value for r in roles)}; "
        f"{actor.username} is {actor.role.value}"
    )


def require_site(actor: Actor, site_id: UUID) -> None:
    """Acting on a site's objects: its operators and admins only."""
    if actor.role is Role.ADMIN:
        return
    if actor.role is Role.OPERATOR and site_id in actor.site_ids:
        return
    raise Forbidden(f"{actor.username} does not operate this site")


def can_see_site(actor: Actor, site_id: UUID) -> bool:
    return actor.sees_all_sites() or site_id in actor.site_ids


_USERNAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: Role,
    display_name: str = "",
    language: str | None = None,
    sites: Sequence[Site] = (),
) -> User:
    """Flush-only helper: the caller commits (with its audit entry)."""
    username = username.strip()
    if not _USERNAME.fullmatch(username):
        raise Invalid("a username is 1 to 64 letters, digits, dots, dashes or underscores")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"the username {username} is taken")
    if role is Role.OPERATOR and not sites:
        raise Invalid("an operator must be bound to at least one site")
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password),
        role=role,
        language=language,
        sites=list(sites),
    )
    session.add(user)
    session.flush()
    return user


def issue_token(
    session: Session, user: User, *, ttl: timedelta, name: str = ""
) -> tuple[str, ApiToken]:
    """Create an API token for ``user``: the token itself (shown once) and its record,
    which keeps only a digest."""
    token = "dfab_" + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user.id, token_hash=token_digest(token), name=name, expires_at=utcnow() + ttl
    )
    session.add(row)
    session.flush()
    return token, row


def authenticate_password(session: Session, username: str, password: str) -> User:
    # The user alone, its sites left to load on use: a found user must cost the same
    # statements as a missing one (every answer counts them in Server-Timing).
    user = session.scalar(
        select(User).where(User.username == username.strip()).options(lazyload(User.sites))
    )
    # Verify against a dummy hash when the user does not exist, so that timing
    # does not tell which usernames exist.
    if user is None:
        verify_password(_DUMMY_HASH, password)
        raise Unauthorized("wrong username or password")
    if not verify_password(user.password_hash, password) or not user.active:
        raise Unauthorized("wrong username or password")
    return user


def authenticate_token(session: Session, token: str) -> User:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(token)))
    now = utcnow()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        raise Unauthorized("the token is unknown, expired or revoked")
    if not row.user.active:
        raise Unauthorized("this account is disabled")
    return row.user


def authenticate_actor(session: Session, token: str) -> Actor:
    """``Actor.of(authenticate_token(session, token))`` in one query and without ORM
    objects: every API request starts here (it was a quarter of the CPU time of a queue
    listing on the load benchmark)."""
    rows = session.execute(
        select(
            User.id,
            User.username,
            User.role,
            User.active,
            ApiToken.revoked_at,
            ApiToken.expires_at,
            user_sites.c.site_id,
        )
        .select_from(ApiToken)
        .join(User, User.id == ApiToken.user_id)
        .outerjoin(user_sites, user_sites.c.user_id == User.id)
        .where(ApiToken.token_hash == token_digest(token))
    ).all()
    if not rows or rows[0].revoked_at is not None or rows[0].expires_at <= utcnow():
        raise Unauthorized("the token is unknown, expired or revoked")
    first = rows[0]
    if not first.active:
        raise Unauthorized("this account is disabled")
    return Actor(
        user_id=first.id,
        username=first.username,
        role=first.role,
        site_ids=frozenset(row.site_id for row in rows if row.site_id is not None),
    )


def revoke_token(session: Session, token: str) -> None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(token)))
    if row is None:
        raise NotFound("no such token")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    session.flush()


def find_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def get_user(session: Session, user_id: UUID) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    return user


def ensure_can_act(actor: Actor) -> None:
    if actor.role is Role.AUDITOR:
        raise Forbidden("auditors read; they do not change records")


_DUMMY_HASH = _hasher.hash("distrifab-dummy-password")
