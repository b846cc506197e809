"""Small hand-made problems for the allocator tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scheduler.types import DeliveryPointSpec, JobSpec, PrinterSpec, Problem, SiteSpec

NOW = datetime(2025, 3, 3, 7, 0, tzinfo=UTC)


def hours(h: float) -> timedelta:
    return timedelta(hours=h)


def daily_windows(
    days: int, open_h: float = 1.0, close_h: float = 11.0
) -> tuple[tuple[datetime, datetime], ...]:
    """Staffed from ``open_h`` to ``close_h`` hours after ``NOW`` each day."""
    return tuple((NOW + hours(24 * d + open_h), NOW + hours(24 * d + close_h)) for d in range(days))


def small_problem(**overrides: object) -> Problem:
    """Two sites (one with opening hours), three printers, two materials, a
    frozen job, an ineligible job and needs of two plates."""
    sites = (
        SiteSpec("creil", 49.2594, 2.4753, open_windows=daily_windows(10)),
        SiteSpec("compiegne", 49.4179, 2.8261),
    )
    printers = (
        PrinterSpec("p1", "creil", NOW, "PLA", material_change_s=900),
        PrinterSpec("p2", "creil", NOW + hours(2), None, material_change_s=600),
        PrinterSpec("p3", "compiegne", NOW + hours(1), "PETG", material_change_s=1200),
    )
    points = (DeliveryPointSpec("chu-amiens", 49.8941, 2.2958),)
    jobs = [
        JobSpec(
            f"j{i}",
            f"need{i // 2}",
            {"p1": 3600 + 600 * (i % 3), "p3": 5400} if i % 4 else {"p2": 7200},
            "PLA" if i % 3 else "PETG",
            NOW + hours(i % 2),
            NOW + hours(6 + i),
            weight=1.0 + i % 3,
            delivery_point_id="chu-amiens" if i % 5 else None,
        )
        for i in range(14)
    ]
    jobs.append(JobSpec("orphan", "need-orphan", {}, "PLA", NOW, NOW + hours(5)))
    jobs.append(
        JobSpec(
            "running",
            "need-running",
            {"p3": 7200},
            "PETG",
            NOW - hours(1),
            NOW + hours(3),
            frozen_printer_id="p3",
            frozen_start_at=NOW + hours(1),
        )
    )
    values: dict[str, object] = {
        "jobs": tuple(jobs),
        "printers": printers,
        "sites": sites,
        "delivery_points": points,
        "now": NOW,
    }
    values.update(overrides)
    return Problem(**values)  # type: ignore[arg-type]  # test helper: keyword overrides
