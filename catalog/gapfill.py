"""Gap fill: one line down the middle of the thin strips perimeters leave behind.

PrusaSlicer's classic perimeter generator fills what falls between loops
(too thin for another loop or for infill) with variable-width "gap fill"
along the medial axis. On the 1.8 mm headband band that is 35 m of 0.17 mm
lines: 0.9 cm3 and, at 40 mm/s, 15 min of a 2 h 23 min print.

The centre line here is the chordal axis of a constrained Delaunay
triangulation of the strip: the midpoints of the triangle edges that cross
it, joined triangle by triangle (GEOS does the triangulation in about
0.2 ms per layer, where a Voronoi medial axis took 0.6-8 s). Its width is
the strip's area over the line's length, so the extruded volume equals the
strip's.
"""

from __future__ import annotations

import math

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import MultiPolygon, Polygon

Points = NDArray[np.float64]

# PrusaSlicer ignores gaps narrower than 0.2 x width x (1 - 0.4): 0.054 mm at 0.45 mm.
MIN_GAP_FRACTION = 0.12


def centre_lines(strip: Polygon) -> list[Points]:
    """Chordal-axis polylines of one thin polygon."""
    triangles = shapely.get_parts(shapely.constrained_delaunay_triangles(strip))
    if len(triangles) == 0:
        return []
    corners = shapely.get_coordinates(shapely.get_exterior_ring(triangles)).reshape(-1, 4, 2)[:, :3]
    keys = np.round(corners / 1e-7).astype(np.int64)
    # Edge k of a triangle joins corners k and k + 1; key it by its sorted end points.
    a = keys
    b = np.roll(keys, -1, axis=1)
    low = np.where(
        (a[..., 0] < b[..., 0]) | ((a[..., 0] == b[..., 0]) & (a[..., 1] <= b[..., 1])), 0, 1
    )
    ends = np.stack([a, b], axis=2)  # (t, 3, 2, 2)
    ordered = np.where(low[..., None, None] == 0, ends, ends[:, :, ::-1])
    flat = ordered.reshape(-1, 4)
    _unique, edge_id, counts = np.unique(flat, axis=0, return_inverse=True, return_counts=True)
    edge_id = edge_id.reshape(-1, 3)
    internal = counts[edge_id] == 2
    midpoints = (corners + np.roll(corners, -1, axis=1)) / 2
    segments: list[tuple[tuple[float, float], tuple[float, float]]] = []
    for tri in range(len(corners)):
        inner = np.flatnonzero(internal[tri])
        mids = [tuple(midpoints[tri, k]) for k in inner.tolist()]
        if len(mids) == 2:
            segments.append((mids[0], mids[1]))
        elif len(mids) == 3:
            centre = tuple(corners[tri].mean(axis=0))
            segments.extend((mid, centre) for mid in mids)
        elif len(mids) == 1:
            # The strip's end: run on to the middle of the last triangle.
            segments.append((mids[0], tuple(corners[tri].mean(axis=0))))
    if not segments:
        return []
    merged = shapely.line_merge(shapely.multilinestrings([list(s) for s in segments]))
    return [np.asarray(shapely.get_coordinates(part)) for part in shapely.get_parts(merged)]


def gap_lines(gaps: MultiPolygon, width_mm: float, height_mm: float) -> list[tuple[Points, float]]:
    """Polylines and their extrusion widths filling ``gaps`` (the strips between loops)."""
    minimum = MIN_GAP_FRACTION * width_mm
    lines: list[tuple[Points, float]] = []
    for strip in gaps.geoms:
        if strip.area < minimum * width_mm:
            continue
        polylines = [p for p in centre_lines(strip) if len(p) >= 2]
        length = sum(float(np.hypot(*np.diff(p, axis=0).T).sum()) for p in polylines)
        if length <= 0:
            continue
        # A line of width w and height h fills a strip w - h (1 - pi/4) wide (see toolpath.spacing).
        strip_width = strip.area / length
        if strip_width < minimum:
            continue
        width = strip_width + height_mm * (1.0 - math.pi / 4.0)
        lines.extend((p, width) for p in polylines)
    return lines
