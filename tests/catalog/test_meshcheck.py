"""Uploads: formats, refusals with clear messages, repairs, units, zip bombs, build volume."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import trimesh

from catalog import demo_parts
from catalog.meshcheck import ensure_fits, fits_profiles, load_mesh
from catalog.profiles import get_profile, load_profiles
from core.errors import Invalid, TooLarge

_MODEL_NS = "http://schemas.microsoft.com/3dmanufacturing/core/2015/02"


def _3mf(meshes: list[tuple[trimesh.Trimesh, str | None]], unit: str = "millimeter") -> bytes:
    """A minimal 3MF package: one object per mesh, one build item each (with transform)."""
    objects, items = [], []
    for number, (mesh, transform) in enumerate(meshes, start=1):
        vertices = "".join(
            f'<vertex x="{x:.6f}" y="{y:.6f}" z="{z:.6f}"/>' for x, y, z in mesh.vertices
        )
        triangles = "".join(f'<triangle v1="{a}" v2="{b}" v3="{c}"/>' for a, b, c in mesh.faces)
        objects.append(
            f'<object id="{number}" type="model"><mesh><vertices>{vertices}</vertices>'
            f"<triangles>{triangles}</triangles></mesh></object>"
        )
        extra = f' transform="{transform}"' if transform else ""
        items.append(f'<item objectid="{number}"{extra}/>')
    model = (
        f'<?xml version="1.0" encoding="UTF-8"?><model unit="{unit}" xmlns="{_MODEL_NS}">'
        f"<resources>{''.join(objects)}</resources><build>{''.join(items)}</build></model>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("3D/3dmodel.model", model)
    return buffer.getvalue()


def _stl(mesh: object) -> bytes:
    assert isinstance(mesh, trimesh.Trimesh)
    data = mesh.export(file_type="stl")
    assert isinstance(data, bytes)
    return data


def _scaled(mesh: trimesh.Trimesh, factor: float) -> trimesh.Trimesh:
    scaled = mesh.copy()
    scaled.apply_transform(np.diag([factor, factor, factor, 1.0]))
    return scaled


@pytest.fixture(scope="module")
def opener() -> trimesh.Trimesh:
    return demo_parts.door_opener()


@pytest.mark.parametrize("file_type", ["stl", "stl_ascii", "obj"])
def test_trimesh_formats_load_watertight(opener: trimesh.Trimesh, file_type: str) -> None:
    data = opener.export(file_type=file_type)
    raw = data.encode() if isinstance(data, str) else data
    assert isinstance(raw, bytes)
    extension = "stl" if file_type.startswith("stl") else file_type
    report = load_mesh(raw, f"opener.{extension}")
    assert report.watertight
    assert report.volume_cm3 == pytest.approx(opener.volume / 1000, rel=1e-4)
    assert report.repairs == ()
    assert report.size_mm == pytest.approx(tuple(opener.extents), abs=1e-3)


def test_3mf_with_transforms_and_inch_unit(opener: trimesh.Trimesh) -> None:
    inches = _scaled(opener, 1 / 25.4)
    shifted = "1 0 0 0 1 0 0 0 1 10 20 0"
    report = load_mesh(_3mf([(inches, None), (inches, shifted)], unit="inch"), "two.3mf")
    assert report.unit == "inch"
    assert any("inch" in line for line in report.repairs)
    # Two copies, the second 10 x 20 inches away: twice the volume, in mm.
    assert report.volume_cm3 == pytest.approx(2 * opener.volume / 1000, rel=1e-3)
    assert report.size_mm[0] == pytest.approx(opener.extents[0] + 254.0, rel=1e-4)


def test_3mf_zip_bomb_and_dtd_are_refused(opener: trimesh.Trimesh) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("3D/3dmodel.model", b"<model>" + b" " * 50_000_000 + b"</model>")
    with pytest.raises(TooLarge, match="zip bomb"):
        load_mesh(buffer.getvalue(), "bomb.3mf")
    # Compressed 28x (a plausible ratio) but expanding past 10x the upload limit.
    rng = np.random.default_rng(1)
    runs = np.repeat(rng.integers(0, 10, 100_000).astype(np.uint8) + ord("0"), 40)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("3D/3dmodel.model", runs.tobytes())
    packed = buffer.getvalue()
    assert len(runs) > 10 * len(packed)
    with pytest.raises(TooLarge, match="expands"):
        load_mesh(packed, "big.3mf", max_bytes=len(packed))
    buffer = io.BytesIO()
    source_bytes = _3mf([(opener, None)])
    with (
        zipfile.ZipFile(io.BytesIO(source_bytes)) as source,
        zipfile.ZipFile(buffer, "w") as target,
    ):
        model = source.read("3D/3dmodel.model")
        target.writestr(
            "3D/3dmodel.model",
            model.replace(b"<model", b'<!DOCTYPE m [<!ENTITY a "aaaa">]><model', 1),
        )
    with pytest.raises(Invalid, match="DTD"):
        load_mesh(buffer.getvalue(), "evil.3mf")


def test_refusals_are_one_clear_sentence() -> None:
    with pytest.raises(TooLarge, match=r"limit is 0\.001 MB"):
        load_mesh(b"x" * 2000, "part.stl", max_bytes=1000)
    with pytest.raises(Invalid, match="empty"):
        load_mesh(b"   ", "part.stl")
    with pytest.raises(Invalid, match="not a 3D mesh"):
        load_mesh(b"this is not a mesh at all " * 20, "part.stl")
    with pytest.raises(Invalid, match="STL, 3MF or OBJ"):
        load_mesh(b"G1 X10", "part.gcode")
    with pytest.raises(Invalid, match="not a valid zip"):
        load_mesh(b"PK not really", "part.3mf")


def test_units_are_never_guessed_silently() -> None:
    saver = _scaled(demo_parts.ear_saver(), 1 / 25.4)  # in inches: 5.9 x 0.59 x 0.063 "mm"
    data = _stl(saver)
    with pytest.raises(Invalid, match=r"inches \(150\.0 x"):
        load_mesh(data, "saver.stl")
    report = load_mesh(data, "saver.stl", unit="in")
    assert report.size_mm[0] == pytest.approx(150.0, rel=1e-4)
    assert report.repairs == ("Converted from in to mm (x25.4), as requested.",)
    with pytest.raises(Invalid, match="Unknown unit"):
        load_mesh(data, "saver.stl", unit="furlong")


def test_holes_are_closed_and_reported(opener: trimesh.Trimesh) -> None:
    broken = opener.copy()
    sides = np.flatnonzero(np.abs(broken.face_normals[:, 2]) < 0.5)
    keep = np.ones(len(broken.faces), dtype=bool)
    keep[sides[::7]] = False
    broken.update_faces(keep)
    assert not broken.is_watertight
    report = load_mesh(_stl(broken), "broken.stl")
    assert report.watertight
    assert any("Closed" in line and "holes" in line for line in report.repairs)
    assert report.volume_cm3 == pytest.approx(opener.volume / 1000, rel=0.02)


def test_inside_out_mesh_is_flipped(opener: trimesh.Trimesh) -> None:
    inverted = opener.copy()
    inverted.invert()
    report = load_mesh(_stl(inverted), "inverted.stl")
    assert any("inwards" in line for line in report.repairs)
    assert report.mesh.volume > 0


def test_build_volume_names_the_printers_that_fit() -> None:
    bar = trimesh.creation.box(extents=(235.0, 20.0, 5.0))
    profiles = load_profiles()
    fits = fits_profiles(bar, profiles)
    assert "prusa-mk3s" in fits
    assert "creality-ender3" not in fits
    assert "prusa-mini" not in fits
    with pytest.raises(TooLarge, match=r"it fits: .*prusa-mk3s"):
        ensure_fits(bar, get_profile("creality-ender3"), profiles)
    huge = trimesh.creation.box(extents=(400.0, 400.0, 10.0))
    with pytest.raises(TooLarge, match="every printer profile"):
        ensure_fits(huge, get_profile("prusa-mk3s"), profiles)


def test_overlapping_bodies_are_merged_not_holed() -> None:
    plate = trimesh.creation.box(extents=(40.0, 20.0, 4.0))
    boss = trimesh.creation.cylinder(radius=6.0, height=10.0, sections=32)
    boss.apply_translation((10.0, 0.0, 3.0))  # half sunk into the plate
    both = trimesh.util.concatenate([plate, boss])
    report = load_mesh(_stl(both), "bracket.stl")
    assert any("Merged 2 overlapping bodies" in line for line in report.repairs)
    union = trimesh.boolean.union([plate, boss], engine="manifold")
    assert report.volume_cm3 == pytest.approx(union.volume / 1000, rel=1e-6)
    far = boss.copy()
    far.apply_translation((60.0, 0.0, 0.0))
    apart = trimesh.util.concatenate([plate, far])
    assert not load_mesh(_stl(apart), "two.stl").repairs
