"""Generated stand-ins for the 2020 crisis parts, used by demos, tests and bench/.

Each function builds a watertight mesh in millimetres, lying on z = 0, from
2D outlines (shapely) extruded (or, for the connector, a profile revolved)
with trimesh. They are our own simplified
designs with the proportions of the common open designs (face-shield
headband, ear saver, door opener, mask strap) plus a larger mechanical part
(a spur gear) and a finely tessellated, stepped ventilator hose connector,
so that no third-party model file has to be shipped. The flat parts' curves
are sampled coarsely on purpose (chord error at most 0.23 mm) to keep the
G-code of small test prints short.
"""

from __future__ import annotations

import math

import numpy as np
import trimesh
from shapely import affinity
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box
from shapely.ops import unary_union


def _extrude(
    outline: Polygon | MultiPolygon, height_mm: float, z0_mm: float = 0.0
) -> trimesh.Trimesh:
    polygons = list(outline.geoms) if isinstance(outline, MultiPolygon) else [outline]
    parts = [trimesh.creation.extrude_polygon(polygon, height_mm) for polygon in polygons]
    mesh = trimesh.util.concatenate(parts) if len(parts) > 1 else parts[0]
    if not isinstance(mesh, trimesh.Trimesh):
        raise TypeError("extrusion did not give a single mesh")
    mesh.apply_translation((0.0, 0.0, z0_mm))
    return mesh


def _union(meshes: list[trimesh.Trimesh]) -> trimesh.Trimesh:
    merged = trimesh.boolean.union(meshes, engine="manifold")
    if not isinstance(merged, trimesh.Trimesh):
        raise TypeError("boolean union did not give a single mesh")
    return merged


def _polygon(shape: object) -> Polygon | MultiPolygon:
    if not isinstance(shape, Polygon | MultiPolygon):
        raise TypeError(f"expected a polygon, got {type(shape).__name__}")
    return shape


def _rounded_box(width: float, depth: float, radius: float) -> Polygon:
    core = box(-width / 2 + radius, -depth / 2 + radius, width / 2 - radius, depth / 2 - radius)
    rounded = core.buffer(radius, quad_segs=3)
    if not isinstance(rounded, Polygon):
        raise TypeError("a rounded box is one polygon")
    return rounded


