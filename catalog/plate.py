"""Plate batching: how many copies of a part fit on a printer's bed, and where.

Copies go on a regular grid of the part's footprint (its bounding box in
XY), ``copy_spacing_mm`` apart, the whole block centred on the bed and kept
inside it together with its skirt. The part may be turned 90 degrees about
Z when that fits more copies (or is the only way it fits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import trimesh

from catalog.types import PrinterProfile, SliceSettings
from core.errors import Invalid
from core.i18n import _


@dataclass(frozen=True, slots=True)
class Layout:
    rotated: bool  # the part is turned 90 degrees about Z
    columns: int
    rows: int
    offsets_mm: tuple[tuple[float, float], ...]  # min corner of each copy's footprint on the bed

    @property
    def capacity(self) -> int:
        return self.columns * self.rows


def skirt_margin_mm(profile: PrinterProfile, settings: SliceSettings) -> float:
    """Room the skirt needs around the copies."""
    if settings.skirt_loops <= 0:
        return 0.0
    width = profile.first_layer_width_mm or 1.125 * profile.nozzle_mm
    return settings.skirt_distance_mm + settings.skirt_loops * width


def footprint_mm(mesh: trimesh.Trimesh) -> tuple[float, float, float]:
    """Width (X), depth (Y) and height (Z) of the mesh's bounding box."""
    extents = np.asarray(mesh.bounds[1] - mesh.bounds[0], dtype=np.float64)
    return float(extents[0]), float(extents[1]), float(extents[2])


def _grid(
    width: float, depth: float, profile: PrinterProfile, settings: SliceSettings
) -> tuple[int, int]:
    margin = skirt_margin_mm(profile, settings)
    usable_x = profile.bed_x_mm - 2 * margin
    usable_y = profile.bed_y_mm - 2 * margin
    gap = settings.copy_spacing_mm
    if width > usable_x + 1e-9 or depth > usable_y + 1e-9:
        return 0, 0
    columns = math.floor((usable_x + gap) / (width + gap) + 1e-9)
    rows = math.floor((usable_y + gap) / (depth + gap) + 1e-9)
    return columns, rows


def best_layout(
    mesh: trimesh.Trimesh, profile: PrinterProfile, settings: SliceSettings
) -> Layout | None:
    """The grid holding the most copies (None if one copy does not fit)."""
    width, depth, height = footprint_mm(mesh)
    if height > profile.max_z_mm + 1e-9:
        return None
    options = []
    for rotated in (False, True):
        w, d = (depth, width) if rotated else (width, depth)
        columns, rows = _grid(w, d, profile, settings)
        if columns * rows > 0:
            options.append((columns * rows, not rotated, rotated, columns, rows))
    if not options:
        return None
    _count, _prefer, rotated, columns, rows = max(options)
    return Layout(rotated=rotated, columns=columns, rows=rows, offsets_mm=())


def copies_that_fit(mesh: trimesh.Trimesh, profile: PrinterProfile, settings: SliceSettings) -> int:
    """How many copies fit on ``profile``'s bed at once (0 if a single copy does not)."""
    layout = best_layout(mesh, profile, settings)
    return layout.capacity if layout else 0


def plan_plate(mesh: trimesh.Trimesh, profile: PrinterProfile, settings: SliceSettings) -> Layout:
    """Positions for ``settings.copies`` copies; raises ``Invalid`` if they do not fit."""
    wanted = settings.copies
    if wanted < 1:
        raise Invalid(_("The number of copies must be at least 1."), copies=wanted)
    layout = best_layout(mesh, profile, settings)
    width, depth, height = footprint_mm(mesh)
    if layout is None:
        raise Invalid(
            _(
                "The part ({width} x {depth} x {height} mm) does not fit the {printer} "
                "({bed_x} x {bed_y} x {bed_z} mm, skirt included).",
                width=f"{width:.1f}",
                depth=f"{depth:.1f}",
                height=f"{height:.1f}",
                printer=profile.name,
                bed_x=f"{profile.bed_x_mm:g}",
                bed_y=f"{profile.bed_y_mm:g}",
                bed_z=f"{profile.max_z_mm:g}",
            ),
            printer=profile.key,
        )
    if wanted > layout.capacity:
        raise Invalid(
            _(
                "{copies} copies do not fit on the {printer}: at most {fit} fit on one plate.",
                copies=wanted,
                printer=profile.name,
                fit=layout.capacity,
            ),
            printer=profile.key,
            fit=layout.capacity,
        )
    w, d = (depth, width) if layout.rotated else (width, depth)
    # Use the squarest sub-grid that holds the copies (shorter travels, compact skirt).
    columns = min(layout.columns, max(1, math.ceil(math.sqrt(wanted * d / max(w, 1e-9)))))
    rows = math.ceil(wanted / columns)
    if rows > layout.rows:
        rows = layout.rows
        columns = math.ceil(wanted / rows)
    gap = settings.copy_spacing_mm
    block_x = columns * w + (columns - 1) * gap
    block_y = rows * d + (rows - 1) * gap
    x0 = (profile.bed_x_mm - block_x) / 2
    y0 = (profile.bed_y_mm - block_y) / 2
    offsets = []
    for index in range(wanted):
        row, column = divmod(index, columns)
        if row % 2:  # serpentine, so the nozzle walks from copy to neighbouring copy
            column = columns - 1 - column
        offsets.append((x0 + column * (w + gap), y0 + row * (d + gap)))
    return Layout(rotated=layout.rotated, columns=columns, rows=rows, offsets_mm=tuple(offsets))
