"""Every user-facing string marked in the code and templates has a French translation."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

from core.i18n import _, _catalogue, language_from_accept, translate, using_language

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "catalog", "scheduler", "printers", "quality", "api")
METHOD_MAP = [("**.py", "python"), ("**/templates/**.html", "jinja2")]


def marked_messages() -> set[str]:
    found: set[str] = set()
    for package in PACKAGES:
        for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT / package,
            method_map=METHOD_MAP,
            keywords={"_": None, "N_": None, "translate": (1,)},
            options_map={"**/templates/**.html": {"extensions": "jinja2.ext.do"}},
        ):
            if isinstance(message, str) and message:
                found.add(message)
    return found


def test_every_marked_message_has_a_french_translation() -> None:
    french = _catalogue("fr")
    missing = sorted(m for m in marked_messages() if m not in french)
    assert not missing, "messages without a French translation:\n" + "\n".join(missing)


def test_the_extractor_finds_messages() -> None:
    # A guard against an extractor that silently finds nothing (the test above would pass).
    assert "Authentication required" in marked_messages()


def test_translation_follows_the_current_language() -> None:
    with using_language("fr"):
        assert _("Not found") == "Introuvable"
    with using_language("en"):
        assert _("Not found") == "Not found"
    assert translate("entry {seq}: {detail}", "fr", seq=3, detail="x") == "entrée 3 : x"


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("fr-FR,fr;q=0.9,en;q=0.8", "fr"),
        ("en-GB,en;q=0.9", "en"),
        ("de-DE, en;q=0.5", "en"),
        ("de", None),
        ("", None),
    ],
)
def test_accept_language(header: str, language: str | None) -> None:
    assert language_from_accept(header) == language
