"""Rectilinear hatching of a region: parallel lines joined along the boundary into zig-zags.

Lines come from a vectorised scanline pass over the region's edges (even-odd
pairs of crossings), in a frame rotated by the fill angle. Each line end
remembers where it lies on its boundary ring (ring, arc length), so two
lines of neighbouring scanlines ending on the same ring are joined by the
piece of ring between them, as PrusaSlicer's connected rectilinear infill
does (up to ``infill_anchor_max``, 50 mm by default). Without those links
the headband's thin core printed as 8305 retracted hops instead of
PrusaSlicer's 1904 retractions, +10 % print time.
"""

from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import MultiPolygon

Points = NDArray[np.float64]
# PrusaSlicer 2.5's default infill_anchor_max: longer boundary links are not made.
MAX_LINK_MM = 50.0


@dataclass(frozen=True, slots=True)
class _Rings:
    """Boundary rings as Python lists, for fast arc extraction."""

    coords: list[list[tuple[float, float]]]  # closed: last == first
    arc: list[list[float]]  # arc length at each vertex, from 0 to the ring length

    def length(self, ring: int) -> float:
        return self.arc[ring][-1]

    def between(
        self, ring: int, start: float, stop: float, forward: bool
    ) -> list[tuple[float, float]]:
        """Ring vertices strictly inside the arc from ``start`` to ``stop`` (ring order or not)."""
        if forward:
            return self._forward(ring, start, stop)
        return self._forward(ring, stop, start)[::-1]

    def gap(self, ring: int, start: float, stop: float, forward: bool) -> float:
        """Arc length from ``start`` to ``stop`` along (or against) the ring order."""
        return ((stop - start) if forward else (start - stop)) % self.length(ring)

    def _forward(self, ring: int, start: float, stop: float) -> list[tuple[float, float]]:
        arc, coords = self.arc[ring], self.coords[ring]
        first = bisect.bisect_right(arc, start)
        if stop >= start:
            last = bisect.bisect_left(arc, stop)
            return coords[first:last]
        # Wrap past the closing vertex (index -1 duplicates index 0).
        return coords[first:-1] + coords[: bisect.bisect_left(arc, stop)]


@dataclass(frozen=True, slots=True)
class Lines:
    """Scanline intervals: line index, end points and where each end lies on the boundary."""

    k: NDArray[np.int64]
    start: Points  # (n, 2) in the part's frame
    stop: Points
    start_ring: NDArray[np.int64]
    stop_ring: NDArray[np.int64]
    start_arc: NDArray[np.float64]
    stop_arc: NDArray[np.float64]


def _boundary(
    region: MultiPolygon,
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64], _Rings]:
    """Edges ``(n, 2, 2)``, their ring, the arc length at their start, and the rings."""
    rings = shapely.get_rings(shapely.get_parts(region))
    coords, ring_index = shapely.get_coordinates(rings, return_index=True)
    same = ring_index[1:] == ring_index[:-1]
    start, stop = coords[:-1][same], coords[1:][same]
    edge_ring = ring_index[:-1][same]
    lengths = np.hypot(*(stop - start).T)
    cumulative = np.cumsum(lengths) - lengths
    ring_first = np.searchsorted(edge_ring, edge_ring, side="left")
    offsets = np.r_[0.0, np.cumsum(lengths)]
    edge_arc = cumulative - offsets[ring_first] + 0.0
    arcs: list[list[float]] = []
    ring_coords: list[list[tuple[float, float]]] = []
    bounds = np.flatnonzero(np.r_[True, ring_index[1:] != ring_index[:-1], True])
    for begin, end in itertools.pairwise(bounds):
        points = coords[begin:end]
        steps = np.hypot(*np.diff(points, axis=0).T)
        arcs.append(np.r_[0.0, np.cumsum(steps)].tolist())
        ring_coords.append([(float(x), float(y)) for x, y in points])
    return (
        np.stack([start, stop], axis=1),
        edge_ring.astype(np.int64),
        edge_arc,
        _Rings(ring_coords, arcs),
    )