def _finish(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    mesh.merge_vertices()
    mesh.fix_normals()
    mesh.apply_translation(-mesh.bounds[0])
    return mesh


def face_shield_headband(height_mm: float = 20.0, *, band_mm: float = 1.8) -> trimesh.Trimesh:
    """A C-shaped visor headband (about 170 x 150 mm) with four shield pins and strap tabs.

    The band is 1.8 mm thick: two perimeters per side (four 0.45 mm lines)
    fill it, as on the printed originals, so most of the plastic goes into
    walls. A 2.2 mm band left a 0.5 mm core that solid infill crossed in
    0.75 mm strokes: 2.4x the G-code lines of the 2 mm test print.
    """
    semi_x, semi_y = 84.0, 96.0
    # 8 degree steps: chord error 96 * (1 - cos 4 deg) = 0.23 mm.
    angles = np.radians(np.arange(-25.0, 205.0 + 0.1, 8.0))
    arc = LineString(np.column_stack([semi_x * np.cos(angles), semi_y * np.sin(angles)]))
    shape = arc.buffer(band_mm / 2, cap_style="flat", join_style="mitre")
    pins = []
    for degrees in (40.0, 75.0, 105.0, 140.0):
        angle = math.radians(degrees)
        centre = ((semi_x + 2.5) * math.cos(angle), (semi_y + 2.5) * math.sin(angle))
        pins.append(Point(centre).buffer(2.5, quad_segs=2))
    tabs = []
    for end_degrees in (-25.0, 205.0):
        angle = math.radians(end_degrees)
        tab = box(-6.0, -8.0, 6.0, 8.0).difference(box(-1.75, -4.5, 1.75, 4.5))
        tab = affinity.translate(tab, semi_x * math.cos(angle), semi_y * math.sin(angle) - 6.0)
        tabs.append(tab)
    outline = _polygon(unary_union([shape, *pins, *tabs]))
    return _finish(_extrude(outline, height_mm))


def ear_saver(thickness_mm: float = 1.6) -> trimesh.Trimesh:
    """A 150 x 24 mm mask-strap extender with five hook pairs (relieves the ears)."""
    bar = _rounded_box(150.0, 9.0, 4.0)
    hooks = []
    for x in np.linspace(-60.0, 60.0, 5):
        for side in (-1.0, 1.0):
            stem = (
                box(x - 1.8, 0.0, x + 1.8, 7.5 * side)
                if side > 0
                else box(x - 1.8, -7.5, x + 1.8, 0.0)
            )
            lip = box(x - 1.8, 5.5, x + 5.5, 7.5) if side > 0 else box(x - 5.5, -7.5, x + 1.8, -5.5)
            hooks.extend([stem, lip])
    slot = _rounded_box(110.0, 3.0, 1.4)
    outline = _polygon(unary_union([bar, *hooks]).difference(slot))
    return _finish(_extrude(outline, thickness_mm))


def door_opener(thickness_mm: float = 10.0) -> trimesh.Trimesh:
    """A hands-free door opener: a clamp ring for a 22 mm handle, an arm and a hook."""
    ring = (
        Point(0.0, 0.0)
        .buffer(16.0, quad_segs=8)
        .difference(Point(0.0, 0.0).buffer(11.0, quad_segs=8))
    )
    ring = ring.difference(box(-2.0, -20.0, 2.0, -8.0))  # clamping gap
    ears = [box(-9.0, -24.0, -2.0, -14.0), box(2.0, -24.0, 9.0, -14.0)]
    bolt = Point(0.0, -19.5).buffer(1.7, quad_segs=3)
    arm = box(12.0, -6.0, 95.0, 6.0)
    hook = box(85.0, 6.0, 95.0, 30.0).union(box(70.0, 24.0, 95.0, 30.0))
    shape = unary_union([ring, *ears, arm, hook])
    shape = shape.difference(bolt).difference(Point(0.0, 0.0).buffer(11.0, quad_segs=8))
    holes = [Point(x, 0.0).buffer(3.0, quad_segs=3) for x in (35.0, 55.0, 75.0)]
    outline = _polygon(shape.difference(unary_union(holes)))
    return _finish(_extrude(outline, thickness_mm))


def mask_strap(thickness_mm: float = 1.2) -> trimesh.Trimesh:
    """A 190 x 14 mm adjustable head strap with a row of peg holes and a buckle end."""
    strap = _rounded_box(180.0, 10.0, 4.0)
    buckle = _rounded_box(20.0, 14.0, 3.0).difference(_rounded_box(6.0, 9.0, 1.5))
    buckle = affinity.translate(buckle, 95.0, 0.0)
    holes = [Point(x, 0.0).buffer(2.2, quad_segs=2) for x in np.arange(-80.0, 61.0, 10.0)]
    outline = _polygon(unary_union([strap, buckle]).difference(unary_union(holes)))
    return _finish(_extrude(outline, thickness_mm))


def _gear_outline(teeth: int, module_mm: float) -> Polygon:
    pitch_r = teeth * module_mm / 2
    outer_r = pitch_r + module_mm
    root_r = pitch_r - 1.25 * module_mm
    points: list[tuple[float, float]] = []
    pitch = 2 * math.pi / teeth
    # A trapezoid tooth (tip 30 %, root 50 % of the pitch): close enough to an
    # involute for slicing, and 4 vertices per tooth keep the G-code compact.
    for i in range(teeth):
        base = i * pitch
        for fraction, radius in ((0.0, root_r), (0.2, outer_r), (0.5, outer_r), (0.7, root_r)):
            angle = base + fraction * pitch
            points.append((radius * math.cos(angle), radius * math.sin(angle)))
    return Polygon(points)


def spur_gear(teeth: int = 40, module_mm: float = 2.0) -> trimesh.Trimesh:
    """An 84 mm spur gear: 8 mm web with six lightening holes, a 20 mm tall hub, keyed bore."""
    web = _gear_outline(teeth, module_mm)
    lightening = [
        Point(26.0 * math.cos(a), 26.0 * math.sin(a)).buffer(7.0, quad_segs=4)
        for a in np.radians(np.arange(0.0, 360.0, 60.0))
    ]
    bore = Point(0.0, 0.0).buffer(4.0, quad_segs=4).union(box(-1.5, 0.0, 1.5, 5.2))
    web = _polygon(web.difference(unary_union([*lightening, bore])))
    hub = _polygon(Point(0.0, 0.0).buffer(13.0, quad_segs=8).difference(bore))
    mesh = _union([_extrude(web, 8.0), _extrude(hub, 12.0, z0_mm=8.0 - 1e-3)])
    return _finish(mesh)


def pipe_connector(sections: int = 256) -> trimesh.Trimesh:
    """A 24 mm ventilator hose connector, 40 mm tall: flange, barb step, wider bore on top.

    Revolved with 256 facets like a CAD export (real STLs are finely
    tessellated), and stepped, so shells under ledges get exercised.
    """
    profile = np.array(
        [
            [4.0, 0.0],
            [12.0, 0.0],
            [12.0, 3.0],
            [8.0, 3.0],
            [8.0, 25.0],
            [10.0, 25.0],
            [10.0, 40.0],
            [6.0, 40.0],
            [6.0, 28.0],
            [4.0, 28.0],
            [4.0, 0.0],
        ]
    )
    mesh = trimesh.creation.revolve(profile, sections=sections)
    return _finish(mesh)
