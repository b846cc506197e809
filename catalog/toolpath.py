"""Layer regions -> ordered extrusion paths: perimeters, solid and sparse infill, skirt.

Flow follows PrusaSlicer's published model (Slic3r manual, "flow math"): a
line of width w and height h has the cross-section of a rectangle with
semicircular ends, (w - h) h + pi h^2 / 4, and neighbouring lines sit
w - h (1 - pi/4) apart. Which infill is solid comes from surfaces.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import MultiPolygon, Polygon

from catalog.gapfill import MIN_GAP_FRACTION, gap_lines
from catalog.infill import hatch
from catalog.layers import EMPTY, LayerRegions, as_multipolygon
from catalog.paths import Extrusion, Role
from catalog.types import PrinterProfile, SliceSettings
from catalog.widen import grow_into_gaps

Points = NDArray[np.float64]
_Width = TypeVar("_Width", float, NDArray[np.float64])

# PrusaSlicer prints loops shorter than this (holes, pins) at the small-perimeter speed.
SMALL_LOOP_MM = 2 * math.pi * 6.5
# Smallest strip worth a gap-fill line (0.2 mm wide x 1 mm, or mitring noise below that).
_GAP_AREA_MM2 = 0.2
# Offsets keep sharp corners (vertex count, hence G-code size); 3 is PrusaSlicer's limit.
_MITRE = {"join_style": "mitre", "mitre_limit": 3.0}


@dataclass(frozen=True, slots=True)
class Island:
    """One connected piece of a layer.

    ``loops`` holds one family per outline ring (the outer contour and each
    hole): its loops from the innermost to the external one, printed in a
    row as PrusaSlicer does. ``fills`` are the open infill polylines.
    """

    loops: tuple[tuple[Extrusion, ...], ...]
    fills: tuple[Extrusion, ...]


@dataclass(frozen=True, slots=True)
class LayerPaths:
    """One layer of one copy (positions relative to the copy, order decided when emitting)."""

    print_z: float
    height_mm: float
    islands: tuple[Island, ...]


@dataclass(frozen=True, slots=True)
class Widths:
    perimeter: float
    infill: float
    top: float
    first_layer: float

    @staticmethod
    def of(profile: PrinterProfile) -> Widths:
        auto = 1.125 * profile.nozzle_mm
        return Widths(
            perimeter=profile.extrusion_width_mm or auto,
            infill=profile.extrusion_width_mm or auto,
            top=profile.top_solid_width_mm or profile.nozzle_mm,
            first_layer=profile.first_layer_width_mm or auto,
        )


def offset(area: shapely.Geometry, distance_mm: float) -> shapely.Geometry:
    """Mitred offset (negative: inwards), repaired when GEOS returns an invalid polygon.

    Mitre joins on slivers occasionally self-intersect (seen on the headband's
    first layer), and the next boolean operation would then fail.
    """
    result = shapely.buffer(area, distance_mm, **_MITRE)
    if not shapely.is_valid(result):
        result = shapely.make_valid(result)
    return result


def spacing(width_mm: float, height_mm: float) -> float:
    """Centre distance of neighbouring lines (they overlap by their rounded sides)."""
    return width_mm - height_mm * (1.0 - math.pi / 4.0)


def cross_section_mm2(width_mm: _Width, height_mm: float) -> _Width:
    """Area of a line's section (mm2): a rectangle with semicircular sides."""
    return (width_mm - height_mm * (1.0 - math.pi / 4.0)) * height_mm


