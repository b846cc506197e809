"""Layer outlines: exact on closed meshes, and robust to meshes that are not watertight.

shared/notes/slicing.md: on a real ventilator valve with 280 broken faces,
every section had open chains, and trimesh's ``polygons_full`` silently lost
87 % of the mass. Joining the open chains must recover the part.
"""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from shapely.geometry import Point, box

from catalog import demo_parts
from catalog.chaining import chain_segments
from catalog.layers import fill_even_odd, layer_heights, slice_layers
from catalog.profiles import get_material, get_profile
from catalog.slicer import slice_mesh
from catalog.types import SliceSettings


def _sliced_volume_cm3(mesh: trimesh.Trimesh) -> float:
    layers = slice_layers(mesh, 0.2, 0.2)
    return float(sum(r.area * h for r, h in zip(layers.regions, layers.height, strict=True))) / 1000


def _break(mesh: trimesh.Trimesh, every: int) -> trimesh.Trimesh:
    """Remove every n-th wall triangle: each section then has open chains."""
    broken = mesh.copy()
    walls = np.flatnonzero(np.abs(broken.face_normals[:, 2]) < 0.5)
    keep = np.ones(len(broken.faces), dtype=bool)
    keep[walls[::every]] = False
    broken.update_faces(keep)
    return broken


@pytest.mark.parametrize("part", [demo_parts.door_opener, demo_parts.spur_gear])
def test_closed_mesh_sections_have_the_mesh_volume(part: object) -> None:
    mesh = part()  # type: ignore[operator]
    layers = slice_layers(mesh, 0.2, 0.2)
    assert layers.open_chains == 0
    assert _sliced_volume_cm3(mesh) == pytest.approx(mesh.volume / 1000, rel=2e-3)


def test_open_chains_are_kept_and_closed_on_broken_meshes() -> None:
    intact = demo_parts.door_opener()
    # Like the ventilator valve: a fine mesh with many small triangles missing.
    fine = intact.subdivide_to_size(1.0)
    assert isinstance(fine, trimesh.Trimesh)
    keep = np.random.default_rng(0).random(len(fine.faces)) > 0.1
    fine.update_faces(keep)
    layers = slice_layers(fine, 0.2, 0.2)
    assert layers.open_chains > 10 * len(layers.regions)
    assert _sliced_volume_cm3(fine) == pytest.approx(intact.volume / 1000, rel=0.002)
    # Whole wall triangles missing: gaps up to the arm's 83 mm length.
    broken = _break(intact, every=9)
    assert not broken.is_watertight
    layers = slice_layers(broken, 0.2, 0.2)
    assert layers.open_chains >= len(layers.regions)  # every layer had to be repaired
    assert _sliced_volume_cm3(broken) == pytest.approx(intact.volume / 1000, rel=0.01)
    profile, material = get_profile("prusa-mk3s"), get_material("PLA")
    whole = slice_mesh(intact, profile, material, SliceSettings())
    repaired = slice_mesh(broken, profile, material, SliceSettings())
    assert repaired.filament_g == pytest.approx(whole.filament_g, rel=0.02)
    assert any("not closed" in warning for warning in repaired.warnings)


def test_even_odd_fill_nests_islands_in_holes() -> None:
    def ring(radius: float) -> np.ndarray:
        return np.asarray(Point(0.0, 0.0).buffer(radius, quad_segs=8).exterior.coords)[:-1]

    region = fill_even_odd([ring(10.0), ring(6.0), ring(3.0)])
    expected = Point(0, 0).buffer(10, quad_segs=8).difference(Point(0, 0).buffer(6, quad_segs=8))
    expected = expected.union(Point(0, 0).buffer(3, quad_segs=8))
    assert region.symmetric_difference(expected).area < 1e-6


def test_chaining_joins_segments_in_any_order_and_direction() -> None:
    square = box(0.0, 0.0, 4.0, 4.0)
    corners = np.asarray(square.exterior.coords)
    segments = np.stack([corners[:-1], corners[1:]], axis=1)
    rng = np.random.default_rng(3)
    segments = segments[rng.permutation(len(segments))]
    segments[::2] = segments[::2, ::-1]
    nodes = np.array([[hash(tuple(a)), hash(tuple(b))] for a, b in segments], dtype=np.int64)
    planes, rings, opened = chain_segments(np.zeros(len(segments), np.int64), nodes, segments)
    assert opened == 0
    assert planes == [0]
    assert fill_even_odd(rings).area == pytest.approx(16.0)


def test_layer_heights_cover_the_part() -> None:
    tops, heights = layer_heights(10.05, 0.2, 0.3)
    assert tops[0] == pytest.approx(0.3)
    assert tops[-1] == pytest.approx(10.1)  # 0.3 + 49 x 0.2: the layer top nearest 10.05 mm
    assert heights.sum() == pytest.approx(tops[-1])
    tops, _heights = layer_heights(9.98, 0.2, 0.3)
    assert tops[-1] == pytest.approx(9.9)  # a last 0.08 mm sliver is not a layer
    tops, _heights = layer_heights(0.1, 0.2, 0.2)
    assert len(tops) == 1


def test_flipped_triangles_fall_back_to_the_undirected_walk() -> None:
    gear = demo_parts.spur_gear()
    messy = gear.copy()
    faces = np.asarray(messy.faces).copy()
    faces[::5] = faces[::5, ::-1]  # every fifth triangle wound the wrong way
    messy = trimesh.Trimesh(vertices=messy.vertices, faces=faces, process=False)
    assert not messy.is_winding_consistent
    # Same outlines; only where the rings start (hence the 12.5 um simplification) differs.
    assert _sliced_volume_cm3(messy) == pytest.approx(_sliced_volume_cm3(gear), rel=1e-6)
