"""Backups: one archive holding a consistent snapshot of the database and the stored files.

The archive is a gzipped tar with a ``manifest.json`` that lists every member with its
size and SHA-256, the schema revision and each table's row count:

- SQLite: ``database/distrifab.sqlite``, a copy made with SQLite's online backup API
  (consistent while the server keeps writing);
- PostgreSQL: ``database/<table>.jsonl``, every table read in one REPEATABLE READ,
  READ ONLY transaction, so all tables come from the same instant;
- ``blobs/aa/bb/<sha256>``: model files and G-code, copied after the database snapshot,
  so every file a snapshot row names is in the archive (files are never changed, only
  added).

Restore checks the whole archive before changing anything (manifest, checksums, each
file's content hash, schema revision, the secret key printer keys were encrypted with),
then writes the files and replaces every row in one transaction, and verifies the row
counts and the audit chain before committing. Either backend restores into either.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import os
import re
import sqlite3
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import structlog
from sqlalchemy import Column, Engine, LargeBinary, MetaData, Table, create_engine, delete, select
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeDecorator

from core.audit import verify_chain
from core.clock import utcnow
from core.db import Database, load_models
from core.errors import DomainError, Invalid
from core.migrate import alembic_config, current_revision, upgrade
from core.storage import BlobStore, content_hash

log = structlog.get_logger()

FORMAT = "distrifab-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SQLITE_MEMBER = "database/distrifab.sqlite"
BATCH_ROWS = 1000
_BLOB_MEMBER = re.compile(r"blobs/[0-9a-f]{2}/[0-9a-f]{2}/([0-9a-f]{64})")
_TABLE_MEMBER = re.compile(r"database/([a-z_][a-z0-9_]*)\.jsonl")


class BackupRefused(DomainError):
    """The archive is not one this distrifab can restore, or not intact."""

    code = "backup_refused"


@dataclass(frozen=True, slots=True)
class BackupReport:
    path: Path
    tables: dict[str, int]
    blobs: int
    size_bytes: int


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def key_check(secret_key: str) -> str:
    """A fingerprint of the secret key (not the key): restore refuses another key."""
    return hmac.new(secret_key.encode(), b"distrifab/backup/key-check", "sha256").hexdigest()[:16]


# --- values in JSON lines -------------------------------------------------------------


def _encode(value: Any) -> Any:
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.name  # SQLAlchemy's Enum stores and takes the member's name
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def _decoder(column: Column[Any]) -> Any:
    kind = column.type
    if isinstance(kind, TypeDecorator):
        kind = kind.impl_instance  # UtcDateTime: decoded as the datetime it wraps
    if isinstance(kind, LargeBinary):
        return base64.b64decode
    try:
        python_type = kind.python_type
    except NotImplementedError:
        return None
    if python_type is UUID:
        return UUID
    if python_type is datetime:
        return datetime.fromisoformat
    if python_type is date:
        return date.fromisoformat
    if python_type is Decimal:
        return Decimal
    if isinstance(python_type, type) and issubclass(python_type, Enum):
        return lambda name: python_type[name]
    return None


def _decode_row(table: Table, raw: dict[str, Any]) -> dict[str, Any]:
    row = {}
    for column in table.columns:
        value = raw.get(column.name)
        decode = _decoder(column)
        row[column.name] = decode(value) if value is not None and decode else value
    return row


# --- backup ------------------------------------------------------------------------------


def _add(archive: tarfile.TarFile, name: str, data: bytes, files: dict[str, Any]) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(utcnow().timestamp())
    info.mode = 0o600
    archive.addfile(info, io.BytesIO(data))
    files[name] = {"size": len(data), "sha256": content_hash(data)}


def _sqlite_snapshot(engine: Engine, target: Path) -> None:
    database = engine.url.database
    assert database, "an in-memory SQLite database cannot be backed up"
    # The online backup API copies a consistent state page by page while writers go on.
    with sqlite3.connect(database) as source, sqlite3.connect(target) as copy:
        source.backup(copy)


def _postgres_rows(connection: Connection, metadata: MetaData) -> Iterator[tuple[str, bytes, int]]:
    for table in metadata.sorted_tables:
        lines = []
        for row in connection.execute(select(table)).mappings():
            lines.append(json.dumps({k: _encode(v) for k, v in row.items()}, ensure_ascii=False))
        body = ("\n".join(lines) + ("\n" if lines else "")).encode()
        yield table.name, body, len(lines)


def _sqlite_counts(path: Path, metadata: MetaData) -> dict[str, int]:
    with sqlite3.connect(path) as connection:
        return {
            table.name: connection.execute(f'SELECT count(*) FROM "{table.name}"').fetchone()[0]  # noqa: S608  # table names from our own metadata
            for table in metadata.sorted_tables
        }


def backup(db: Database, store: BlobStore, target: Path, *, secret_key: str) -> BackupReport:
    """Write a backup archive of ``db`` and ``store`` to ``target`` (replaced atomically,
    readable by its owner only: it holds password hashes and encrypted printer keys)."""
    metadata = load_models()
    revision = current_revision(db.engine)
    if revision is None:
        raise Invalid("the database has no schema yet: nothing to back up")
    files: dict[str, Any] = {}
    tables: dict[str, int] = {}
    target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=".backup-", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as archive:
            if db.is_sqlite:
                with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
                    snapshot = Path(scratch) / "snapshot.sqlite"
                    _sqlite_snapshot(db.engine, snapshot)
                    tables = _sqlite_counts(snapshot, metadata)
                    _add(archive, SQLITE_MEMBER, snapshot.read_bytes(), files)
                kind = "sqlite-file"
            else:
                with db.engine.connect() as connection:
                    connection = connection.execution_options(
                        isolation_level="REPEATABLE READ", postgresql_readonly=True
                    )
                    with connection.begin():
                        for name, body, count in _postgres_rows(connection, metadata):
                            _add(archive, f"database/{name}.jsonl", body, files)
                            tables[name] = count
                kind = "jsonl"
            blobs = 0
            for path in sorted(store.root.glob("*/*/*")):
                if not path.is_file() or len(path.name) != 64:
                    continue  # a temporary file of a write in progress
                data = path.read_bytes()
                if content_hash(data) != path.name:
                    raise Invalid(f"the stored file {path.name} does not match its hash")
                _add(archive, f"blobs/{path.name[:2]}/{path.name[2:4]}/{path.name}", data, files)
                blobs += 1
            manifest = {
                "format": FORMAT,
                "version": FORMAT_VERSION,
                "created_at": utcnow().isoformat(),
                "revision": revision,
                "database": {"dialect": db.engine.dialect.name, "kind": kind},
                "tables": tables,
                "blobs": blobs,
                "key_check": key_check(secret_key),
                "files": files,
            }
            data = json.dumps(manifest, indent=2, sort_keys=True).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size = len(data)
            info.mode = 0o600
            archive.addfile(info, io.BytesIO(data))
        os.chmod(partial, 0o600)
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    size = target.stat().st_size
    log.info("backup_written", path=str(target), blobs=blobs, size_bytes=size)
    return BackupReport(path=target, tables=tables, blobs=blobs, size_bytes=size)


# --- restore -----------------------------------------------------------------------------


@dataclass
class _Unpacked:
    manifest: dict[str, Any]
    root: Path  # where the verified members were written


def _read_manifest(archive: tarfile.TarFile, source: Path) -> dict[str, Any]:
    try:
        member = archive.getmember(MANIFEST)
        handle = archive.extractfile(member)
        assert handle is not None
        manifest: dict[str, Any] = json.loads(handle.read())
    except (KeyError, AssertionError, ValueError) as exc:
        # The manifest is written last: a truncated or damaged archive loses it first.
        raise BackupRefused(
            f"{source} is damaged or not a distrifab backup: its manifest cannot be read"
        ) from exc
    if manifest.get("format") != FORMAT or not isinstance(manifest.get("files"), dict):
        raise BackupRefused(f"{source} is not a distrifab backup")
    if manifest.get("version") != FORMAT_VERSION:
        raise BackupRefused(
            f"{source} is a backup of format {manifest.get('version')}; "
            f"this distrifab reads format {FORMAT_VERSION}"
        )
    return manifest


def _copy_verified(handle: IO[bytes], target: Path, expected: dict[str, Any], name: str) -> None:
    digest = hashlib.sha256()
    size = 0
    with target.open("wb") as out:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
            if size > int(expected.get("size", -1)):
                break  # longer than the manifest says: corrupt (or a bomb); stop reading
            out.write(chunk)
    if size != expected.get("size") or digest.hexdigest() != expected.get("sha256"):
        raise BackupRefused(f"the archive is damaged: {name} does not match its checksum")


def _unpack(source: Path, scratch: Path) -> _Unpacked:
    try:
        # Opened apart from the ``with`` below so that an unreadable file gets its own message.
        archive = tarfile.open(source, mode="r:gz")  # noqa: SIM115
    except (OSError, tarfile.TarError) as exc:
        raise BackupRefused(f"{source} cannot be read as a backup archive: {exc}") from exc
    try:
        with archive:
            manifest = _read_manifest(archive, source)
            listed: dict[str, Any] = manifest["files"]
            seen: set[str] = set()
            for member in archive:
                name = member.name
                if name == MANIFEST:
                    continue
                allowed = (
                    name == SQLITE_MEMBER
                    or _TABLE_MEMBER.fullmatch(name)
                    or _BLOB_MEMBER.fullmatch(name)
                )
                if not member.isfile() or not allowed or name not in listed or name in seen:
                    raise BackupRefused(f"the archive holds an unexpected entry: {name!r}")
                handle = archive.extractfile(member)
                assert handle is not None
                target = scratch / name
                target.parent.mkdir(parents=True, exist_ok=True)
                _copy_verified(handle, target, listed[name], name)
                blob = _BLOB_MEMBER.fullmatch(name)
                if blob and listed[name]["sha256"] != blob.group(1):
                    raise BackupRefused(f"the archive is damaged: {name} is not the file it names")
                seen.add(name)
    except (OSError, EOFError, tarfile.TarError, zlib.error) as exc:
        raise BackupRefused(f"the archive {source} is damaged: {exc}") from exc
    missing = set(listed) - seen
    if missing:
        raise BackupRefused(f"the archive is incomplete: {sorted(missing)[0]} is missing")
    return _Unpacked(manifest=manifest, root=scratch)


def _source_rows(unpacked: _Unpacked, table: Table) -> Iterator[list[dict[str, Any]]]:
    """The table's rows from the archive, in batches, as typed Python values."""
    kind = unpacked.manifest["database"]["kind"]
    if kind == "sqlite-file":
        engine = create_engine(f"sqlite:///{unpacked.root / SQLITE_MEMBER}")
        try:
            with engine.connect() as connection:
                result = connection.execute(select(table)).mappings()
                while rows := result.fetchmany(BATCH_ROWS):
                    yield [dict(row) for row in rows]
        finally:
            engine.dispose()
        return
    path = unpacked.root / f"database/{table.name}.jsonl"
    if not path.exists():
        return
    batch: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            batch.append(_decode_row(table, json.loads(line)))
            if len(batch) >= BATCH_ROWS:
                yield batch
                batch = []
    if batch:
        yield batch


