"""Hostile uploads and names: refused with a clear problem, quickly, writing nothing.

Oversized bodies, zip bombs inside 3MF, STL headers announcing billions of triangles,
path tricks in file names, and G-code smuggled in through part names."""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from catalog.demo_parts import ear_saver, face_shield_headband
from catalog.models import DesignVersion, SliceRecord
from core.identity import Role
from core.runtime import Runtime, set_runtime
from scheduler.service import slice_open_needs
from tests.factories import make_delivery_point, make_printer, make_site, make_user, stl_bytes
from tests.fixtures.database import make_settings

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

LIMIT = 400_000  # bytes: small, so that "too large" is cheap to send


@pytest.fixture
def small_runtime(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    from catalog.service import seed_reference_data

    runtime = Runtime.from_settings(make_settings(tmp_path, database_url, max_upload_bytes=LIMIT))
    with runtime.db.session() as session:
        seed_reference_data(session)
        session.commit()
    set_runtime(runtime)
    yield runtime
    set_runtime(None)
    runtime.db.dispose()


@pytest.fixture
def client(small_runtime: Runtime) -> Iterator[tuple[TestClient, dict[str, str], str]]:
    with small_runtime.db.session() as session:
        name = make_user(session, Role.COORDINATOR).username
    with TestClient(create_app(small_runtime, background=False)) as client:
        token = client.post(
            "/api/v1/auth/token", json={"username": name, "password": "password-123"}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        part = client.post("/api/v1/parts", json={"name": "visière"}, headers=headers)
        assert part.status_code == 201, part.text
        yield client, headers, part.json()["id"]


def upload(
    client: TestClient, headers: dict[str, str], part_id: str, name: str, data: bytes
) -> tuple[int, dict[str, object]]:
    answer = client.post(
        f"/api/v1/parts/{part_id}/versions", files={"model": (name, data)}, headers=headers
    )
    body = answer.json()
    return answer.status_code, body


def versions(runtime: Runtime) -> int:
    with runtime.db.session() as session:
        return session.scalar(select(func.count(DesignVersion.id))) or 0


def zip_bomb(expanded_bytes: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("3D/3dmodel.model", "w", force_zip64=True) as member:
            chunk = b" " * (1 << 20)
            for _ in range(expanded_bytes // len(chunk)):
                member.write(chunk)
    return buffer.getvalue()


def test_hostile_model_files_are_refused_with_a_clear_problem(
    small_runtime: Runtime, client: tuple[TestClient, dict[str, str], str]
) -> None:
    http, headers, part_id = client
    huge_count = b"\0" * 80 + struct.pack("<I", 4_000_000_000) + b"\0" * 100
    cases = {
        "over the size limit": ("big.stl", b"solid x\n" + b" " * (LIMIT + 10)),
        "zip bomb in a 3MF": ("bomb.3mf", zip_bomb(512 << 20)),
        "STL announcing 4e9 triangles": ("huge.stl", huge_count),
        "ASCII STL of nonsense": ("junk.stl", b"solid x\nfacet normal nan nan\n" * 50),
        "not a model at all": ("evil.exe", b"MZ" + b"\0" * 200),
        "a 3MF that is no zip": ("fake.3mf", b"PK\x03\x04 not really"),
    }
    for what, (name, data) in cases.items():
        status, body = upload(http, headers, part_id, name, data)
        assert status in (413, 422), (what, status, body)
        assert body["type"] != "https://distrifab.org/problems/internal_error", what
        assert isinstance(body["detail"], str)
        assert len(str(body["detail"])) > 10, (what, body)
    assert versions(small_runtime) == 0
    # Beyond the limit by far, refused from its Content-Length before being read at all.
    answer = http.post(
        f"/api/v1/parts/{part_id}/versions",
        content=b"x" * (LIMIT + (2 << 20)),
        headers={**headers, "Content-Type": "multipart/form-data; boundary=x"},
    )
    assert answer.status_code == 413
    assert answer.json()["type"].endswith("/too_large")


def test_path_tricks_in_file_names_are_neutralised(
    small_runtime: Runtime, client: tuple[TestClient, dict[str, str], str], tmp_path: Path
) -> None:
    http, headers, part_id = client
    model = stl_bytes(ear_saver())
    names = [
        "../../../../tmp/distrifab-escape.stl",
        "..\\..\\..\\windows\\escape.stl",
        "/etc/cron.d/escape.stl",
        "C:\\Users\\x\\escape.stl",
        "nul\x00byte.stl",
        "a" * 4000 + ".stl",
        "‮lts.exe",  # right-to-left override: looks like exe.stl
    ]
    stored = []
    for name in names:
        status, body = upload(http, headers, part_id, name, model)
        if status == 201:
            stored.append(str(body["model_file_name"]))
        else:
            assert status == 422, (name, status, body)
    assert stored, "a plain model under a tricky name should still be accepted"
    for name in stored:
        assert "/" not in name
        assert "\\" not in name
        assert ".." not in name
        assert "\x00" not in name
        assert "\u202e" not in name
        assert len(name) <= 255
    assert not Path("/tmp/distrifab-escape.stl").exists()
    assert not Path("/etc/cron.d/escape.stl").exists()
    # The store holds files under their content hash only.
    for path in small_runtime.store.root.rglob("*"):
        if path.is_file():
            assert len(path.name) == 64


def test_gcode_cannot_be_smuggled_in_through_names(
    small_runtime: Runtime, client: tuple[TestClient, dict[str, str], str]
) -> None:
    """Text typed by people (part names, notes, colours, licences) never becomes a
    G-code command: it is refused, or it stays data."""
    http, headers, _part = client
    injected = "Visière\nM104 S300\nM140 S150\nG28 ; \r\nM112"
    answer = http.post(
        "/api/v1/parts",
        json={"name": injected, "description": injected, "category": "x\nM112"},
        headers=headers,
    )
    assert answer.status_code in (201, 422), answer.text
    if answer.status_code == 422:
        return
    part_id = answer.json()["id"]
    answer = http.post(
        f"/api/v1/parts/{part_id}/versions",
        files={"model": ("band\nM112.stl", stl_bytes(face_shield_headband(height_mm=0.6)))},
        data={"licence": "CC-BY\nM112", "author": "x\nM104 S300", "change_note": injected},
        headers=headers,
    )
    assert answer.status_code == 201, answer.text
    with small_runtime.db.session() as session:
        from catalog import service as catalog
        from tests.factories import ADMIN

        catalog.approve_version(session, version_id=UUID(answer.json()["id"]), actor=ADMIN)
        site = make_site(session)
        make_printer(small_runtime, session, site, base_url="http://127.0.0.1:9", api_key="k")
        point_id = make_delivery_point(session).id
    need = http.post(
        "/api/v1/needs",
        json={
            "part_id": part_id,
            "quantity": 1,
            "due_at": "2027-01-01T00:00:00+00:00",
            "delivery_point_id": str(point_id),
            "note": injected,
        },
        headers=headers,
    )
    assert need.status_code == 201, need.text
    # A material key is chosen from the catalogue, never typed into the G-code as is.
    bad_material = http.post(
        "/api/v1/needs",
        json={
            "part_id": part_id,
            "quantity": 1,
            "due_at": "2027-01-01T00:00:00+00:00",
            "delivery_point_id": str(point_id),
            "material_key": "PLA\nM112",
        },
        headers=headers,
    )
    assert bad_material.status_code in (404, 422), bad_material.text
    slice_open_needs(small_runtime.db, small_runtime.store)
    with small_runtime.db.session() as session:
        records = list(session.scalars(select(SliceRecord)))
    assert records
    for record in records:
        gcode = small_runtime.store.get(record.gcode_hash).decode()
        commands = {line.split(";")[0].strip() for line in gcode.splitlines()}
        assert "M112" not in commands
        assert "M104 S300" not in commands
        assert "M140 S150" not in commands