def plan_layer(
    index: int,
    layers: LayerRegions,
    solid_mask: MultiPolygon,
    sparse_below: MultiPolygon,
    profile: PrinterProfile,
    settings: SliceSettings,
    cache: PlanCache | None = None,
) -> LayerPaths:
    """Perimeters and infill of every island of layer ``index`` (one copy, not yet ordered).

    ``cache`` (one per slice) reuses the perimeters of islands identical to an
    earlier layer's: most layers of a prismatic part are the same outline.
    """
    region = layers.regions[index]
    height = float(layers.height[index])
    widths = Widths.of(profile)
    first = index == 0
    w_perimeter = widths.first_layer if first else widths.perimeter
    w_infill = widths.first_layer if first else widths.infill
    w_top = widths.first_layer if first else widths.top
    s_perimeter = spacing(w_perimeter, height)
    above = layers.regions[index + 1] if index + 1 < len(layers.regions) else EMPTY
    below = layers.regions[index - 1] if index > 0 else EMPTY
    islands: list[Island] = []
    for island in region.geoms:
        key = (
            island.wkb,
            settings.perimeters,
            w_perimeter,
            s_perimeter,
            height,
            settings.thin_gaps,
        )
        if cache is None or key not in cache.perimeters:
            found = _perimeters(
                island, settings.perimeters, w_perimeter, s_perimeter, height, settings.thin_gaps
            )
            if cache is not None:
                cache.perimeters[key] = found
        else:
            found = cache.perimeters[key]
        families, gap_fill, fill_area = found
        fills: list[Extrusion] = list(gap_fill)
        if not fill_area.is_empty:
            inputs = (fill_area, solid_mask, above, below, sparse_below)
            infill_key = (index % 2, index == 0, *(g.wkb for g in inputs), w_perimeter, height)
            if cache is None or infill_key not in cache.infill:
                infill = _infill(
                    index,
                    fill_area,
                    solid_mask,
                    above,
                    below,
                    sparse_below,
                    settings,
                    w_infill,
                    w_top,
                    height,
                    overlap_mm=settings.infill_overlap * w_perimeter,
                )
                if cache is not None:
                    cache.infill[infill_key] = infill
            else:
                infill = cache.infill[infill_key]
            fills.extend(infill)
        if families or fills:
            islands.append(Island(loops=families, fills=tuple(fills)))
    return LayerPaths(
        print_z=float(layers.print_z[index]), height_mm=height, islands=tuple(islands)
    )


def _loops_of(area: MultiPolygon | Polygon) -> list[Points]:
    rings = shapely.get_rings(shapely.get_parts(area))
    return [np.asarray(shapely.get_coordinates(ring)) for ring in rings]


Perimeters = tuple[tuple[tuple[Extrusion, ...], ...], list[Extrusion], MultiPolygon]


@dataclass
class PlanCache:
    """Results reused across the layers of one slice: a prismatic part repeats the same
    outline for most of its height (the gear: 2 outlines in 100 layers)."""

    perimeters: dict[tuple[object, ...], Perimeters] = field(default_factory=dict)
    infill: dict[tuple[object, ...], list[Extrusion]] = field(default_factory=dict)


def _perimeters(
    island: Polygon, count: int, width: float, step: float, height: float, thin_gaps: str
) -> Perimeters:
    """Loop families (inner loops first, external last), gap fill, and the area left for infill.

    A gap is what lies inside a loop's inner edge but outside the next
    loop's outer edge (or the infill area after the last loop): the parts
    too thin for another loop, filled down their middle (gapfill.py).
    """
    levels: list[list[Extrusion]] = []
    gaps: list[shapely.Geometry] = []
    current = offset(island, -width / 2)
    for number in range(count + 1):
        if current.is_empty:
            break
        if number == count:
            break
        role = Role.EXTERNAL_PERIMETER if number == 0 else Role.PERIMETER
        ring_paths = []
        for ring in _loops_of(current):
            length = float(np.sum(np.hypot(*np.diff(ring, axis=0).T)))
            small = length < SMALL_LOOP_MM and role == Role.PERIMETER
            ring_paths.append(Extrusion(ring, Role.SMALL_PERIMETER if small else role, width, True))
        levels.append(ring_paths)
        inner_edge = offset(current, -step / 2)
        current = offset(current, -step)
        next_edge = offset(current, step / 2)
        # The overlay is the costly step (0.75 s of the gear's 2.2 s); where the next loop
        # lost nothing, the areas agree to mitring noise and there is no gap to find.
        if shapely.area(inner_edge) - shapely.area(next_edge) > _GAP_AREA_MM2:
            gaps.append(shapely.difference(inner_edge, next_edge))
    if not levels:
        return (), [], EMPTY
    # The innermost loop's inner edge is half a spacing in from its centre line.
    fill_area = as_multipolygon(offset(current, step / 2))
    gap_fill: list[Extrusion] = []
    if gaps:
        # Opening by the minimum gap width drops the slivers mitred corners leave.
        minimum = MIN_GAP_FRACTION * width
        gap_area = as_multipolygon(
            offset(offset(shapely.union_all(gaps), -minimum / 2), minimum / 2)
        )
        if thin_gaps == "widen":
            loops = [path for level in levels for path in level]
            grown = iter(grow_into_gaps(loops, gap_area, width, step))
            levels = [[next(grown) for _ in level] for level in levels]
        else:
            gap_fill = [
                Extrusion(line, Role.GAP_FILL, line_width, False)
                for line, line_width in gap_lines(gap_area, width, height)
            ]
    return _families(levels), gap_fill, fill_area


