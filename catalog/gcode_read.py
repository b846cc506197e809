"""Read Marlin G-code back into moves: for checks on our own output and for
re-timing other slicers' G-code with our estimator (same toolpath, same planner).

Understands what slicers emit for FFF printers: G0/G1 with X Y Z E F, G90/G91,
M82/M83, G92, M204 (P/S print, T travel, R retract) and the
``;LAYER_CHANGE`` / ``;TYPE:`` comments of PrusaSlicer and of our writer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from catalog.motion import START_LAYER, Moves
from catalog.paths import ROLE_LABELS, Role

_ROLE_BY_LABEL = {label.lower(): role for role, label in ROLE_LABELS.items()}
_ROLE_BY_LABEL.update({"overhang perimeter": Role.PERIMETER, "ironing": Role.TOP_SOLID_INFILL})


@dataclass(frozen=True, slots=True)
class ReadGcode:
    moves: Moves
    accel_print: NDArray[np.float64]  # M204 P in force for each move
    accel_travel_mm_s2: float | None  # last M204 T seen (None: never set)
    accel_retract_mm_s2: float | None


def _words(line: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for token in line.split()[1:]:
        if len(token) > 1 and token[0].isalpha():
            try:
                values[token[0].upper()] = float(token[1:])
            except ValueError:
                continue
    return values


def read_gcode(text: str, *, default_accel_mm_s2: float = 1000.0) -> ReadGcode:
    """Moves of ``text``; extrusion is converted to relative E whatever the mode."""
    x = y = z = e_abs = 0.0
    feed = 30.0
    relative_xyz = False
    relative_e = False
    accel = default_accel_mm_s2
    accel_travel: float | None = None
    accel_retract: float | None = None
    layer = START_LAYER
    role = Role.TRAVEL
    rows: list[tuple[float, float, float, float, float, int, int, float]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line[0] == ";":
            if line.startswith(";LAYER_CHANGE"):
                layer += 1
            elif line.startswith(";TYPE:"):
                role = _ROLE_BY_LABEL.get(line[6:].strip().lower(), Role.PERIMETER)
            continue
        code = line.split(";", 1)[0].strip()
        if not code:
            continue
        command = code.split(None, 1)[0].upper()
        if command in ("G0", "G1"):
            words = _words(code)
            if "F" in words:
                feed = words["F"] / 60.0
            nx = x + words.get("X", 0.0) if relative_xyz else words.get("X", x)
            ny = y + words.get("Y", 0.0) if relative_xyz else words.get("Y", y)
            nz = z + words.get("Z", 0.0) if relative_xyz else words.get("Z", z)
            if "E" in words:
                de = words["E"] if relative_e else words["E"] - e_abs
                e_abs = e_abs + de
            else:
                de = 0.0
            moved = nx != x or ny != y or nz != z
            if not moved and de == 0.0:
                continue
            if not moved:
                move_role = Role.RETRACT
            elif de > 0:
                move_role = role
            else:
                move_role = Role.TRAVEL
            rows.append((nx, ny, nz, de, feed, int(move_role), layer, accel))
            x, y, z = nx, ny, nz
        elif command == "G90":
            relative_xyz = False
        elif command == "G91":
            relative_xyz = True
        elif command == "M82":
            relative_e = False
        elif command == "M83":
            relative_e = True
        elif command == "G92":
            words = _words(code)
            if "E" in words:
                e_abs = words["E"]
        elif command == "M204":
            words = _words(code)
            if "P" in words:
                accel = words["P"]
            elif "S" in words:
                accel = words["S"]
                accel_travel = words["S"] if accel_travel is None else accel_travel
            if "T" in words:
                accel_travel = words["T"]
            if "R" in words:
                accel_retract = words["R"]
    columns = list(zip(*rows, strict=True)) if rows else [()] * 8
    moves = Moves(
        origin=(0.0, 0.0, 0.0),
        x=np.asarray(columns[0], dtype=np.float64),
        y=np.asarray(columns[1], dtype=np.float64),
        z=np.asarray(columns[2], dtype=np.float64),
        e=np.asarray(columns[3], dtype=np.float64),
        feed_mm_s=np.asarray(columns[4], dtype=np.float64),
        role=np.asarray(columns[5], dtype=np.int8),
        layer=np.asarray(columns[6], dtype=np.int32),
        width_mm=np.zeros(len(rows), dtype=np.float32),
    )
    return ReadGcode(
        moves=moves,
        accel_print=np.asarray(columns[7], dtype=np.float64),
        accel_travel_mm_s2=accel_travel,
        accel_retract_mm_s2=accel_retract,
    )