def _holds_data(connection: Connection, metadata: MetaData) -> bool:
    for name in ("users", "audit_entries"):
        if connection.execute(select(metadata.tables[name]).limit(1)).first() is not None:
            return True
    return False


def restore(
    db: Database,
    store: BlobStore,
    source: Path,
    *,
    secret_key: str,
    replace: bool = False,
) -> dict[str, int]:
    """Restore ``source`` into ``db`` and ``store``; returns the rows restored per table.

    Raises :class:`BackupRefused` (nothing changed) when the archive is not intact, is
    of another schema revision, was made with another secret key while it holds printer
    keys, or when the database holds data and ``replace`` is false."""
    metadata = load_models()
    with tempfile.TemporaryDirectory(prefix="distrifab-restore-") as scratch:
        unpacked = _unpack(source, Path(scratch))
        manifest = unpacked.manifest
        expected = head_revision()
        if manifest.get("revision") != expected:
            raise BackupRefused(
                f"the archive is at schema revision {manifest.get('revision')}; this "
                f"distrifab is at {expected}: restore it with the version that made it"
            )
        counts: dict[str, int] = manifest.get("tables", {})
        unknown = set(counts) - set(metadata.tables)
        if unknown:
            raise BackupRefused(f"the archive holds a table this distrifab lacks: {min(unknown)}")
        if counts.get("printers", 0) and manifest.get("key_check") != key_check(secret_key):
            raise BackupRefused(
                "the archive's printer API keys were encrypted with another "
                "DISTRIFAB_SECRET_KEY: set the key of the backed-up deployment first"
            )
        upgrade(db.engine)
        # Files first: a stored file nobody names is harmless, a row naming a missing
        # file is not. BlobStore.put is idempotent and checks nothing is half-written.
        for path in sorted((unpacked.root / "blobs").glob("*/*/*")):
            if not store.exists(path.name):
                store.put(path.read_bytes())
        restored: dict[str, int] = {}
        with db.engine.connect() as connection, connection.begin() as transaction:
            if _holds_data(connection, metadata) and not replace:
                raise BackupRefused(
                    "the database already holds data: restore into an empty database, "
                    "or pass --replace to overwrite it"
                )
            for table in reversed(metadata.sorted_tables):
                connection.execute(delete(table))
            for table in metadata.sorted_tables:
                restored[table.name] = 0
                for batch in _source_rows(unpacked, table):
                    connection.execute(table.insert(), batch)
                    restored[table.name] += len(batch)
            differing = [name for name, count in counts.items() if restored.get(name) != count]
            if differing:
                transaction.rollback()
                raise BackupRefused(
                    f"the restored table {differing[0]} has {restored.get(differing[0])} rows "
                    f"instead of {counts[differing[0]]}: nothing was restored"
                )
            transaction.commit()
    with db.session() as session:
        report = verify_chain(session)
    if not report.ok:
        # The rows are those of the archive; a broken chain was broken before the backup.
        log.warning("restored_audit_chain_broken", problems=len(report.problems))
    log.info("backup_restored", source=str(source), rows=sum(restored.values()))
    return restored