def _families(levels: list[list[Extrusion]]) -> tuple[tuple[Extrusion, ...], ...]:
    """Group each inner loop with the external loop it lies closest to."""
    externals = levels[0]
    members: list[list[Extrusion]] = [[] for _ in externals]
    if len(externals) == 1:
        members[0] = [loop for level in levels[1:] for loop in level]
    else:
        rings = np.array([shapely.linearrings(loop.points) for loop in externals])
        for level in levels[1:]:
            for loop in level:
                probe = shapely.points(loop.points[0])
                members[int(np.argmin(shapely.distance(rings, probe)))].append(loop)
    return tuple(
        (*reversed(inner), external) for inner, external in zip(members, externals, strict=True)
    )


def _infill(
    index: int,
    fill_area: MultiPolygon,
    solid_mask: MultiPolygon,
    above: MultiPolygon,
    below: MultiPolygon,
    sparse_below: MultiPolygon,
    settings: SliceSettings,
    w_infill: float,
    w_top: float,
    height: float,
    *,
    overlap_mm: float,
) -> list[Extrusion]:
    angle = settings.infill_angle_deg + (90.0 if index % 2 else 0.0)
    solid = as_multipolygon(shapely.intersection(fill_area, solid_mask))
    sparse = as_multipolygon(shapely.difference(fill_area, solid_mask))
    paths: list[Extrusion] = []
    if not solid.is_empty:
        top = as_multipolygon(shapely.difference(solid, above)) if index > 0 else EMPTY
        # Bridges: solid areas over air or over the sparse infill of the layer below
        # (PrusaSlicer's internal bridges, printed at bridge speed: 342 s on the gear).
        unsupported = shapely.union(
            shapely.difference(solid, below), shapely.intersection(solid, sparse_below)
        )
        bridge = as_multipolygon(shapely.difference(unsupported, top)) if index > 0 else EMPTY
        plain = as_multipolygon(shapely.difference(solid, shapely.union(top, bridge)))
        for part, role, width in (
            (plain, Role.SOLID_INFILL, w_infill),
            (bridge, Role.BRIDGE_INFILL, w_infill),
            (top, Role.TOP_SOLID_INFILL, w_top),
        ):
            part = _drop_slivers(part, width)
            if part.is_empty:
                continue
            step = spacing(width, height)
            # Solid infill gets no perimeter overlap in PrusaSlicer (measured: its solid
            # lines on the mask strap are 0.34 mm shorter than with the 25 % overlap).
            lines_area = _line_ends(part, 0.0, step)
            for line in hatch(lines_area, step, angle):
                paths.append(Extrusion(line, role, width, False))
    if settings.infill > 0 and not sparse.is_empty:
        flow_step = spacing(w_infill, height)
        lines_area = _line_ends(sparse, overlap_mm, flow_step)
        for line in hatch(lines_area, flow_step / min(settings.infill, 1.0), angle):
            paths.append(Extrusion(line, Role.INFILL, w_infill, False))
    return paths


def _line_ends(area: MultiPolygon, overlap_mm: float, flow_spacing_mm: float) -> MultiPolygon:
    """Where infill lines end: the infill/perimeter overlap minus 0.2 of a line spacing.

    PrusaSlicer's rule (its INFILL_OVERLAP_OVER_SPACING = 0.3 of the spacing
    beyond the half spacing a line's own width covers): with 25 % overlap
    the line ends sit 0.03 mm into the perimeters.
    """
    return as_multipolygon(offset(area, overlap_mm - 0.2 * flow_spacing_mm))


def _drop_slivers(area: MultiPolygon, width: float) -> MultiPolygon:
    """Remove parts narrower than a third of a line: they would print as blobs."""
    if area.is_empty:
        return area
    opened = offset(offset(area, -width / 6), width / 6)
    return as_multipolygon(shapely.intersection(opened, area))


def skirt_loops(
    first_layer: list[MultiPolygon], settings: SliceSettings, width_mm: float
) -> list[Points]:
    """Skirt rings around the convex hull of every copy's first layer, innermost first."""
    if settings.skirt_loops <= 0:
        return []
    footprint = shapely.union_all([r for r in first_layer if not r.is_empty])
    if footprint.is_empty:
        return []
    hull = shapely.convex_hull(footprint)
    loops = []
    for number in range(settings.skirt_loops):
        distance = settings.skirt_distance_mm + width_mm / 2 + number * width_mm
        loops.extend(_loops_of(shapely.buffer(hull, distance, quad_segs=4)))
    return loops
