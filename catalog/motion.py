"""Ordered extrusion paths -> machine moves (x, y, z, relative e, feedrate, role, layer).

Moves are kept as numpy columns so that the estimator, the cooling slowdown
and the G-code writer all work on whole arrays. Travel logic follows
PrusaSlicer 2.5: retract (and lift) when a travel is longer than
``retract_before_travel_mm`` and at every layer change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from catalog.paths import Extrusion, Role
from catalog.toolpath import LayerPaths, cross_section_mm2
from catalog.types import MaterialSpec, PrinterProfile

Points = NDArray[np.float64]

# Layer index of moves that belong to the start or end script.
START_LAYER = -1
END_LAYER = -2


@dataclass(frozen=True, slots=True)
class Moves:
    """Move targets and feeds; move i goes from target i - 1 (or ``origin``) to target i."""

    origin: tuple[float, float, float]
    x: NDArray[np.float64]
    y: NDArray[np.float64]
    z: NDArray[np.float64]
    e: NDArray[np.float64]  # relative extrusion, mm of filament (negative: retract)
    feed_mm_s: NDArray[np.float64]
    role: NDArray[np.int8]
    layer: NDArray[np.int32]
    width_mm: NDArray[np.float32]  # 0 for non-extruding moves

    def with_feed(self, feed_mm_s: NDArray[np.float64]) -> Moves:
        return Moves(
            self.origin,
            self.x,
            self.y,
            self.z,
            self.e,
            feed_mm_s,
            self.role,
            self.layer,
            self.width_mm,
        )


def feature_speed(role: Role, profile: PrinterProfile, first_layer: bool) -> float:
    """Nominal feed of an extrusion (mm/s): the first layer overrides every feature."""
    if first_layer:
        return profile.first_layer_speed_mm_s
    return {
        Role.SKIRT: profile.perimeter_speed_mm_s,
        Role.EXTERNAL_PERIMETER: profile.external_perimeter_speed_mm_s,
        Role.PERIMETER: profile.perimeter_speed_mm_s,
        Role.SMALL_PERIMETER: profile.small_perimeter_speed_mm_s,
        Role.INFILL: profile.infill_speed_mm_s,
        Role.SOLID_INFILL: profile.solid_infill_speed_mm_s,
        Role.TOP_SOLID_INFILL: profile.top_solid_speed_mm_s,
        Role.BRIDGE_INFILL: profile.bridge_speed_mm_s,
        Role.GAP_FILL: profile.gap_fill_speed_mm_s,
    }.get(role, profile.perimeter_speed_mm_s)


class MoveBuilder:
    """Accumulates moves; single moves as rows, whole paths as array chunks."""

    def __init__(
        self,
        profile: PrinterProfile,
        material: MaterialSpec,
        origin: tuple[float, float, float],
    ) -> None:
        self.profile = profile
        self.material = material
        self.origin = origin
        self.x, self.y, self.z = origin
        self.print_z = origin[2]
        self.retracted = False
        self.layer = START_LAYER
        self._chunks: list[tuple[NDArray[np.float64], ...]] = []
        self._rows: list[tuple[float, float, float, float, float, int, int, float]] = []
        filament_area = math.pi * (profile.filament_diameter_mm / 2) ** 2
        self._e_per_mm3 = material.extrusion_multiplier / filament_area

    # -- single moves -------------------------------------------------------------------
    def _row(
        self, x: float, y: float, z: float, e: float, feed: float, role: Role, width: float
    ) -> None:
        self._rows.append((x, y, z, e, feed, int(role), self.layer, width))
        self.x, self.y, self.z = x, y, z

    def _flush_rows(self) -> None:
        if self._rows:
            self._chunks.append(
                tuple(
                    np.asarray(column, dtype=np.float64) for column in zip(*self._rows, strict=True)
                )
            )
            self._rows = []

    def retract(self, *, lift: bool = True) -> None:
        if self.retracted or self.profile.retract_length_mm <= 0:
            return
        p = self.profile
        self._row(
            self.x, self.y, self.z, -p.retract_length_mm, p.retract_speed_mm_s, Role.RETRACT, 0.0
        )
        if lift and p.retract_lift_mm > 0:
            lifted = self.print_z + p.retract_lift_mm
            self._row(self.x, self.y, lifted, 0.0, p.max_feedrate_z_mm_s, Role.TRAVEL, 0.0)
        self.retracted = True

    def unretract(self) -> None:
        if not self.retracted:
            return
        p = self.profile
        if abs(self.z - self.print_z) > 1e-9:
            self._row(self.x, self.y, self.print_z, 0.0, p.max_feedrate_z_mm_s, Role.TRAVEL, 0.0)
        self._row(
            self.x, self.y, self.z, p.retract_length_mm, p.retract_speed_mm_s, Role.RETRACT, 0.0
        )
        self.retracted = False

    def set_layer(self, layer: int, print_z: float) -> None:
        """Layer change: retract (and lift), then move Z up to the new layer (+ lift)."""
        self.layer = layer
        if self.profile.retract_on_layer_change and layer >= 0:
            self.retract(lift=False)  # the move to the new layer below lifts instead
        self.print_z = print_z
        lift = self.profile.retract_lift_mm if self.retracted else 0.0
        self._row(
            self.x, self.y, print_z + lift, 0.0, self.profile.max_feedrate_z_mm_s, Role.TRAVEL, 0.0
        )

    def travel_to(self, x: float, y: float) -> None:
        distance = math.hypot(x - self.x, y - self.y)
        if distance < 1e-6:
            self.unretract()
            return
        if distance > self.profile.retract_before_travel_mm:
            self.retract()
        self._row(x, y, self.z, 0.0, self.profile.travel_speed_mm_s, Role.TRAVEL, 0.0)
        self.unretract()

    # -- paths ----------------------------------------------------------------------------
    def extrude_path(self, path: Extrusion, height: float, feed: float) -> None:
        """Travel to the path's start then extrude along it at ``feed`` mm/s."""
        points = path.points
        self.travel_to(float(points[0, 0]), float(points[0, 1]))
        targets = points[1:]
        if len(targets) == 0:
            return
        self._flush_rows()
        steps = np.diff(points, axis=0)
        lengths = np.hypot(steps[:, 0], steps[:, 1])
        n = len(targets)
        width = path.segment_widths()
        role = path.role
        e = lengths * cross_section_mm2(width, height) * self._e_per_mm3
        self._chunks.append(
            (
                targets[:, 0].astype(np.float64),
                targets[:, 1].astype(np.float64),
                np.full(n, self.z),
                e,
                np.full(n, feed),
                np.full(n, float(role)),
                np.full(n, float(self.layer)),
                width,
            )
        )
        self.x, self.y = float(targets[-1, 0]), float(targets[-1, 1])

    def line(self, x: float, y: float, e: float, feed: float, role: Role) -> None:
        """One explicit move (start and end scripts)."""
        self._row(x, y, self.z, e, feed, role, 0.0)

    def z_to(self, z: float, feed: float) -> None:
        self.print_z = z
        self._row(self.x, self.y, z, 0.0, feed, Role.TRAVEL, 0.0)

    def build(self) -> Moves:
        self._flush_rows()
        columns = [np.concatenate([chunk[i] for chunk in self._chunks]) for i in range(8)]
        return Moves(
            origin=self.origin,
            x=columns[0],
            y=columns[1],
            z=columns[2],
            e=columns[3],
            feed_mm_s=columns[4],
            role=columns[5].astype(np.int8),
            layer=columns[6].astype(np.int32),
            width_mm=columns[7].astype(np.float32),
        )


