"""The command line: real processes, one readable line and a non-zero exit on bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

DISTRIFAB = str(Path(sys.executable).parent / "distrifab")


def run(tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DISTRIFAB_DATA_DIR": str(tmp_path / "data"), "DISTRIFAB_LANGUAGE": "en"}
    env.pop("DISTRIFAB_REDIS_URL", None)
    return subprocess.run(
        [DISTRIFAB, *args],
        env=env,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        check=False,
    )


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = run(tmp_path, "--help")
    assert result.returncode == 0
    for command in ("serve", "demo", "db", "user", "worker", "beat", "audit", "slice", "plan"):
        assert command in result.stdout


def test_first_admin_then_audit_verify(tmp_path: Path) -> None:
    upgrade = run(tmp_path, "db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    assert "revision 0001" in upgrade.stdout or "revision" in upgrade.stdout
    added = run(tmp_path, "user", "add", "claire", "--role", "admin", "--password", "visiere-2020")
    assert added.returncode == 0, added.stderr
    assert "claire" in added.stdout
    verified = run(tmp_path, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert "1 entries" in verified.stdout


def test_tampering_is_reported_with_exit_code_3(tmp_path: Path) -> None:
    assert (
        run(
            tmp_path, "user", "add", "claire", "--role", "admin", "--password", "visiere-2020"
        ).returncode
        == 0
    )
    assert (
        run(
            tmp_path, "user", "add", "marc", "--role", "auditor", "--password", "visiere-2020"
        ).returncode
        == 0
    )
    engine = create_engine(f"sqlite:///{tmp_path / 'data' / 'distrifab.db'}")
    with engine.begin() as connection:
        connection.execute(text("UPDATE audit_entries SET actor = 'mallory' WHERE seq = 1"))
    engine.dispose()
    result = run(tmp_path, "audit", "verify")
    assert result.returncode == 3
    assert "entry 1" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("user", "add", "x", "--role", "emperor", "--password", "long-enough"),
            "unknown role emperor",
        ),
        (("user", "add", "x", "--role", "admin", "--password", "short"), "at least 8 characters"),
        (
            (
                "user",
                "add",
                "x",
                "--role",
                "operator",
                "--password",
                "long-enough",
                "--site",
                "Nowhere",
            ),
            "no site named Nowhere",
        ),
        (("user", "add", "bad name", "--role", "admin", "--password", "long-enough"), "username"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = run(tmp_path, *args)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_messages_follow_the_language(tmp_path: Path) -> None:
    env_fr = {"DISTRIFAB_LANGUAGE": "fr"}
    result = subprocess.run(
        [DISTRIFAB, "user", "add", "x", "--role", "emperor", "--password", "long-enough"],
        env={**os.environ, "DISTRIFAB_DATA_DIR": str(tmp_path / "data"), **env_fr},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "rôle inconnu emperor" in result.stderr


def test_distributed_mode_without_secret_is_refused(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DISTRIFAB_DATA_DIR": str(tmp_path / "data"),
        "DISTRIFAB_REDIS_URL": "redis://127.0.0.1:6379/0",
    }
    env.pop("DISTRIFAB_SECRET_KEY", None)
    result = subprocess.run(
        [DISTRIFAB, "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "DISTRIFAB_SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr


def test_catalogue_from_the_command_line(tmp_path: Path) -> None:
    from catalog.demo_parts import ear_saver
    from tests.factories import stl_bytes

    model = tmp_path / "ear-saver.stl"
    model.write_bytes(stl_bytes(ear_saver()))
    broken = tmp_path / "broken.stl"
    broken.write_bytes(b"solid x\nendsolid x\n")
    assert run(tmp_path, "part", "add", "Attache-masque").returncode == 0
    refused = run(tmp_path, "part", "upload", "Attache-masque", str(broken))
    assert refused.returncode != 0
    assert len([line for line in refused.stderr.splitlines() if line.strip()]) == 1
    uploaded = run(
        tmp_path, "part", "upload", "Attache-masque", str(model), "--licence", "CC-BY-4.0", "--json"
    )
    assert uploaded.returncode == 0, uploaded.stderr
    version = json.loads(uploaded.stdout)
    assert version["status"] == "draft"
    assert version["copies_per_profile"]["prusa-mk3s"] >= 1
    approved = run(tmp_path, "part", "approve", version["id"])
    assert approved.returncode == 0, approved.stderr
    listed = json.loads(run(tmp_path, "part", "list", "--json").stdout)
    assert [(p["part"], [v["status"] for v in p["versions"]]) for p in listed] == [
        ("Attache-masque", ["approved"])
    ]
    blobs = [p for p in (tmp_path / "data" / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == 1  # the broken file left nothing
    missing = run(tmp_path, "part", "upload", "Nothing", str(model))
    assert missing.returncode != 0
    assert "no part named Nothing" in missing.stderr
