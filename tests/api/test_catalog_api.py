"""The catalogue through the API: uploads checked before anything is stored, approvals,
versions that never change what was already ordered, and the slice cache."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from pathlib import Path

import trimesh
from sqlalchemy import func, select

from catalog import service as catalog
from catalog.demo_parts import ear_saver
from catalog.models import DesignVersion, SliceRecord
from core.clock import utcnow
from tests.api.conftest import Api
from tests.factories import ADMIN, make_delivery_point, stl_bytes


def blob_count(api: Api) -> int:
    root = Path(api.runtime.store.root)
    return sum(1 for path in root.rglob("*") if path.is_file()) if root.exists() else 0


def create_part(api: Api, name: str = "Attache-masque") -> str:
    response = api.client.post("/api/v1/parts", json={"name": name}, headers=api.as_("coordinator"))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def upload(
    api: Api, part_id: str, content: bytes, file_name: str, **form: str
) -> tuple[int, dict[str, object]]:
    response = api.client.post(
        f"/api/v1/parts/{part_id}/versions",
        files={"model": (file_name, content, "application/octet-stream")},
        data={"licence": "CC-BY-4.0", **form},
        headers=api.as_("coordinator"),
    )
    return response.status_code, response.json()


def test_binary_and_ascii_stl_are_accepted_with_a_report(api: Api) -> None:
    part_id = create_part(api)
    status, body = upload(api, part_id, stl_bytes(ear_saver()), "ear-saver.stl")
    assert status == 201, body
    assert body["status"] == "draft"
    assert body["number"] == 1
    assert body["licence"] == "CC-BY-4.0"
    report = body["check_report"]
    assert isinstance(report, dict)
    assert report["copies_per_profile"]["prusa-mk3s"] >= 1
    ascii_stl = trimesh.exchange.stl.export_stl_ascii(ear_saver()).encode()
    status, body = upload(
        api, part_id, ascii_stl, "ear-saver-ascii.stl", change_note="ASCII export"
    )
    assert status == 201, body
    assert body["number"] == 2


def test_refused_files_leave_nothing_stored(api: Api) -> None:
    part_id = create_part(api)
    before = blob_count(api)
    for content, name, expected in (
        (b"solid nothing\nendsolid nothing\n", "empty.stl", 422),
        (b"\x00" * 80 + (10**9).to_bytes(4, "little"), "lying-header.stl", 422),
        (b"this is not a model", "notes.txt", 422),
        (b"PK\x03\x04 not really a zip", "broken.3mf", 422),
    ):
        status, body = upload(api, part_id, content, name)
        assert status == expected, (name, body)
        assert body["detail"]
    assert blob_count(api) == before
    with api.runtime.db.session() as session:
        assert session.scalar(select(func.count(DesignVersion.id))) == 0


def test_a_zip_bomb_in_a_3mf_is_refused(api: Api) -> None:
    part_id = create_part(api)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("3D/3dmodel.model", b"<model>" + b" " * 200_000_000 + b"</model>")
    status, body = upload(api, part_id, buffer.getvalue(), "bomb.3mf")
    assert status in (413, 422), body
    assert "zip bomb" in str(body["detail"])


def test_a_part_in_inches_is_not_guessed(api: Api) -> None:
    part_id = create_part(api)
    tiny = ear_saver()
    tiny.apply_scale(1 / 25.4)
    status, body = upload(api, part_id, stl_bytes(tiny), "inches.stl")
    assert status == 422
    assert "inches" in str(body["detail"])
    assert "unit=in" in str(body["detail"])
    # The unit the message suggests is one the upload accepts.
    status, body = upload(api, part_id, stl_bytes(tiny), "inches.stl", unit="in")
    assert status == 201, body


def test_oversized_upload_is_413(api: Api) -> None:
    part_id = create_part(api)
    api.runtime.settings.max_upload_bytes = 1000
    status, body = upload(api, part_id, b"x" * 5000, "big.stl")
    assert status == 413
    assert "limit" in str(body["detail"])


def test_only_approved_versions_are_ordered_and_new_versions_change_nothing_planned(
    api: Api,
) -> None:
    part_id = create_part(api)
    _, v1 = upload(api, part_id, stl_bytes(ear_saver()), "v1.stl")
    with api.runtime.db.session() as session:
        point = make_delivery_point(session)
    order = {
        "part_id": part_id,
        "quantity": 10,
        "due_at": (utcnow() + timedelta(days=2)).isoformat(),
        "delivery_point_id": str(point.id),
    }
    refused = api.client.post("/api/v1/needs", json=order, headers=api.as_("coordinator"))
    assert refused.status_code == 409
    assert "approved" in refused.json()["detail"]
    assert (
        api.client.post(
            f"/api/v1/design-versions/{v1['id']}/approve", headers=api.as_("admin")
        ).status_code
        == 200
    )
    need = api.client.post("/api/v1/needs", json=order, headers=api.as_("coordinator")).json()
    assert need["design_version_id"] == v1["id"]
    _, v2 = upload(
        api, part_id, stl_bytes(ear_saver(thickness_mm=2.0)), "v2.stl", change_note="thicker"
    )
    api.client.post(f"/api/v1/design-versions/{v2['id']}/approve", headers=api.as_("admin"))
    again = api.client.get(f"/api/v1/needs/{need['id']}", headers=api.as_("coordinator")).json()
    assert again["design_version_id"] == v1["id"]
    jobs = api.client.get(
        "/api/v1/jobs", params={"need_id": need["id"]}, headers=api.as_("coordinator")
    ).json()
    assert {j["design_version_id"] for j in jobs} == {v1["id"]}
    versions = {
        v["id"]: v["status"]
        for v in api.client.get(f"/api/v1/parts/{part_id}", headers=api.as_("coordinator")).json()[
            "versions"
        ]
    }
    assert versions == {v1["id"]: "retired", v2["id"]: "approved"}


def test_slices_are_cached_by_model_content(api: Api) -> None:
    runtime = api.runtime
    with runtime.db.session() as session:
        first_part = catalog.create_part(session, name="A", actor=ADMIN)
        second_part = catalog.create_part(session, name="B", actor=ADMIN)
        model = stl_bytes(ear_saver())
        versions = [
            catalog.add_design_version(
                session,
                runtime.store,
                part_id=part.id,
                model=model,
                file_name="same.stl",
                actor=ADMIN,
                max_upload_bytes=runtime.settings.max_upload_bytes,
            )
            for part in (first_part, second_part)
        ]
        first = catalog.ensure_slice(
            session,
            runtime.store,
            version_id=versions[0].id,
            profile_key="prusa-mk3s",
            material_key="PLA",
            copies=2,
        )
        again = catalog.ensure_slice(
            session,
            runtime.store,
            version_id=versions[0].id,
            profile_key="prusa-mk3s",
            material_key="PLA",
            copies=2,
        )
        twin = catalog.ensure_slice(
            session,
            runtime.store,
            version_id=versions[1].id,
            profile_key="prusa-mk3s",
            material_key="PLA",
            copies=2,
        )
        other = catalog.ensure_slice(
            session,
            runtime.store,
            version_id=versions[1].id,
            profile_key="prusa-mk3s",
            material_key="PETG",
            copies=2,
        )
        assert again.id == first.id
        assert twin.id != first.id
        assert twin.gcode_hash == first.gcode_hash
        assert other.gcode_hash != first.gcode_hash
        assert session.scalar(select(func.count(SliceRecord.id))) == 3
        gcode = runtime.store.get(first.gcode_hash).decode()
        assert "M73 P" in gcode
        assert first.filament_g > 0
