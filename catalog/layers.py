"""Mesh -> one 2D region per layer (shapely), robust to meshes that are not watertight.

Every triangle crossing a cutting plane gives a segment between two mesh
edges (computed here, vectorised over all planes at once, so that the two
triangles sharing an edge produce bit-identical end points). The segments
are chained by chaining.py instead of trimesh's ``Path2D.polygons_full``,
which silently drops open chains: on a real non-watertight ventilator valve
that lost 87 % of the mass without any error (shared/notes/slicing.md).
The rings are filled even-odd.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
import trimesh
from numpy.typing import NDArray
from shapely.geometry import MultiPolygon, Polygon

from catalog.chaining import chain_segments

Points = NDArray[np.float64]

# Simplification of section outlines: PrusaSlicer's G-code resolution.
RESOLUTION_MM = 0.0125
_MIN_RING_AREA_MM2 = 1e-3

EMPTY = MultiPolygon()


@dataclass(frozen=True, slots=True)
class LayerRegions:
    """What the slicer knows of each layer: its top height, thickness and outline."""

    print_z: NDArray[np.float64]  # top of each layer, mm
    height: NDArray[np.float64]  # thickness of each layer, mm
    regions: tuple[MultiPolygon, ...]
    open_chains: int  # chains that had to be closed (0 for a watertight mesh)


def layer_heights(
    object_height_mm: float, layer_height_mm: float, first_layer_height_mm: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Tops and thicknesses of the layers covering ``object_height_mm`` (at least one)."""
    first = min(first_layer_height_mm, max(object_height_mm, 1e-3))
    rest = max(object_height_mm - first, 0.0)
    # A last layer thinner than half a layer is dropped, as slicers round to layers.
    count = int(np.floor(rest / layer_height_mm + 0.5))
    tops = first + layer_height_mm * np.arange(count + 1, dtype=np.float64)
    heights = np.full(count + 1, layer_height_mm, dtype=np.float64)
    heights[0] = first
    return tops, heights


def slice_layers(
    mesh: trimesh.Trimesh, layer_height_mm: float, first_layer_height_mm: float
) -> LayerRegions:
    """Cut ``mesh`` (mm, resting on z = 0) at the middle of every layer."""
    z_min = float(mesh.bounds[0][2])
    height = float(mesh.bounds[1][2]) - z_min
    tops, heights = layer_heights(height, layer_height_mm, first_layer_height_mm)
    mids = z_min + tops - heights / 2
    mids = _avoid_vertices(mids, np.asarray(mesh.vertices)[:, 2])
    plane, node, points = section_segments(mesh, mids)
    ring_plane, rings, open_chains = chain_segments(plane, node, points)
    per_plane: list[list[Points]] = [[] for _ in mids]
    for index, ring in zip(ring_plane, rings, strict=True):
        per_plane[index].append(ring)
    regions = tuple(fill_even_odd(found) for found in per_plane)
    return LayerRegions(print_z=tops, height=heights, regions=regions, open_chains=open_chains)


