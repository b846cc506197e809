"""Printer profiles and materials, shipped as JSON data in ``catalog/data/``.

The files are read once per process (they are part of the installed package,
not user data) and turned into the frozen dataclasses of ``catalog.types``.
An unknown or missing field is a packaging bug and fails loudly at load time.
"""

from __future__ import annotations

import dataclasses
import json
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from catalog.types import MaterialSpec, PrinterProfile
from core.errors import NotFound
from core.i18n import _

_T = TypeVar("_T", PrinterProfile, MaterialSpec)
_DATA = Path(__file__).parent / "data"


def _read(name: str) -> dict[str, Any]:
    text = (_DATA / name).read_text(encoding="utf-8")
    entries: dict[str, Any] = json.loads(text)
    return {key: value for key, value in entries.items() if not key.startswith("_")}


def _build(cls: type[_T], key: str, fields: dict[str, Any]) -> _T:
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(f"{cls.__name__} {key!r}: unknown fields {unknown}")
    return cls(key=key, **fields)


@cache
def _profiles() -> tuple[PrinterProfile, ...]:
    entries = _read("printers.json")
    return tuple(_build(PrinterProfile, key, fields) for key, fields in entries.items())


@cache
def _materials() -> tuple[MaterialSpec, ...]:
    entries = _read("materials.json")
    return tuple(_build(MaterialSpec, key, fields) for key, fields in entries.items())


def load_profiles() -> dict[str, PrinterProfile]:
    """Every shipped printer profile by key (a fresh dict; the profiles are frozen)."""
    return {profile.key: profile for profile in _profiles()}


def load_materials() -> dict[str, MaterialSpec]:
    """Every shipped material by key ("PLA", "PETG", "ABS")."""
    return {material.key: material for material in _materials()}


def get_profile(key: str) -> PrinterProfile:
    """The profile ``key``; raises ``NotFound`` naming the valid keys."""
    profiles = load_profiles()
    try:
        return profiles[key]
    except KeyError:
        raise NotFound(
            _(
                "Unknown printer profile {key}; known profiles: {known}.",
                key=repr(key),
                known=", ".join(sorted(profiles)),
            ),
            key=key,
        ) from None


def get_material(key: str) -> MaterialSpec:
    """The material ``key`` (case-insensitive); raises ``NotFound`` naming the valid keys."""
    materials = load_materials()
    found = materials.get(key) or materials.get(key.upper())
    if found is None:
        raise NotFound(
            _(
                "Unknown material {key}; known materials: {known}.",
                key=repr(key),
                known=", ".join(sorted(materials)),
            ),
            key=key,
        )
    return found
