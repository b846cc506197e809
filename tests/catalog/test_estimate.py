"""The motion model against hand-computed trapezoids, and the cooling slowdown."""

from __future__ import annotations

import math

import numpy as np
import pytest

from catalog import demo_parts
from catalog.estimate import Limits, cooling_feeds, move_times, nominal_times
from catalog.gcode_read import read_gcode
from catalog.motion import Moves
from catalog.paths import Role
from catalog.profiles import get_material, get_profile
from catalog.slicer import slice_mesh
from catalog.types import SliceSettings

MK3S = get_profile("prusa-mk3s")
LIMITS = Limits.of(MK3S)


def _moves(points: list[tuple[float, float, float, float]], feed: float, role: Role) -> Moves:
    array = np.array(points, dtype=np.float64)
    count = len(points)
    return Moves(
        origin=(0.0, 0.0, 0.0),
        x=array[:, 0],
        y=array[:, 1],
        z=array[:, 2],
        e=array[:, 3],
        feed_mm_s=np.full(count, feed),
        role=np.full(count, int(role), dtype=np.int8),
        layer=np.zeros(count, dtype=np.int32),
        width_mm=np.zeros(count, dtype=np.float32),
    )


def _trapezoid(length: float, v_in: float, v_top: float, v_out: float, accel: float) -> float:
    up = (v_top**2 - v_in**2) / (2 * accel)
    down = (v_top**2 - v_out**2) / (2 * accel)
    return (v_top - v_in) / accel + (v_top - v_out) / accel + (length - up - down) / v_top


def test_single_move_starts_and_stops_at_the_jerk_speed() -> None:
    moves = _moves([(100.0, 0.0, 0.0, 3.3)], 100.0, Role.INFILL)
    time = move_times(moves, LIMITS, np.array([1000.0]))
    # Starts from rest at the X jerk (8 mm/s), cruises at 100, stops from 8.
    assert time.sum() == pytest.approx(_trapezoid(100.0, 8.0, 100.0, 8.0, 1000.0), rel=1e-9)


def test_travel_uses_the_travel_acceleration_within_axis_limits() -> None:
    along_x = _moves([(100.0, 0.0, 0.0, 0.0)], 100.0, Role.TRAVEL)
    # 1250 mm/s2 asked, but X alone accelerates at 1000 at most.
    time = move_times(along_x, LIMITS, np.array([500.0]))
    assert time.sum() == pytest.approx(_trapezoid(100.0, 8.0, 100.0, 8.0, 1000.0), rel=1e-9)
    diagonal = _moves([(100.0, 100.0, 0.0, 0.0)], 100.0, Role.TRAVEL)
    time = move_times(diagonal, LIMITS, np.array([500.0]))
    expected = _trapezoid(100.0 * math.sqrt(2), 8.0, 100.0, 8.0, 1250.0)
    assert time.sum() == pytest.approx(expected, rel=1e-9)


def test_straight_continuation_keeps_speed_and_corner_slows_to_jerk() -> None:
    straight = _moves([(50.0, 0.0, 0.0, 1.0), (100.0, 0.0, 0.0, 1.0)], 100.0, Role.INFILL)
    one = _trapezoid(100.0, 8.0, 100.0, 8.0, 1000.0)
    assert move_times(straight, LIMITS, np.full(2, 1000.0)).sum() == pytest.approx(one, rel=1e-9)
    corner = _moves([(100.0, 0.0, 0.0, 1.0), (100.0, 100.0, 0.0, 1.0)], 100.0, Role.INFILL)
    # A right angle: each axis goes from 100 mm/s to 0 or back, so the corner is taken at 8.
    assert move_times(corner, LIMITS, np.full(2, 1000.0)).sum() == pytest.approx(2 * one, rel=1e-9)


def test_retraction_is_a_short_triangle_on_the_extruder() -> None:
    moves = _moves([(0.0, 0.0, 0.0, -0.8)], 35.0, Role.RETRACT)
    # Never reaches 35 mm/s over 0.8 mm at 1250 mm/s2: peaks, starting from the E jerk 4.5.
    peak = math.sqrt((2 * 1250 * 0.8 + 2 * 4.5**2) / 2)
    expected = 2 * (peak - 4.5) / 1250
    assert move_times(moves, LIMITS, np.array([1000.0])).sum() == pytest.approx(expected, rel=1e-9)


def test_acceleration_lengthens_short_moves_more_than_long_ones() -> None:
    zigzag = [(float(i % 2) * 2.0, float(i) * 0.45, 0.0, 0.07) for i in range(1, 201)]
    moves = _moves(zigzag, 80.0, Role.SOLID_INFILL)
    planned = move_times(moves, LIMITS, np.full(len(zigzag), 1000.0)).sum()
    naive = nominal_times(moves, moves.feed_mm_s).sum()
    assert planned > 1.5 * naive


def test_cooling_slowdown_stretches_short_layers_to_the_minimum_time() -> None:
    material = get_material("PLA")
    result = slice_mesh(
        demo_parts.door_opener(thickness_mm=1.0), MK3S, material, SliceSettings(skirt_loops=0)
    )
    moves = read_gcode(result.gcode).moves
    layer_time = nominal_times(moves, moves.feed_mm_s)
    for layer in range(1, result.layers):
        mine = moves.layer == layer
        extruding = mine & (moves.e > 0) & (moves.role != Role.RETRACT)
        slowest_allowed = np.all(moves.feed_mm_s[extruding] <= material.min_print_speed_mm_s + 1e-6)
        assert layer_time[mine].sum() >= material.min_layer_time_s - 0.05 or slowest_allowed


def test_cooling_leaves_long_layers_alone() -> None:
    moves = _moves([(100.0, 0.0, 0.0, 3.0), (0.0, 0.0, 0.0, 3.0)], 10.0, Role.PERIMETER)
    assert np.array_equal(cooling_feeds(moves, 15.0, 5.0), moves.feed_mm_s)


def test_reading_back_our_gcode_gives_our_estimates() -> None:
    # The door opener mixes 800 (first layer, perimeters) and 1000 mm/s2 (infill): the
    # G-code must tell the printer every acceleration the estimator assumed (M204 P),
    # and rounding coordinates to 1 um may cost no more than 0.05 %.
    result = slice_mesh(demo_parts.door_opener(), MK3S, get_material("PLA"), SliceSettings())
    parsed = read_gcode(result.gcode, default_accel_mm_s2=MK3S.accel_print_mm_s2)
    retimed = move_times(parsed.moves, LIMITS, parsed.accel_print).sum()
    assert retimed == pytest.approx(result.print_time_s, rel=5e-4)
    extruded = parsed.moves.e[(parsed.moves.e > 0) & (parsed.moves.role != Role.RETRACT)].sum()
    assert extruded == pytest.approx(result.filament_mm, rel=1e-4)
