"""How long a G-code file takes to print, read from the file itself.

The simulator needs a duration per print. Slicers write it into the file (``M73 P0 R<min>``
from PrusaSlicer and Cura's Marlin flavour); without it, the moves are summed at their
feed rates (no acceleration, like OctoPrint's own analysis, which it matches within a few
per cent on the test files).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_CODE = re.compile(rb"^[GMT]\d+")
_WORD = re.compile(rb"([A-Z])\s*([-+]?(?:\d+\.?\d*|\.\d+))")
_DEFAULT_FEED_MM_MIN = 1500.0  # Marlin's power-on feed rate for moves without F


@dataclass(frozen=True, slots=True)
class GcodeEstimate:
    print_s: float  # on a real printer: the slicer's M73 figure, else summed moves
    lines: int  # commands, comments and blank lines excluded
    filament_mm: float  # extruded length, absolute or relative E
    hotend_c: float | None  # first M104/M109 target
    bed_c: float | None  # first M140/M190 target
    from_slicer: bool  # True when print_s came from M73
    # (min x, min y, min z, max x, max y, max z) in mm, as OctoPrint's analysis reports
    printing_area: tuple[float, float, float, float, float, float] | None = None
    travel_area: tuple[float, float, float, float, float, float] | None = None


class _Box:
    """Running bounds of the points visited."""

    def __init__(self) -> None:
        self.low: list[float] | None = None
        self.high: list[float] = []

    def add(self, point: tuple[float, float, float]) -> None:
        if self.low is None:
            self.low, self.high = list(point), list(point)
            return
        for i, value in enumerate(point):
            self.low[i] = min(self.low[i], value)
            self.high[i] = max(self.high[i], value)

    def bounds(self) -> tuple[float, float, float, float, float, float] | None:
        if self.low is None:
            return None
        return (self.low[0], self.low[1], self.low[2], self.high[0], self.high[1], self.high[2])


def estimate(gcode: bytes) -> GcodeEstimate:
    """Read ``gcode`` once; never raises on malformed lines (they are skipped)."""
    absolute = True
    absolute_e = True
    scale_mm = 1.0
    feed_mm_min = _DEFAULT_FEED_MM_MIN
    speed_factor = 1.0
    pos = {b"X": 0.0, b"Y": 0.0, b"Z": 0.0}
    e_pos = 0.0
    move_s = 0.0
    filament_mm = 0.0
    lines = 0
    hint_s: float | None = None
    hotend_c: float | None = None
    bed_c: float | None = None
    printing = _Box()
    travel = _Box()

    for raw in gcode.splitlines():
        line = raw.split(b";", 1)[0].strip().upper()
        if not line:
            continue
        lines += 1
        found = _CODE.match(line)
        code = found.group(0) if found else b""
        words = dict(_words(line[len(code) :]))
        if code in {b"G0", b"G1", b"G00", b"G01"}:
            if b"F" in words and words[b"F"] > 0:
                feed_mm_min = words[b"F"] * scale_mm
            dist_sq = 0.0
            start = (pos[b"X"], pos[b"Y"], pos[b"Z"])
            for axis in (b"X", b"Y", b"Z"):
                if axis in words:
                    target = words[axis] * scale_mm
                    if not absolute:
                        target += pos[axis]
                    dist_sq += (target - pos[axis]) ** 2
                    pos[axis] = target
            e_delta = 0.0
            if b"E" in words:
                e_value = words[b"E"] * scale_mm
                e_delta = e_value - e_pos if absolute_e else e_value
                e_pos = e_value if absolute_e else e_pos + e_value
                filament_mm += max(e_delta, 0.0)
            dist = math.sqrt(dist_sq) or abs(e_delta)
            end = (pos[b"X"], pos[b"Y"], pos[b"Z"])
            travel.add(end)
            if e_delta > 0 and dist_sq > 0:
                printing.add(start)
                printing.add(end)
            move_s += dist / (feed_mm_min / 60.0 * speed_factor)
        elif code == b"G4":
            move_s += words.get(b"S", 0.0) + words.get(b"P", 0.0) / 1000.0
        elif code == b"G90":
            absolute = absolute_e = True
        elif code == b"G91":
            absolute = absolute_e = False
        elif code == b"M82":
            absolute_e = True
        elif code == b"M83":
            absolute_e = False
        elif code == b"G20":
            scale_mm = 25.4
        elif code == b"G21":
            scale_mm = 1.0
        elif code == b"G92":
            if b"E" in words:
                e_pos = words[b"E"]
            for axis in (b"X", b"Y", b"Z"):
                if axis in words:
                    pos[axis] = words[axis]
        elif code == b"G28":
            for axis in pos:
                pos[axis] = 0.0
        elif code == b"M220" and words.get(b"S", 0.0) > 0:
            speed_factor = words[b"S"] / 100.0
        elif code == b"M73" and b"R" in words and hint_s is None:
            hint_s = words[b"R"] * 60.0  # the first one is the whole print
        # "M104 S0" switches heating off: the first non-zero target is the print's.
        elif code in {b"M104", b"M109"} and hotend_c is None and words.get(b"S", 0.0) > 0:
            hotend_c = words[b"S"]
        elif code in {b"M140", b"M190"} and bed_c is None and words.get(b"S", 0.0) > 0:
            bed_c = words[b"S"]

    return GcodeEstimate(
        print_s=hint_s if hint_s is not None else move_s,
        lines=lines,
        filament_mm=filament_mm,
        hotend_c=hotend_c,
        bed_c=bed_c,
        from_slicer=hint_s is not None,
        printing_area=printing.bounds(),
        travel_area=travel.bounds(),
    )


def _words(line: bytes) -> list[tuple[bytes, float]]:
    found: list[tuple[bytes, float]] = []
    for match in _WORD.finditer(line):
        try:
            found.append((match.group(1), float(match.group(2))))
        except ValueError:
            continue
    return found
