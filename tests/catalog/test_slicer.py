"""The slicer end to end on generated crisis parts: G-code shape and estimate sanity."""

from __future__ import annotations

import re

import pytest
import trimesh

from catalog import demo_parts
from catalog.plate import copies_that_fit
from catalog.profiles import get_material, get_profile, load_materials, load_profiles
from catalog.slicer import slice_mesh
from catalog.types import SliceSettings
from core.errors import Invalid, NotFound


def test_shipped_profiles_and_materials() -> None:
    profiles = load_profiles()
    assert {"prusa-mk3s", "creality-ender3", "ultimaker-2plus"} <= set(profiles)
    assert {"PLA", "PETG", "ABS"} <= set(load_materials())
    assert get_material("pla").key == "PLA"
    with pytest.raises(NotFound, match="prusa-mk3s"):
        get_profile("makerbot")


def test_low_headband_gives_marlin_gcode_with_progress() -> None:
    result = slice_mesh(
        demo_parts.face_shield_headband(height_mm=2.0),
        get_profile("prusa-mk3s"),
        get_material("PLA"),
        SliceSettings(),
    )
    gcode = result.gcode
    assert result.layers == 10
    assert gcode.count(";LAYER_CHANGE") == 10
    for command in ("G28", "M104 S215", "M140 S60", "M109 S215", "M190 S60", "M84"):
        assert command in gcode
    assert gcode.index("M140") < gcode.index("M190")
    assert gcode.index("M104") < gcode.index("M109")
    progress = [int(p) for p in re.findall(r"^M73 P(\d+) R\d+$", gcode, flags=re.M)]
    assert len(progress) >= 10
    assert progress == sorted(progress)
    assert progress[-1] == 100
    assert result.print_time_s > 0
    assert result.filament_g > 0
    assert result.cost_eur == pytest.approx(
        result.material_cost_eur + result.machine_cost_eur + result.energy_cost_eur
    )


def test_copies_fit_and_refuse_too_many() -> None:
    profile = get_profile("prusa-mk3s")
    part = demo_parts.ear_saver()
    fit = copies_that_fit(part, profile, SliceSettings())
    assert fit >= 6
    result = slice_mesh(part, profile, get_material("PLA"), SliceSettings(copies=3))
    assert result.copies == 3
    assert len(result.copy_positions_mm) == 3
    with pytest.raises(Invalid, match="at most"):
        slice_mesh(part, profile, get_material("PLA"), SliceSettings(copies=fit + 1))


def test_overhangs_are_reported_because_there_are_no_supports() -> None:
    profile, material = get_profile("prusa-mk3s"), get_material("PLA")
    # A T: a 30 x 30 mm table top on a 6 x 6 mm leg, 10 mm up.
    leg = trimesh.creation.box(extents=(6.0, 6.0, 10.0))
    top = trimesh.creation.box(extents=(30.0, 30.0, 2.0))
    top.apply_translation((0.0, 0.0, 6.0))
    tee = trimesh.boolean.union([leg, top], engine="manifold")
    result = slice_mesh(tee, profile, material, SliceSettings())
    assert any("hang over air" in warning for warning in result.warnings)
    assert not slice_mesh(demo_parts.spur_gear(), profile, material, SliceSettings()).warnings


def test_thin_gaps_widen_keeps_the_plastic_and_saves_the_extra_pass() -> None:
    profile, material = get_profile("prusa-mk3s"), get_material("PLA")
    band = demo_parts.face_shield_headband(height_mm=2.0)
    filled = slice_mesh(band, profile, material, SliceSettings(thin_gaps="fill"))
    widened = slice_mesh(band, profile, material, SliceSettings(thin_gaps="widen"))
    assert ";TYPE:Gap fill" in filled.gcode
    assert ";TYPE:Gap fill" not in widened.gcode
    assert widened.filament_g == pytest.approx(filled.filament_g, rel=0.01)
    assert widened.print_time_s < filled.print_time_s
    with pytest.raises(Invalid, match="fill or widen"):
        slice_mesh(band, profile, material, SliceSettings(thin_gaps="squash"))


def test_progress_is_reported_up_to_one() -> None:
    seen: list[float] = []
    slice_mesh(
        demo_parts.door_opener(thickness_mm=3.0),
        get_profile("prusa-mk3s"),
        get_material("PLA"),
        SliceSettings(),
        progress=seen.append,
    )
    assert len(seen) >= 4
    assert seen == sorted(seen)
    assert seen[-1] == 1.0


def test_a_flat_surface_is_not_printable() -> None:
    sheet = trimesh.Trimesh(
        vertices=[[0, 0, 0], [20, 0, 0], [20, 20, 0], [0, 20, 0]], faces=[[0, 1, 2], [0, 2, 3]]
    )
    with pytest.raises(Invalid, match="no volume"):
        slice_mesh(sheet, get_profile("prusa-mk3s"), get_material("PLA"), SliceSettings())


def test_slicing_is_a_pure_function() -> None:
    profile, material = get_profile("creality-ender3"), get_material("PETG")
    part = demo_parts.spur_gear()
    part.apply_translation((-30.0, 12.0, 5.0))  # floating off the bed: the slicer places it
    before = part.bounds.copy()
    first = slice_mesh(part, profile, material, SliceSettings(copies=2))
    again = slice_mesh(part.copy(), profile, material, SliceSettings(copies=2))
    assert first == again  # G-code, estimates, positions: nothing depends on the run
    assert (part.bounds == before).all()  # the caller's mesh was not moved
