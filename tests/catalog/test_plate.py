"""Plate batching: how many copies fit, and where they go."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
import trimesh

from catalog import demo_parts
from catalog.gcode_read import read_gcode
from catalog.paths import Role
from catalog.plate import copies_that_fit, plan_plate, skirt_margin_mm
from catalog.profiles import get_material, get_profile
from catalog.slicer import slice_mesh
from catalog.types import SliceSettings

MK3S = get_profile("prusa-mk3s")


def test_grid_count_follows_the_bed_spacing_and_skirt() -> None:
    cube = trimesh.creation.box(extents=(20.0, 20.0, 10.0))
    settings = SliceSettings()
    margin = skirt_margin_mm(MK3S, settings)
    columns = int((MK3S.bed_x_mm - 2 * margin + 6.0) // 26.0)
    rows = int((MK3S.bed_y_mm - 2 * margin + 6.0) // 26.0)
    assert copies_that_fit(cube, MK3S, settings) == columns * rows
    assert copies_that_fit(cube, MK3S, SliceSettings(copy_spacing_mm=30.0)) < columns * rows


def test_turning_the_part_can_fit_more() -> None:
    # 250 x 210 bed minus a 6.4 mm skirt margin: six 30 mm bars side by side along X
    # when they stand along Y, five when they lie along X.
    standing = trimesh.creation.box(extents=(30.0, 190.0, 5.0))
    lying = trimesh.creation.box(extents=(190.0, 30.0, 5.0))
    assert copies_that_fit(standing, MK3S, SliceSettings()) == 6
    assert copies_that_fit(lying, MK3S, SliceSettings()) == 6
    assert not plan_plate(standing, MK3S, SliceSettings(copies=2)).rotated
    assert plan_plate(lying, MK3S, SliceSettings(copies=2)).rotated
    long_bar = trimesh.creation.box(extents=(240.0, 20.0, 5.0))
    mini = get_profile("prusa-mini")
    assert copies_that_fit(long_bar, mini, SliceSettings()) == 0


def test_too_tall_does_not_fit() -> None:
    tower = trimesh.creation.box(extents=(10.0, 10.0, 215.0))
    assert copies_that_fit(tower, MK3S, SliceSettings()) == 0


def test_copies_do_not_overlap_and_stay_on_the_bed() -> None:
    part = demo_parts.door_opener(thickness_mm=0.6)
    fit = copies_that_fit(part, MK3S, SliceSettings())
    result = slice_mesh(part, MK3S, get_material("PLA"), SliceSettings(copies=fit))
    assert result.copies == fit
    moves = read_gcode(result.gcode).moves
    printing = (moves.e > 0) & (moves.layer == 0) & (moves.role != Role.RETRACT)
    assert moves.x[printing].min() >= 0
    assert moves.y[printing].min() >= 0
    assert moves.x[printing].max() <= MK3S.bed_x_mm
    assert moves.y[printing].max() <= MK3S.bed_y_mm
    width, depth = (part.extents[1], part.extents[0]) if result.rotated_deg else part.extents[:2]
    boxes = [shapely.box(x, y, x + width, y + depth) for x, y in result.copy_positions_mm]
    for i, first in enumerate(boxes):
        for second in boxes[i + 1 :]:
            assert first.intersection(second).area == pytest.approx(0.0, abs=1e-9)


def test_more_copies_cost_more_but_less_per_copy() -> None:
    part = demo_parts.ear_saver()
    one = slice_mesh(part, MK3S, get_material("PLA"), SliceSettings(copies=1))
    four = slice_mesh(part, MK3S, get_material("PLA"), SliceSettings(copies=4))
    assert four.filament_g == pytest.approx(4 * one.filament_g, rel=0.02)
    assert one.print_time_s < four.print_time_s < 4 * one.print_time_s
    assert np.unique(np.round(four.copy_positions_mm, 3), axis=0).shape[0] == 4
