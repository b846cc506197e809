"""One translation layer for pages, CLI messages, API error titles and certificates.

Catalogues are gettext ``.po`` files under ``core/locales/<lang>/LC_MESSAGES/``,
one per area (``distrifab.po``, ``web.po``, ...), merged and read with Babel at
first use (no compile step, so a checkout runs as is).
English is the source language; French is the users' language.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po

LANGUAGES = ("fr", "en")
DEFAULT_LANGUAGE = "en"
_LOCALES = Path(__file__).parent / "locales"
_current: ContextVar[str] = ContextVar("distrifab_language", default=DEFAULT_LANGUAGE)


@cache
def _catalogue(language: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for path in sorted((_LOCALES / language / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as handle:
            catalog = read_po(handle, locale=language)
        merged.update(
            (message.id, str(message.string))
            for message in catalog
            if message.id and isinstance(message.id, str) and message.string
        )
    return merged


def normalise_language(value: str | None) -> str | None:
    if not value:
        return None
    code = value.strip().lower().replace("_", "-").split("-")[0]
    return code if code in LANGUAGES else None


def language_from_accept(header: str | None) -> str | None:
    """The first supported language of an Accept-Language header, by quality."""
    if not header:
        return None
    ranked: list[tuple[float, str]] = []
    for part in header.split(","):
        token, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        language = normalise_language(token)
        if language:
            ranked.append((quality, language))
    ranked.sort(key=lambda item: -item[0])
    return ranked[0][1] if ranked else None


def language_from_environment() -> str:
    for variable in ("DISTRIFAB_LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        language = normalise_language(os.environ.get(variable))
        if language:
            return language
    return DEFAULT_LANGUAGE


def get_language() -> str:
    return _current.get()


def set_language(language: str) -> None:
    _current.set(normalise_language(language) or DEFAULT_LANGUAGE)


@contextmanager
def using_language(language: str | None) -> Iterator[None]:
    token = _current.set(normalise_language(language) or DEFAULT_LANGUAGE)
    try:
        yield
    finally:
        _current.reset(token)


def translate(message: str, language: str | None = None, **values: Any) -> str:
    chosen = normalise_language(language) or _current.get()
    text = _catalogue(chosen).get(message, message)
    return text.format(**values) if values else text


def _(message: str, **values: Any) -> str:
    """Translate ``message`` into the current language, then fill ``{name}`` fields."""
    return translate(message, **values)


def N_(message: str) -> str:
    """Mark a string for extraction without translating it yet (module constants)."""
    return message
