"""The pure slicing heart: (mesh, profile, material, settings) -> SliceResult.

No files, settings, network or clock: the same inputs always give the same
G-code and estimates. Steps: place the part and plan the plate (plate.py),
cut layers (layers.py), build perimeters and infill once for one copy
(toolpath.py), replay them for every copy into moves (motion.py), apply the
cooling slowdown and estimate time (estimate.py), write G-code (gcode.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import shapely
import trimesh
from numpy.typing import NDArray
from shapely.geometry import MultiPolygon

from catalog.estimate import Limits, cooling_feeds, move_times, print_accel
from catalog.gcode import Summary, write_gcode
from catalog.layers import EMPTY, as_multipolygon, slice_layers
from catalog.motion import END_LAYER, MoveBuilder, Moves, emit_layer
from catalog.paths import ROLE_LABELS, Role
from catalog.plate import plan_plate
from catalog.surfaces import solid_masks, sparse_areas, worst_overhang
from catalog.toolpath import PlanCache, plan_layer, skirt_loops
from catalog.types import MaterialSpec, PrinterProfile, SliceResult, SliceSettings
from core.errors import Invalid
from core.i18n import _

Progress = Callable[[float], None]

# Prime line on the front edge of the bed: 0.3 mm high, 0.6 mm wide.
_PRIME_Z_MM = 0.3
_PRIME_WIDTH_MM = 0.6
_PRIME_Y_MM = 3.0
# Above this, an overhang is more than a short bridge (10 mm x 2.5 mm).
_OVERHANG_WARNING_MM2 = 25.0


def check_settings(profile: PrinterProfile, settings: SliceSettings) -> None:
    """Raise ``Invalid`` for settings no printer can print."""
    nozzle = profile.nozzle_mm
    for value in (settings.layer_height_mm, settings.first_layer_height_mm):
        if not 0.04 <= value <= 0.8 * nozzle + 1e-9:
            raise Invalid(
                _(
                    "Layer height {value} mm is outside 0.04 to {limit} mm "
                    "(80 % of the {nozzle} mm nozzle).",
                    value=f"{value:g}",
                    limit=f"{0.8 * nozzle:.2f}",
                    nozzle=f"{nozzle:g}",
                ),
            )
    if not 0.0 <= settings.infill <= 1.0:
        raise Invalid(_("Infill must be between 0 and 1 (0 % to 100 %)."), infill=settings.infill)
    if settings.perimeters < 1 or settings.top_layers < 0 or settings.bottom_layers < 0:
        raise Invalid(
            _("At least one perimeter is needed, and solid layer counts cannot be negative.")
        )
    if settings.copies < 1:
        raise Invalid(_("The number of copies must be at least 1."), copies=settings.copies)
    if settings.thin_gaps not in ("fill", "widen"):
        raise Invalid(
            _("Thin gaps are handled by fill or widen, not {value}.", value=settings.thin_gaps)
        )


def _place(mesh: trimesh.Trimesh, rotated: bool) -> trimesh.Trimesh:
    placed = mesh.copy()
    if rotated:
        quarter_turn = np.array(
            [
                [0.0, -1.0, 0.0, 0.0],
                [1.0, 0.0, 0.0, 0.0],
                [0.0, 0.0, 1.0, 0.0],
                [0.0, 0.0, 0.0, 1.0],
            ]
        )
        placed.apply_transform(quarter_turn)
    placed.apply_translation(-placed.bounds[0])
    return placed


def prime_moves(profile: PrinterProfile) -> list[tuple[float, float, float, float, float]]:
    """The purge line before the print: (x, y, z, e, feed mm/s) targets, from the home corner."""
    length = min(60.0, profile.bed_x_mm - 20.0)
    area = (_PRIME_WIDTH_MM - _PRIME_Z_MM) * _PRIME_Z_MM + math.pi * _PRIME_Z_MM**2 / 4
    filament_area = math.pi * (profile.filament_diameter_mm / 2) ** 2
    return [
        (0.0, 0.0, _PRIME_Z_MM, 0.0, profile.max_feedrate_z_mm_s),
        (5.0, _PRIME_Y_MM, _PRIME_Z_MM, 0.0, profile.travel_speed_mm_s),
        (5.0 + length, _PRIME_Y_MM, _PRIME_Z_MM, length * area / filament_area, 20.0),
    ]


def prime_gcode(profile: PrinterProfile) -> list[str]:
    """``prime_moves`` as G-code (for reference slicers' start scripts in bench/)."""
    return [
        f"G1 X{x:.3f} Y{y:.3f} Z{z:.3f}" + (f" E{e:.5f}" if e else "") + f" F{feed * 60:.0f}"
        for x, y, z, e, feed in prime_moves(profile)
    ]


def _prime(builder: MoveBuilder, profile: PrinterProfile) -> None:
    (_x, _y, z, _e, z_feed), (x1, y1, _z1, _e1, travel), (x2, y2, _z2, e2, feed) = prime_moves(
        profile
    )
    builder.z_to(z, z_feed)
    builder.line(x1, y1, 0.0, travel, Role.TRAVEL)
    builder.line(x2, y2, e2, feed, Role.PRIME)


def _finish(builder: MoveBuilder, profile: PrinterProfile, top_z: float) -> None:
    builder.layer = END_LAYER
    builder.retract()
    builder.z_to(min(top_z + 10.0, profile.max_z_mm), profile.max_feedrate_z_mm_s)
    builder.line(5.0, profile.bed_y_mm - 10.0, 0.0, profile.travel_speed_mm_s, Role.TRAVEL)


def slice_mesh(
    mesh: trimesh.Trimesh,
    profile: PrinterProfile,
    material: MaterialSpec,
    settings: SliceSettings,
    *,
    progress: Progress | None = None,
) -> SliceResult:
    """Slice ``settings.copies`` copies of ``mesh`` (mm) into Marlin G-code with estimates.

    Raises ``Invalid`` for impossible settings, an empty mesh or copies that
    do not fit the bed. ``progress`` receives fractions from 0 to 1.
    """
    report = progress or (lambda _fraction: None)
    check_settings(profile, settings)
    if len(mesh.faces) == 0:
        raise Invalid(_("The mesh has no triangles."))
    layout = plan_plate(mesh, profile, settings)
    placed = _place(mesh, layout.rotated)
    layers = slice_layers(placed, settings.layer_height_mm, settings.first_layer_height_mm)
    if all(region.is_empty for region in layers.regions):
        raise Invalid(_("The mesh encloses no volume to print (a flat or open surface?)."))
    report(0.15)
    masks = solid_masks(layers, settings)
    sparse = sparse_areas(layers, masks, profile, settings)
    count = len(layers.regions)
    planned = []
    cache = PlanCache()
    for index in range(count):
        below = sparse[index - 1] if index > 0 else EMPTY
        planned.append(plan_layer(index, layers, masks[index], below, profile, settings, cache))
        if index % 10 == 9:
            report(0.15 + 0.55 * (index + 1) / count)
    offsets = list(layout.offsets_mm)
    first_regions = [_shifted(layers.regions[0], dx, dy) for dx, dy in offsets]
    skirt_width = profile.first_layer_width_mm or 1.125 * profile.nozzle_mm
    skirt = skirt_loops(first_regions, settings, skirt_width)

    builder = MoveBuilder(profile, material, origin=(0.0, 0.0, 0.0))
    _prime(builder, profile)
    for index, layer in enumerate(planned):
        builder.set_layer(index, layer.print_z)
        # Alternate the copy order every layer: the nozzle starts next to where it stopped.
        order = offsets if index % 2 == 0 else offsets[::-1]
        emit_layer(
            builder, layer, order, skirt if index < settings.skirt_height_layers else [], index == 0
        )
    _finish(builder, profile, float(layers.print_z[-1]))
    moves = builder.build()
    report(0.75)

    moves = moves.with_feed(
        cooling_feeds(moves, material.min_layer_time_s, material.min_print_speed_mm_s)
    )
    accel = print_accel(moves, profile)
    times = move_times(moves, Limits.of(profile), accel)
    report(0.85)
    result = _totals(moves, times, profile, material, settings, count)
    summary = Summary(
        print_time_s=result.print_time_s,
        filament_mm=result.filament_mm,
        filament_cm3=result.filament_cm3,
        filament_g=result.filament_g,
        cost_eur=result.cost_eur,
        layers=count,
    )
    gcode = write_gcode(
        moves, times, accel, layers.print_z, layers.height, profile, material, summary
    )
    report(1.0)
    warnings = []
    hanging_layer, hanging_mm2 = worst_overhang(layers)
    if hanging_mm2 > _OVERHANG_WARNING_MM2:
        warnings.append(
            _(
                "{area} mm2 of layer {layer} (z = {z} mm) hang over air; distrifab prints no "
                "supports: turn the part or check the preview.",
                area=f"{hanging_mm2:.0f}",
                layer=hanging_layer + 1,
                z=f"{layers.print_z[hanging_layer]:.2f}",
            )
        )
    if layers.open_chains:
        warnings.append(
            _(
                "The mesh is not closed: {count} open outline pieces were joined to slice it; "
                "check the preview.",
                count=layers.open_chains,
            )
        )
    return SliceResult(
        gcode=gcode,
        print_time_s=result.print_time_s,
        filament_mm=result.filament_mm,
        filament_g=result.filament_g,
        cost_eur=result.cost_eur,
        material_cost_eur=result.material_cost_eur,
        machine_cost_eur=result.machine_cost_eur,
        energy_cost_eur=result.energy_cost_eur,
        layers=count,
        copies=settings.copies,
        warnings=tuple(warnings),
        filament_cm3=result.filament_cm3,
        layer_height_mm=settings.layer_height_mm,
        height_mm=float(layers.print_z[-1]),
        time_by_feature_s=result.time_by_feature_s,
        copy_positions_mm=tuple(offsets),
        rotated_deg=90.0 if layout.rotated else 0.0,
    )


def _shifted(region: MultiPolygon, dx: float, dy: float) -> MultiPolygon:
    return as_multipolygon(shapely.transform(region, lambda xy: xy + np.array([dx, dy])))


def _totals(
    moves: Moves,
    times: NDArray[np.float64],
    profile: PrinterProfile,
    material: MaterialSpec,
    settings: SliceSettings,
    layers: int,
) -> SliceResult:
    extruding = (moves.e > 0) & (moves.role != Role.RETRACT)
    filament_mm = float(moves.e[extruding].sum())
    filament_cm3 = filament_mm * math.pi * (profile.filament_diameter_mm / 2) ** 2 / 1000.0
    filament_g = filament_cm3 * material.density_g_cm3
    print_time_s = float(times.sum())
    hours = print_time_s / 3600.0
    material_cost = filament_g / 1000.0 * material.price_eur_per_kg
    machine_cost = hours * profile.machine_eur_per_h
    energy_cost = hours * profile.power_w / 1000.0 * settings.energy_eur_per_kwh
    by_role = np.bincount(moves.role.astype(np.int64), weights=times, minlength=len(Role))
    features: dict[str, float] = {}
    for role in Role:
        label = ROLE_LABELS.get(role, role.name.capitalize()).lower()
        features[label] = features.get(label, 0.0) + float(by_role[role])
    return SliceResult(
        gcode="",
        print_time_s=print_time_s,
        filament_mm=filament_mm,
        filament_g=filament_g,
        cost_eur=material_cost + machine_cost + energy_cost,
        material_cost_eur=material_cost,
        machine_cost_eur=machine_cost,
        energy_cost_eur=energy_cost,
        layers=layers,
        copies=settings.copies,
        filament_cm3=filament_cm3,
        time_by_feature_s=tuple(sorted((k, v) for k, v in features.items() if v > 0)),
    )
