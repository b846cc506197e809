"""Layer-to-layer analysis: where infill must be solid, where it is sparse, what hangs.

A point of layer i needs solid infill when the part ends within the next
``top_layers`` layers above it or the previous ``bottom_layers`` below it;
that is the union of the nearby top surfaces (R_j - R_j+1) and bottom
surfaces (R_j - R_j-1), which stays cheap on prismatic parts where almost
all of them are empty.
"""

from __future__ import annotations

import shapely
from shapely.geometry import MultiPolygon

from catalog.layers import EMPTY, LayerRegions, as_multipolygon
from catalog.toolpath import Widths, offset, spacing
from catalog.types import PrinterProfile, SliceSettings

EXTERNAL_INFILL_MARGIN_MM = 3.0
_NOISE_MM = 0.2


def solid_masks(layers: LayerRegions, settings: SliceSettings) -> list[MultiPolygon]:
    """Per layer, where infill must be solid (union of nearby top and bottom surfaces)."""
    regions = layers.regions
    count = len(regions)
    tops = [
        _anchored(shapely.difference(regions[i], regions[i + 1]), regions[i])
        if i + 1 < count
        else regions[i]
        for i in range(count)
    ]
    bottoms = [
        _anchored(shapely.difference(regions[i], regions[i - 1]), regions[i])
        if i > 0
        else regions[0]
        for i in range(count)
    ]
    masks: list[MultiPolygon] = []
    for i in range(count):
        near = [tops[j] for j in range(i, min(count, i + settings.top_layers))]
        near += [bottoms[j] for j in range(max(0, i - settings.bottom_layers + 1), i + 1)]
        near = [g for g in near if not g.is_empty]
        masks.append(as_multipolygon(shapely.union_all(near)) if near else EMPTY)
    return masks


def _anchored(surface: shapely.Geometry, region: MultiPolygon) -> MultiPolygon:
    """A top or bottom surface grown 3 mm into its own layer.

    PrusaSlicer grows external surfaces by its external infill margin so the
    shells anchor into the sparse infill: on a stepped pipe connector its
    solid layers under a 2 mm ledge covered the whole 4.3 mm wall (783 mm of
    lines per layer where the bare ledge gave 499, -5.6 % grams overall).
    Surfaces thinner than 0.2 mm are outline noise between near-identical
    layers, not ledges, and are dropped first: grown, they made the door
    opener 11 % too heavy.
    """
    ledge = offset(offset(surface, -_NOISE_MM / 2), _NOISE_MM / 2)
    if shapely.is_empty(ledge):
        return EMPTY
    grown = offset(ledge, EXTERNAL_INFILL_MARGIN_MM)
    return as_multipolygon(shapely.intersection(grown, region))


def worst_overhang(layers: LayerRegions) -> tuple[int, float]:
    """The layer with the most area over air beyond 45 degrees, and that area (mm2).

    Each layer may stick out one layer height past the one below (45
    degrees); strips under 1 mm wide are ignored, as short bridges and
    rims print without support.
    """
    worst, worst_area = 0, 0.0
    for index in range(1, len(layers.regions)):
        reach = offset(layers.regions[index - 1], float(layers.height[index]))
        hanging = shapely.difference(layers.regions[index], reach)
        if shapely.area(hanging) <= worst_area:
            continue
        area = float(shapely.area(offset(offset(hanging, -0.5), 0.5)))
        if area > worst_area:
            worst, worst_area = index, area
    return worst, worst_area


def sparse_areas(
    layers: LayerRegions,
    masks: list[MultiPolygon],
    profile: PrinterProfile,
    settings: SliceSettings,
) -> list[MultiPolygon]:
    """Per layer, roughly where sparse infill goes: inside the perimeters, outside the solid mask."""
    widths = Widths.of(profile)
    band = widths.perimeter / 2 + settings.perimeters * spacing(
        widths.perimeter, settings.layer_height_mm
    )
    return [
        as_multipolygon(shapely.difference(offset(region, -band), mask))
        for region, mask in zip(layers.regions, masks, strict=True)
    ]