def _avoid_vertices(
    mids: NDArray[np.float64], vertex_z: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Nudge cut heights off vertex heights, where sections degenerate."""
    levels = np.concatenate([[-np.inf], np.unique(vertex_z), [np.inf]])
    index = np.searchsorted(levels, mids)
    nearest = np.minimum(np.abs(levels[index] - mids), np.abs(levels[index - 1] - mids))
    return np.where(nearest < 1e-6, mids + 2e-5, mids)


def section_segments(
    mesh: trimesh.Trimesh, mids: NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Every (face, plane) crossing as a segment between two mesh edges.

    Returns per segment its plane index ``(n,)``, its two end nodes ``(n, 2)``
    (node = plane x edge count + unique edge id, so the two faces sharing an
    edge produce the very same node) and the node coordinates ``(n, 2, 2)``.
    Each crossing is computed from the edge's vertices in a fixed order, so
    twins are bit-identical.
    """
    faces = np.asarray(mesh.faces, dtype=np.int64)
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    face_z = vertices[faces, 2]
    first = np.searchsorted(mids, face_z.min(axis=1), side="right")
    last = np.searchsorted(mids, face_z.max(axis=1), side="left")
    spans = np.maximum(last - first, 0)
    face = np.repeat(np.arange(len(faces)), spans)
    offsets = np.arange(len(face)) - np.repeat(np.cumsum(spans) - spans, spans)
    plane = np.repeat(first, spans) + offsets
    z = mids[plane]
    above = face_z[face] > z[:, None]
    lone_is_above = above.sum(axis=1) == 1
    lone = np.where(lone_is_above, np.argmax(above, axis=1), np.argmin(above, axis=1))
    edge_ids = np.asarray(mesh.faces_unique_edges, dtype=np.int64)[face]
    rows = np.arange(len(face))
    ends = np.empty((len(face), 2, 2), dtype=np.float64)
    nodes = np.empty((len(face), 2), dtype=np.int64)
    edge_count = len(mesh.edges_unique)
    for slot, corner in enumerate((lone, (lone + 2) % 3)):
        # Face edge k joins corners k and k + 1; both crossed edges touch the lone corner.
        a = faces[face, corner]
        b = faces[face, (corner + 1) % 3]
        low, high = np.minimum(a, b), np.maximum(a, b)
        p, q = vertices[low], vertices[high]
        t = (z - p[:, 2]) / (q[:, 2] - p[:, 2])
        ends[:, slot] = p[:, :2] + t[:, None] * (q[:, :2] - p[:, :2])
        nodes[:, slot] = plane * edge_count + edge_ids[rows, corner]
    # Orient each segment with the solid on its left (outer outlines counter-clockwise):
    # on a consistently wound mesh every node then has one segment in and one out.
    normal = np.asarray(mesh.face_normals, dtype=np.float64)[face]
    along = ends[:, 1] - ends[:, 0]
    flip = along[:, 0] * -normal[:, 1] + along[:, 1] * normal[:, 0] < 0
    ends[flip] = ends[flip][:, ::-1]
    nodes[flip] = nodes[flip][:, ::-1]
    return plane, nodes, ends


def fill_even_odd(rings: list[Points]) -> MultiPolygon:
    """The even-odd region of closed rings: depth parity decides shell or hole."""
    if not rings:
        return EMPTY
    flat = np.vstack(rings)
    ring_ids = np.repeat(np.arange(len(rings)), [len(ring) for ring in rings])
    polygons = shapely.polygons(shapely.linearrings(flat, indices=ring_ids))
    invalid = ~shapely.is_valid(polygons)
    if invalid.any():
        polygons[invalid] = [_polygonal(shapely.make_valid(p)) for p in polygons[invalid]]
    areas = shapely.area(polygons)
    big = areas > _MIN_RING_AREA_MM2
    polygons, rings = polygons[big], [ring for ring, ok in zip(rings, big, strict=True) if ok]
    if len(polygons) == 0:
        return EMPTY
    probes = shapely.points(np.array([ring[0] for ring in rings]))
    tree = shapely.STRtree(polygons)
    probe_index, polygon_index = tree.query(probes, predicate="within")
    other = probe_index != polygon_index
    probe_index, polygon_index = probe_index[other], polygon_index[other]
    depth = np.bincount(probe_index, minlength=len(polygons))
    holes: dict[int, list[int]] = {}
    for probe, container in zip(probe_index.tolist(), polygon_index.tolist(), strict=True):
        if depth[probe] % 2 == 1 and depth[container] == depth[probe] - 1:
            holes.setdefault(container, []).append(probe)
    pieces = []
    for index in np.flatnonzero(depth % 2 == 0).tolist():
        shell = polygons[index]
        inner = holes.get(index)
        if inner:
            shell = shapely.difference(shell, shapely.union_all(polygons[inner]))
        pieces.append(shell)
    region = shapely.union_all(pieces) if len(pieces) > 1 else pieces[0]
    # Plain Douglas-Peucker is 5-10x faster than the topology-preserving variant
    # (0.5 s of a 256-facet connector's 2.9 s); at 12.5 um it rarely breaks a polygon,
    # and when it does the slow variant redoes it.
    simplified = shapely.simplify(region, RESOLUTION_MM, preserve_topology=False)
    region = simplified if shapely.is_valid(simplified) else shapely.simplify(region, RESOLUTION_MM)
    return as_multipolygon(region)


def _polygonal(geometry: shapely.Geometry) -> shapely.Geometry:
    if isinstance(geometry, Polygon | MultiPolygon):
        return geometry
    parts = [g for g in getattr(geometry, "geoms", []) if isinstance(g, Polygon | MultiPolygon)]
    return shapely.union_all(parts) if parts else Polygon()


def as_multipolygon(geometry: shapely.Geometry) -> MultiPolygon:
    """Any shapely result reduced to its polygonal part, as a MultiPolygon."""
    if geometry is None or geometry.is_empty:
        return EMPTY
    if isinstance(geometry, MultiPolygon):
        return geometry
    if isinstance(geometry, Polygon):
        return MultiPolygon([geometry])
    polygons: list[Polygon] = []
    for part in getattr(geometry, "geoms", []):
        if isinstance(part, Polygon) and not part.is_empty:
            polygons.append(part)
        elif isinstance(part, MultiPolygon):
            polygons.extend(p for p in part.geoms if not p.is_empty)
    return MultiPolygon(polygons) if polygons else EMPTY
