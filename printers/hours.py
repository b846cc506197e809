"""Weekly opening hours (site-local time) expanded into absolute UTC windows for the planner."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.errors import Invalid

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_hours(opening_hours: dict[str, Any]) -> dict[int, list[tuple[time, time]]]:
    """Validate ``{"mon": [["09:00", "18:00"]], ...}``; raise Invalid with the faulty entry."""
    weekly: dict[int, list[tuple[time, time]]] = {}
    for day, spans in opening_hours.items():
        if day not in DAYS:
            raise Invalid(f"opening hours: {day!r} is not a day; use {', '.join(DAYS)}")
        if not isinstance(spans, list):
            raise Invalid(f"opening hours for {day}: expected a list of [start, end] pairs")
        parsed: list[tuple[time, time]] = []
        for span in spans:
            if not (isinstance(span, list | tuple) and len(span) == 2):
                raise Invalid(f"opening hours for {day}: {span!r} is not a [start, end] pair")
            try:
                start = time.fromisoformat(str(span[0]))
                end = time.fromisoformat(str(span[1])) if span[1] not in ("24:00",) else time.max
            except ValueError as exc:
                raise Invalid(f"opening hours for {day}: {span!r} is not HH:MM") from exc
            if end <= start:
                raise Invalid(
                    f"opening hours for {day}: {span[0]} to {span[1]} ends before it starts"
                )
            parsed.append((start, end))
        weekly[DAYS.index(day)] = sorted(parsed)
    return weekly


def open_windows(
    opening_hours: dict[str, Any], *, timezone: str, start: datetime, days: int
) -> tuple[tuple[datetime, datetime], ...] | None:
    """Absolute windows from ``start`` for ``days`` days; None when the site is always staffed."""
    if not opening_hours:
        return None
    try:
        zone = ZoneInfo(timezone)
    except ZoneInfoNotFoundError as exc:
        raise Invalid(f"unknown time zone {timezone!r}") from exc
    weekly = parse_hours(opening_hours)
    local_day = start.astimezone(zone).date()
    windows: list[tuple[datetime, datetime]] = []
    for offset in range(-1, days + 1):
        day = local_day + timedelta(days=offset)
        for begin, end in weekly.get(day.weekday(), []):
            window_start = datetime.combine(day, begin, tzinfo=zone).astimezone(UTC)
            window_end = datetime.combine(day, end, tzinfo=zone).astimezone(UTC)
            if window_end > start:
                windows.append((max(window_start, start), window_end))
    windows.sort()
    merged: list[tuple[datetime, datetime]] = []
    for window in windows:
        if merged and window[0] <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], window[1]))
        else:
            merged.append(window)
    return tuple(merged)