def order_group(paths: list[Extrusion], x: float, y: float) -> list[Extrusion]:
    """Greedy nearest-neighbour order of open paths (either direction) from (x, y)."""
    if len(paths) <= 1:
        return [p.starting_near(x, y) for p in paths]
    heads = np.array([p.points[0] for p in paths])
    tails = np.array([p.points[-1] for p in paths])
    left = np.ones(len(paths), dtype=bool)
    ordered: list[Extrusion] = []
    for _ in range(len(paths)):
        d_head = np.where(left, (heads[:, 0] - x) ** 2 + (heads[:, 1] - y) ** 2, np.inf)
        d_tail = np.where(left, (tails[:, 0] - x) ** 2 + (tails[:, 1] - y) ** 2, np.inf)
        i_head, i_tail = int(np.argmin(d_head)), int(np.argmin(d_tail))
        if d_head[i_head] <= d_tail[i_tail]:
            index, chosen = i_head, paths[i_head]
        else:
            index, chosen = i_tail, paths[i_tail].reversed()
        left[index] = False
        ordered.append(chosen)
        x, y = float(chosen.points[-1, 0]), float(chosen.points[-1, 1])
    return ordered


def _nearest_vertex_distance(points: Points, x: float, y: float) -> float:
    return float(np.min((points[:, 0] - x) ** 2 + (points[:, 1] - y) ** 2))


def emit_layer(
    builder: MoveBuilder,
    layer: LayerPaths,
    offsets: list[tuple[float, float]],
    skirt: list[Points],
    first_layer: bool,
) -> None:
    """Skirt, then every copy's islands nearest first: loop families nearest first, then infill."""
    profile = builder.profile
    height = layer.height_mm

    def extrude(path: Extrusion) -> None:
        builder.extrude_path(path, height, feature_speed(path.role, profile, first_layer))

    for loop in skirt:
        path = Extrusion(loop, Role.SKIRT, _skirt_width(profile), True)
        extrude(path.starting_near(builder.x, builder.y))
    for dx, dy in offsets:
        shift = np.array([dx, dy])
        remaining = list(layer.islands)
        while remaining:
            here = (builder.x - dx, builder.y - dy)
            pick = min(
                range(len(remaining)),
                key=lambda i: min(
                    (_nearest_vertex_distance(f[-1].points, *here) for f in remaining[i].loops),
                    default=float("inf"),
                ),
            )
            island = remaining.pop(pick)
            families = list(island.loops)
            while families:
                here = (builder.x - dx, builder.y - dy)
                index = min(
                    range(len(families)),
                    key=lambda i: _nearest_vertex_distance(families[i][0].points, *here),
                )
                for path in families.pop(index):
                    extrude(path.shifted(shift).starting_near(builder.x, builder.y))
            shifted = [p.shifted(shift) for p in island.fills]
            for path in order_group(shifted, builder.x, builder.y):
                extrude(path)


def _skirt_width(profile: PrinterProfile) -> float:
    return profile.first_layer_width_mm or 1.125 * profile.nozzle_mm
