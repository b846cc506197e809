"""What the slicer extrudes: roles (features) and paths, shared by the planning modules."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

Points = NDArray[np.float64]


class Role(IntEnum):
    """What a move does; its name is the ``;TYPE:`` comment and the time breakdown key."""

    SKIRT = 0
    EXTERNAL_PERIMETER = 1
    PERIMETER = 2
    SMALL_PERIMETER = 3
    INFILL = 4
    SOLID_INFILL = 5
    TOP_SOLID_INFILL = 6
    BRIDGE_INFILL = 7
    GAP_FILL = 8
    TRAVEL = 9
    RETRACT = 10
    PRIME = 11


ROLE_LABELS = {
    Role.SKIRT: "Skirt",
    Role.EXTERNAL_PERIMETER: "External perimeter",
    Role.PERIMETER: "Perimeter",
    Role.SMALL_PERIMETER: "Perimeter",
    Role.INFILL: "Internal infill",
    Role.SOLID_INFILL: "Solid infill",
    Role.TOP_SOLID_INFILL: "Top solid infill",
    Role.BRIDGE_INFILL: "Bridge infill",
    Role.GAP_FILL: "Gap fill",
}


@dataclass(frozen=True, slots=True)
class Extrusion:
    points: Points  # (n, 2); a closed loop repeats its first point at the end
    role: Role
    width_mm: float
    closed: bool
    # Per-segment widths (n - 1) where they vary (loops grown into thin gaps).
    widths_mm: NDArray[np.float64] | None = None

    def segment_widths(self) -> NDArray[np.float64]:
        if self.widths_mm is not None:
            return self.widths_mm
        return np.full(len(self.points) - 1, self.width_mm)

    def shifted(self, shift: NDArray[np.float64]) -> Extrusion:
        return Extrusion(self.points + shift, self.role, self.width_mm, self.closed, self.widths_mm)

    def starting_near(self, x: float, y: float) -> Extrusion:
        """The same path started as close to (x, y) as possible (loop seam, or reversed line)."""
        points = self.points
        widths = self.widths_mm
        if self.closed:
            ring = points[:-1]
            seam = int(np.argmin((ring[:, 0] - x) ** 2 + (ring[:, 1] - y) ** 2))
            rotated = np.vstack([ring[seam:], ring[:seam], ring[seam : seam + 1]])
            turned = None if widths is None else np.roll(widths, -seam)
            return Extrusion(rotated, self.role, self.width_mm, True, turned)
        first = (points[0, 0] - x) ** 2 + (points[0, 1] - y) ** 2
        last = (points[-1, 0] - x) ** 2 + (points[-1, 1] - y) ** 2
        return self if first <= last else self.reversed()

    def reversed(self) -> Extrusion:
        widths = None if self.widths_mm is None else self.widths_mm[::-1]
        return Extrusion(self.points[::-1], self.role, self.width_mm, self.closed, widths)
