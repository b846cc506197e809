"""``distrifab backup`` and ``distrifab restore``: a round trip loses nothing, and a damaged
or mismatched archive is refused with one readable line before anything changes."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from core.audit import verify_chain
from core.backup import BackupRefused, backup, restore
from core.db import Base, Database
from core.runtime import Runtime
from core.storage import BlobStore
from printers.simulator.fleet import RunningSimulator, SimulatedFleet, serve_in_thread
from tests.fixtures.database import TEST_SECRET
from tests.fixtures.services import PostgresServer
from tests.trust.world import PASSWORD, World, build_world

pytestmark = pytest.mark.slow
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def simulator() -> Iterator[RunningSimulator]:
    with serve_in_thread(SimulatedFleet(5, seed="backup", time_scale=1.0)) as running:
        yield running


def cli(args: list[str], *, database_url: str, data_dir: Path, secret: str = TEST_SECRET) -> Any:
    env = {
        **os.environ,
        "DISTRIFAB_DATABASE_URL": database_url,
        "DISTRIFAB_DATA_DIR": str(data_dir),
        "DISTRIFAB_SECRET_KEY": secret,
        "DISTRIFAB_LANGUAGE": "en",
    }
    return subprocess.run(
        [str(VENV_BIN / "distrifab"), *args], env=env, capture_output=True, text=True, timeout=300
    )


def everything(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order, as typed values."""
    found = {}
    with db.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            rows = connection.execute(select(table).order_by(*table.primary_key.columns)).all()
            found[table.name] = [tuple(row) for row in rows]
    return found


def blobs(store: BlobStore) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in store.root.glob("*/*/*") if len(p.name) == 64}


@pytest.fixture
def world(runtime: Runtime, simulator: RunningSimulator) -> World:
    return build_world(runtime, simulator)


def test_a_round_trip_loses_nothing(
    world: World, runtime: Runtime, private_postgres: PostgresServer, tmp_path: Path
) -> None:
    archive = tmp_path / "backup.tar.gz"
    made = cli(
        ["backup", str(archive)],
        database_url=runtime.settings.resolved_database_url,
        data_dir=runtime.settings.data_dir,
    )
    assert made.returncode == 0, made.stderr
    assert "Backup written" in made.stdout
    assert archive.stat().st_mode & 0o077 == 0  # password hashes inside: owner only
    before, files = everything(runtime.db), blobs(runtime.store)
    assert all(before[name] for name in ("jobs", "audit_entries", "certificates"))
    assert len(files) >= 3  # two design versions and G-code at least

    # Into an empty SQLite file and into an empty PostgreSQL database, whatever the source.
    for target_url in (f"sqlite:///{tmp_path / 'restored.db'}", private_postgres.create_database()):
        data_dir = tmp_path / f"restored-{len(target_url)}"
        done = cli(["restore", str(archive)], database_url=target_url, data_dir=data_dir)
        assert done.returncode == 0, done.stderr
        restored_db = Database(target_url)
        try:
            after = everything(restored_db)
            assert after == before
            assert blobs(BlobStore(data_dir / "blobs")) == files
            with restored_db.session() as session:
                report = verify_chain(session)
            assert report.ok
            assert report.entries == len(before["audit_entries"])
            # The restored deployment works: people sign in, certificates still verify.
            restored = Runtime(
                settings=runtime.settings.model_copy(
                    update={"database_url": target_url, "data_dir": data_dir}
                ),
                db=restored_db,
                store=BlobStore(data_dir / "blobs"),
                secret_key=TEST_SECRET,
            )
            with TestClient(create_app(restored, background=False)) as client:
                token = client.post(
                    "/api/v1/auth/token",
                    json={"username": world.usernames["auditor"], "password": PASSWORD},
                ).json()["access_token"]
                check = client.get(
                    f"/api/v1/deliveries/{world.ids['delivery']}/certificate/verification",
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert check.status_code == 200, check.text
                assert check.json()["ok"] is True
        finally:
            restored_db.dispose()


def _rewrite(archive: Path, target: Path, change: Any) -> None:
    """Copy ``archive`` to ``target``, letting ``change(name, data)`` alter members."""
    with tarfile.open(archive, "r:gz") as source, tarfile.open(target, "w:gz") as out:
        for member in source:
            handle = source.extractfile(member)
            assert handle is not None
            data = change(member.name, handle.read())
            if data is None:
                continue
            info = tarfile.TarInfo(member.name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))


def _manifest(edit: Any) -> Any:
    def change(name: str, data: bytes) -> bytes:
        if name != "manifest.json":
            return data
        manifest = json.loads(data)
        edit(manifest)
        return json.dumps(manifest).encode()

    return change


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_damaged_or_mismatched_archive_is_refused_and_changes_nothing(
    world: World, runtime: Runtime, tmp_path: Path
) -> None:
    archive = tmp_path / "good.tar.gz"
    backup(runtime.db, runtime.store, archive, secret_key=TEST_SECRET)
    target_url = f"sqlite:///{tmp_path / 'target.db'}"
    target = Database(target_url)
    store = BlobStore(tmp_path / "target-blobs")
    store.root.mkdir()

    def flip_a_byte(path: Path) -> None:
        raw = bytearray(archive.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        path.write_bytes(bytes(raw))

    def tampered_gcode(name: str, data: bytes) -> bytes:
        return data + b"G1 Z-5\n" if name.startswith("blobs/") else data

    def smuggled(name: str, data: bytes) -> bytes:
        return data

    cases: dict[str, Any] = {
        "damaged": flip_a_byte,
        "tampered": lambda p: _rewrite(archive, p, tampered_gcode),
        "other revision": lambda p: _rewrite(
            archive, p, _manifest(lambda m: m.update(revision="0000older"))
        ),
        "missing member": lambda p: _rewrite(
            archive, p, lambda n, d: None if n.startswith("blobs/") else d
        ),
        "not a backup": lambda p: p.write_bytes(gzip.compress(b"hello")),
        "other key": lambda p: _rewrite(
            archive, p, _manifest(lambda m: m.update(key_check="0" * 16))
        ),
    }
    for name, make in cases.items():
        broken = tmp_path / f"{name.replace(' ', '-')}.tar.gz"
        make(broken)
        with pytest.raises(BackupRefused):
            restore(target, store, broken, secret_key=TEST_SECRET)
        assert not [p for p in store.root.rglob("*") if p.is_file()], name  # nor any file
    # A path outside the archive's tree is refused too.
    escaping = tmp_path / "escaping.tar.gz"
    with tarfile.open(escaping, "w:gz") as out:
        for entry, data in (
            ("../../evil", b"x"),
            (
                "manifest.json",
                (
                    b'{"format":"distrifab-backup","version":1,"files":{"../../evil":{"size":1,"sha256":"x"}}}'
                ),
            ),
        ):
            info = tarfile.TarInfo(entry)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    with pytest.raises(BackupRefused):
        restore(target, store, escaping, secret_key=TEST_SECRET)
    assert not (tmp_path.parent / "evil").exists()

    # The CLI says it in one line and exits non-zero.
    result = cli(
        ["restore", str(tmp_path / "damaged.tar.gz")],
        database_url=target_url,
        data_dir=tmp_path / "cli",
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("distrifab: ")

    # A database holding data is not overwritten unless asked to.
    restore(target, store, archive, secret_key=TEST_SECRET)
    with pytest.raises(BackupRefused, match="--replace"):
        restore(target, store, archive, secret_key=TEST_SECRET)
    assert restore(target, store, archive, secret_key=TEST_SECRET, replace=True)["jobs"] > 0
    assert everything(target) == everything(runtime.db)
    target.dispose()
