"""Hypothesis properties of the slicer on random prismatic and stepped parts.

The outline of such a part at any height is known exactly from the 2D
shapes it was built from, independently of the slicer's own sections.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import shapely
import trimesh
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely import affinity
from shapely.geometry import MultiPolygon, Point, Polygon, box

from catalog.gcode_read import read_gcode
from catalog.paths import Role
from catalog.profiles import get_material, get_profile
from catalog.slicer import slice_mesh
from catalog.types import SliceSettings

PROFILE = get_profile("prusa-mk3s")
MATERIAL = get_material("PLA")


@dataclass(frozen=True)
class Part:
    base: Polygon | MultiPolygon
    base_height_mm: float
    top: Polygon | None  # a smaller block standing on the base
    top_height_mm: float

    def mesh(self) -> trimesh.Trimesh:
        pieces = [
            trimesh.creation.extrude_polygon(p, self.base_height_mm)
            for p in getattr(self.base, "geoms", [self.base])
        ]
        if self.top is not None:
            upper = trimesh.creation.extrude_polygon(self.top, self.top_height_mm)
            upper.apply_translation((0.0, 0.0, self.base_height_mm))
            pieces.append(upper)
        merged = trimesh.boolean.union(pieces, engine="manifold") if len(pieces) > 1 else pieces[0]
        assert isinstance(merged, trimesh.Trimesh)
        return merged

    def outline_at(self, z_mm: float) -> Polygon | MultiPolygon:
        if z_mm < self.base_height_mm or self.top is None:
            return self.base
        return self.top


@st.composite
def parts(draw: st.DrawFn) -> Part:
    width = draw(st.floats(8.0, 40.0))
    depth = draw(st.floats(8.0, 40.0))
    base: Polygon | MultiPolygon = box(0.0, 0.0, width, depth)
    if draw(st.booleans()):
        radius = draw(st.floats(1.0, min(width, depth) / 3))
        base = base.difference(Point(width / 2, depth / 2).buffer(radius, quad_segs=6))
    if draw(st.booleans()):
        arm = box(width * 0.3, depth - 1.0, width * 0.3 + draw(st.floats(2.0, 6.0)), depth + 12.0)
        base = base.union(arm)
    base = affinity.rotate(base, draw(st.floats(0.0, 90.0)), origin=(0.0, 0.0))
    top = None
    top_height = 0.0
    if draw(st.booleans()):
        centre = base.representative_point()
        top = Point(centre.x, centre.y).buffer(draw(st.floats(2.0, 5.0)), quad_segs=4)
        top_height = draw(st.floats(0.6, 3.0))
    assert isinstance(base, Polygon | MultiPolygon)
    return Part(base, draw(st.floats(0.8, 3.0)), top, top_height)


slice_settings = st.builds(
    SliceSettings,
    layer_height_mm=st.sampled_from([0.1, 0.15, 0.2, 0.3]),
    perimeters=st.integers(1, 4),
    top_layers=st.integers(0, 5),
    bottom_layers=st.integers(0, 5),
    infill=st.floats(0.0, 1.0),
    skirt_loops=st.integers(0, 2),
    thin_gaps=st.sampled_from(["fill", "widen"]),
)


def _to_bed(part: Part, result_rotated_deg: float, corner: tuple[float, float]) -> np.ndarray:
    """The 2D affine map (shapely order) from the part's frame to the bed."""
    mesh_bounds = part.mesh().bounds
    angle = np.radians(result_rotated_deg)
    c, s = np.cos(angle), np.sin(angle)
    corners = np.array(
        [
            [x, y]
            for x in (mesh_bounds[0][0], mesh_bounds[1][0])
            for y in (mesh_bounds[0][1], mesh_bounds[1][1])
        ]
    )
    turned = corners @ np.array([[c, s], [-s, c]])
    low = turned.min(axis=0)
    return np.array([c, -s, s, c, corner[0] - low[0], corner[1] - low[1]])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(part=parts(), chosen=slice_settings)
def test_extrusion_stays_inside_outline_plus_nozzle(part: Part, chosen: SliceSettings) -> None:
    result = slice_mesh(part.mesh(), PROFILE, MATERIAL, chosen)
    moves = read_gcode(result.gcode).moves
    transform = _to_bed(part, result.rotated_deg, result.copy_positions_mm[0])
    start = np.vstack([[0.0, 0.0], np.column_stack([moves.x, moves.y])[:-1]])
    end = np.column_stack([moves.x, moves.y])
    # Extrusions of the part itself: not the prime line, the skirt or un-retractions.
    printing = (moves.e > 0) & (moves.layer >= 0) & ~np.isin(moves.role, [Role.SKIRT, Role.RETRACT])
    for layer in np.unique(moves.layer[printing]).tolist():
        mine = printing & (moves.layer == layer)
        z_mid = float(moves.z[mine][0]) - result.layer_height_mm / 2 + 1e-6
        allowed = affinity.affine_transform(part.outline_at(z_mid), transform).buffer(
            PROFILE.nozzle_mm
        )
        segments = shapely.linestrings(np.stack([start[mine], end[mine]], axis=1))
        outside = ~shapely.covers(allowed, segments)
        assert not outside.any(), f"layer {layer}: {int(outside.sum())} segments leave the outline"


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(part=parts(), chosen=slice_settings, copies=st.integers(1, 3))
def test_estimates_are_never_negative(part: Part, chosen: SliceSettings, copies: int) -> None:
    result = slice_mesh(part.mesh(), PROFILE, MATERIAL, replace(chosen, copies=copies))
    assert result.filament_g > 0
    assert result.filament_mm > 0
    assert result.print_time_s > 0
    assert min(result.material_cost_eur, result.machine_cost_eur, result.energy_cost_eur) >= 0


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(part=parts(), low=st.floats(0.0, 1.0), high=st.floats(0.0, 1.0))
def test_more_infill_never_fewer_grams(part: Part, low: float, high: float) -> None:
    low, high = min(low, high), max(low, high)
    mesh = part.mesh()
    sparse = slice_mesh(
        mesh, PROFILE, MATERIAL, SliceSettings(infill=low, top_layers=1, bottom_layers=1)
    )
    dense = slice_mesh(
        mesh, PROFILE, MATERIAL, SliceSettings(infill=high, top_layers=1, bottom_layers=1)
    )
    assert dense.filament_g >= sparse.filament_g - 1e-9