def _rotate(points: NDArray[np.float64], angle_rad: float) -> NDArray[np.float64]:
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    x, y = points[..., 0], points[..., 1]
    return np.stack([c * x - s * y, s * x + c * y], axis=-1)


def scan_lines(region: MultiPolygon, spacing_mm: float, angle_deg: float) -> tuple[Lines, _Rings]:
    """Intervals of the lines ``y' = k * spacing`` (frame rotated by ``angle_deg``) inside ``region``.

    Sorted by k then x'. Lines sit on a global grid so layers with the same
    angle stack exactly.
    """
    edges, edge_ring, edge_arc, rings = _boundary(region)
    local = _rotate(edges, -math.radians(angle_deg))
    y0, y1 = local[:, 0, 1], local[:, 1, 1]
    low, high = np.minimum(y0, y1), np.maximum(y0, y1)
    # Half-open rule [low, high): a line through a vertex counts that vertex once.
    k_first = np.ceil(low / spacing_mm).astype(np.int64)
    k_last = np.ceil(high / spacing_mm).astype(np.int64)
    counts = np.maximum(k_last - k_first, 0)
    total = int(counts.sum())
    edge = np.repeat(np.arange(len(edges)), counts)
    k = np.repeat(k_first, counts) + (
        np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    )
    t = (k * spacing_mm - y0[edge]) / (y1[edge] - y0[edge])
    x_local = local[edge, 0, 0] + t * (local[edge, 1, 0] - local[edge, 0, 0])
    order = np.lexsort((x_local, k))
    k, edge, t = k[order], edge[order], t[order]
    # Crossings of one line pair up inside-outside; an odd count is a numerical
    # glitch at a tangent vertex: that line is dropped.
    line_start = np.flatnonzero(np.r_[True, k[1:] != k[:-1]]) if total else np.zeros(0, np.int64)
    line_count = np.diff(np.r_[line_start, total])
    good = ~np.repeat(line_count % 2 == 1, line_count)
    k, edge, t = k[good], edge[good], t[good]
    points = edges[edge, 0] + t[:, None] * (edges[edge, 1] - edges[edge, 0])
    arc = edge_arc[edge] + t * np.hypot(*(edges[edge, 1] - edges[edge, 0]).T)
    ring = edge_ring[edge]
    lines = Lines(
        k=k[0::2],
        start=points[0::2],
        stop=points[1::2],
        start_ring=ring[0::2],
        stop_ring=ring[1::2],
        start_arc=arc[0::2],
        stop_arc=arc[1::2],
    )
    return lines, rings


def hatch(
    region: MultiPolygon,
    spacing_mm: float,
    angle_deg: float,
    *,
    max_link_mm: float = MAX_LINK_MM,
) -> list[Points]:
    """Polylines filling ``region`` with lines ``spacing_mm`` apart, linked along its boundary."""
    if region.is_empty:
        return []
    lines, rings = scan_lines(region, spacing_mm, angle_deg)
    if len(lines.k) == 0:
        return []
    chains = _link(lines, rings, max_link_mm)
    return [np.asarray(chain, dtype=np.float64) for chain in chains if len(chain) >= 2]


