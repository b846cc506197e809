"""The generated crisis parts are printable solids of the advertised size."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trimesh

from catalog import demo_parts

PARTS: list[tuple[Callable[[], trimesh.Trimesh], tuple[float, float, float]]] = [
    (demo_parts.face_shield_headband, (169.7, 152.2, 20.0)),
    (demo_parts.ear_saver, (150.0, 15.0, 1.6)),
    (demo_parts.door_opener, (111.0, 54.0, 10.0)),
    (demo_parts.mask_strap, (195.0, 14.0, 1.2)),
    (demo_parts.spur_gear, (84.0, 84.0, 20.0)),
    (demo_parts.pipe_connector, (24.0, 24.0, 40.0)),
]


@pytest.mark.parametrize(("make", "size"), PARTS, ids=[make.__name__ for make, _ in PARTS])
def test_parts_are_watertight_and_sized(
    make: Callable[[], trimesh.Trimesh], size: tuple[float, float, float]
) -> None:
    mesh = make()
    assert mesh.is_watertight
    assert mesh.volume > 0
    assert tuple(mesh.bounds[0]) == pytest.approx((0.0, 0.0, 0.0), abs=1e-6)
    assert tuple(mesh.extents) == pytest.approx(size, abs=0.1)


def test_low_headband_for_quick_test_prints() -> None:
    assert demo_parts.face_shield_headband(height_mm=2.0).extents[2] == pytest.approx(2.0)
