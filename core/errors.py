"""One error tree for every domain rule.

Domain code raises these; only ``api/errors.py`` turns them into HTTP answers
and only the CLI turns them into one readable line. Each class carries a
stable ``code`` (used as the problem+json ``type`` and as the translation key
of its title) and never an HTTP status.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error a user can cause or be told about."""

    code = "domain_error"

    def __init__(self, detail: str, **context: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.context = context

    def __str__(self) -> str:
        return self.detail


class NotFound(DomainError):
    code = "not_found"


class Unauthorized(DomainError):
    """No identity, or one that cannot be proven (bad password, expired token)."""

    code = "unauthorized"


class Forbidden(DomainError):
    """A known identity asking for something its role or sites do not allow."""

    code = "forbidden"


class Invalid(DomainError):
    """Input that is well-formed but breaks a rule (a mesh that is not a mesh, a past deadline)."""

    code = "invalid"


class Conflict(DomainError):
    """The request is valid but the current state does not allow it."""

    code = "conflict"


class IllegalTransition(Conflict):
    code = "illegal_transition"


class TooLarge(Invalid):
    code = "too_large"


class Unavailable(DomainError):
    """A dependency (printer, broker, database) cannot be reached right now."""

    code = "unavailable"
