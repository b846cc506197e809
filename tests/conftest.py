"""Shared test configuration: real services, one plugin module per concern."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher

import core.identity

pytest_plugins: list[str] = [
    "tests.fixtures.octoprint",
    "tests.fixtures.database",
    "tests.fixtures.services",
]


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashing() -> Iterator[None]:
    """Still argon2id, with the smallest cost: production's 64 MiB x 3 passes would
    spend most of the suite's time hashing test passwords."""
    original = core.identity._hasher
    core.identity._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    yield
    core.identity._hasher = original
