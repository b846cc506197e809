"""Plain data for the slicer (``mesh + profile + material + settings -> SliceResult``).

Printer profiles and materials are data shipped in ``catalog/data/`` and
loaded into these frozen dataclasses; the slicer never reads files, settings
or the clock.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PrinterProfile:
    key: str  # "prusa-mk3s"
    name: str
    bed_x_mm: float
    bed_y_mm: float
    max_z_mm: float
    nozzle_mm: float = 0.4
    filament_diameter_mm: float = 1.75
    # Machine limits, as Marlin's M201/M203/M204/M205 take them.
    max_feedrate_xy_mm_s: float = 200.0
    max_feedrate_z_mm_s: float = 12.0
    max_feedrate_e_mm_s: float = 120.0
    max_accel_xy_mm_s2: float = 1000.0
    max_accel_z_mm_s2: float = 200.0
    max_accel_e_mm_s2: float = 5000.0
    accel_print_mm_s2: float = 1000.0
    accel_travel_mm_s2: float = 1250.0
    accel_retract_mm_s2: float = 1250.0
    jerk_xy_mm_s: float = 8.0
    jerk_z_mm_s: float = 0.4
    jerk_e_mm_s: float = 4.5
    # Feature speeds (mm/s), PrusaSlicer's table: they decide the time estimate
    # far more than accelerations do (see shared/notes/slicing.md).
    perimeter_speed_mm_s: float = 45.0
    external_perimeter_speed_mm_s: float = 25.0
    infill_speed_mm_s: float = 80.0
    solid_infill_speed_mm_s: float = 80.0
    top_solid_speed_mm_s: float = 40.0
    first_layer_speed_mm_s: float = 20.0
    travel_speed_mm_s: float = 180.0
    retract_length_mm: float = 0.8
    retract_speed_mm_s: float = 35.0
    power_w: float = 120.0  # mean electrical draw while printing
    machine_eur_per_h: float = 0.5  # wear and amortisation
    # Added for the slicer (defaults keep older callers working).
    bridge_speed_mm_s: float = 25.0
    gap_fill_speed_mm_s: float = 40.0
    # Loops shorter than 2 x pi x 6.5 mm (holes, pins) print at this speed, as PrusaSlicer does.
    small_perimeter_speed_mm_s: float = 25.0
    # Per-feature accelerations (M204 S before each feature); 0 means accel_print_mm_s2.
    accel_perimeter_mm_s2: float = 0.0
    accel_infill_mm_s2: float = 0.0
    accel_first_layer_mm_s2: float = 0.0
    retract_lift_mm: float = 0.0  # Z hop on retracted travels
    retract_before_travel_mm: float = 1.0  # shorter travels are not retracted
    retract_on_layer_change: bool = True
    # Extrusion widths in mm; 0 means automatic from the nozzle (PrusaSlicer's rule:
    # 1.125 x nozzle for perimeters and infill, 1 x nozzle for top solid infill).
    extrusion_width_mm: float = 0.0
    top_solid_width_mm: float = 0.0
    first_layer_width_mm: float = 0.0
    # Firmware family written in the G-code header and used to pick M-codes.
    gcode_flavor: str = "marlin2"
    bed_shape_note: str = ""  # free text shown to operators (e.g. "use the glue stick")


@dataclass(frozen=True, slots=True)
class MaterialSpec:
    key: str  # "PLA"
    name: str
    density_g_cm3: float
    price_eur_per_kg: float
    nozzle_temp_c: int
    bed_temp_c: int
    min_layer_time_s: float = 10.0  # cooling slowdown floor
    min_print_speed_mm_s: float = 15.0  # the cooling slowdown never goes below this
    first_layer_nozzle_temp_c: int = 0  # 0 means nozzle_temp_c
    first_layer_bed_temp_c: int = 0  # 0 means bed_temp_c
    fan_percent: int = 100  # part cooling fan from layer 2 on
    extrusion_multiplier: float = 1.0


@dataclass(frozen=True, slots=True)
class SliceSettings:
    layer_height_mm: float = 0.2
    first_layer_height_mm: float = 0.2
    perimeters: int = 2
    top_layers: int = 4
    bottom_layers: int = 4
    infill: float = 0.15  # 0..1
    skirt_loops: int = 1
    skirt_distance_mm: float = 6.0
    copies: int = 1
    copy_spacing_mm: float = 6.0
    energy_eur_per_kwh: float = 0.25
    skirt_height_layers: int = 1
    infill_angle_deg: float = 45.0  # sparse and solid lines turn 90 degrees every layer
    infill_overlap: float = 0.25  # of the perimeter width, so infill bonds to the walls
    # Walls that are not a whole number of lines leave thin gaps between loops:
    # "fill" runs a line down each gap (PrusaSlicer's classic perimeters), "widen" grows
    # the loops around it instead (like its default Arachne generator; faster to print).
    thin_gaps: str = "fill"


@dataclass(frozen=True, slots=True)
class SliceResult:
    gcode: str
    print_time_s: float
    filament_mm: float
    filament_g: float
    cost_eur: float
    material_cost_eur: float
    machine_cost_eur: float
    energy_cost_eur: float
    layers: int
    copies: int
    warnings: tuple[str, ...] = ()
    filament_cm3: float = 0.0
    layer_height_mm: float = 0.0
    height_mm: float = 0.0  # printed object height
    # Seconds per feature ("perimeter", "infill", "travel", ...), sorted by name.
    time_by_feature_s: tuple[tuple[str, float], ...] = ()
    # Copy origins on the bed (the part's footprint minimum corner), in mm.
    copy_positions_mm: tuple[tuple[float, float], ...] = ()
    rotated_deg: float = 0.0  # the part was turned about Z (counter-clockwise) to fit more copies