def _neighbours(lines: Lines) -> tuple[list[int], list[int]]:
    """For every line end (2 i + side), the next and previous line end along its ring."""
    ring = np.r_[lines.start_ring, lines.stop_ring]
    arc = np.r_[lines.start_arc, lines.stop_arc]
    count = len(lines.k)
    ids = np.r_[2 * np.arange(count), 2 * np.arange(count) + 1]
    order = np.lexsort((arc, ring))
    ring_sorted, ids_sorted = ring[order], ids[order]
    first = np.r_[True, ring_sorted[1:] != ring_sorted[:-1]]
    last = np.r_[ring_sorted[1:] != ring_sorted[:-1], True]
    group_start = np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
    group_end = np.minimum.accumulate(np.where(last, np.arange(len(order)), len(order))[::-1])[::-1]
    positions = np.arange(len(order))
    next_pos = np.where(last, group_start, positions + 1)
    prev_pos = np.where(first, group_end, positions - 1)
    following = np.empty(2 * count, dtype=np.int64)
    preceding = np.empty(2 * count, dtype=np.int64)
    following[ids_sorted] = ids_sorted[next_pos]
    preceding[ids_sorted] = ids_sorted[prev_pos]
    return following.tolist(), preceding.tolist()


class _Chain:
    __slots__ = ("end", "points")

    def __init__(self, points: list[tuple[float, float]], end: int) -> None:
        self.points = points
        self.end = end  # line end id (2 i + side) the chain stops at


def _link(lines: Lines, rings: _Rings, limit: float) -> list[list[tuple[float, float]]]:
    """Join intervals of consecutive scanlines into zig-zag chains, in one pass.

    A chain ending at line end E continues into an interval of the next
    scanline only through E's immediate neighbour along the boundary ring
    (nothing else ends on the ring in between), as PrusaSlicer does: its
    links are then short (solid: at most 4.7 mm on the gear) where a
    nearest-by-arc rule made 39 mm detours around teeth.
    """
    ks = lines.k.tolist()
    points = [tuple(p) for p in np.r_[lines.start, lines.stop].tolist()]
    count = len(ks)
    ring_of = np.r_[lines.start_ring, lines.stop_ring].tolist()
    arc_of = np.r_[lines.start_arc, lines.stop_arc].tolist()
    following, preceding = _neighbours(lines)

    def position(end: int) -> tuple[float, float]:
        # end ids are 2 i + side; the point arrays are [starts..., stops...].
        return points[end // 2 + (count if end % 2 else 0)]

    def index_of(end: int) -> int:
        return end // 2 + (count if end % 2 else 0)

    chains_at: dict[int, _Chain] = {}  # open chains by the line end they stop at
    finished: list[_Chain] = []
    line_now: int | None = None
    previous_ends: set[int] = set()
    current_ends: set[int] = set()
    for i, line in enumerate(ks):
        if line != line_now:
            if line_now is None or line != line_now + 1:
                stale = previous_ends | current_ends
                previous_ends = set()
            else:
                stale = previous_ends
                previous_ends = current_ends
            for end in stale:
                chain = chains_at.pop(end, None)
                if chain is not None:
                    finished.append(chain)
            current_ends = set()
            line_now = line
        chosen: tuple[_Chain, int, bool] | None = None
        best_gap = limit
        for side in (0, 1):
            here = 2 * i + side
            for neighbour, forward in ((preceding[here], True), (following[here], False)):
                if neighbour not in previous_ends or neighbour not in chains_at:
                    continue
                ring = ring_of[index_of(neighbour)]
                gap = rings.gap(ring, arc_of[index_of(neighbour)], arc_of[index_of(here)], forward)
                if gap <= best_gap:
                    best_gap = gap
                    chosen = (chains_at[neighbour], side, forward)
        enter = chosen[1] if chosen else 0
        entry, exit_ = 2 * i + enter, 2 * i + 1 - enter
        if chosen is not None:
            chain, _side, forward = chosen
            del chains_at[chain.end]
            previous_ends.discard(chain.end)
            ring = ring_of[index_of(chain.end)]
            chain.points.extend(
                rings.between(ring, arc_of[index_of(chain.end)], arc_of[index_of(entry)], forward)
            )
            chain.points.extend([position(entry), position(exit_)])
        else:
            chain = _Chain([position(entry), position(exit_)], exit_)
        chain.end = exit_
        chains_at[exit_] = chain
        current_ends.add(exit_)
    finished.extend(chains_at.values())
    return [chain.points for chain in finished]
