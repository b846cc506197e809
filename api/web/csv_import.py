"""Reading needs from a CSV file (a spreadsheet export), before anything is posted.

Every row is checked first and every problem reported with its row number, so a
file is either fixed as a whole or imported as a whole. Headers may be English
or French; the separator may be a comma, a semicolon (French spreadsheets) or a tab.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from dataclasses import dataclass
from datetime import datetime, time
from uuid import UUID
from zoneinfo import ZoneInfo

from catalog.models import DesignStatus, Part
from core.i18n import _
from scheduler.models import DeliveryPoint

MAX_ROWS = 500

# Each column and the header names it is known by (compared without accents or case).
COLUMNS: dict[str, tuple[str, ...]] = {
    "part": ("part", "piece", "pièce", "article"),
    "quantity": ("quantity", "quantite", "quantité", "qty"),
    "due_at": ("due_at", "due", "deadline", "echeance", "échéance", "date limite"),
    "delivery_point": ("delivery_point", "delivery point", "point de livraison", "livraison"),
    "priority": ("priority", "priorite", "priorité"),
    "material": ("material", "matiere", "matière"),
    "note": ("note", "comment", "commentaire"),
}
REQUIRED = ("part", "quantity", "due_at", "delivery_point")
DATE_FORMATS = ("%d/%m/%Y %H:%M", "%d/%m/%Y", "%Y-%m-%d %H:%M", "%Y-%m-%d")
DATE_ONLY_AT = time(18, 0)  # a deadline given as a day means that day's evening, local time


@dataclass(frozen=True, slots=True)
class NeedLine:
    row: int  # line number in the file, header = 1
    part_id: UUID
    quantity: int
    due_at: datetime
    delivery_point_id: UUID
    priority: int
    material_key: str | None
    note: str


@dataclass
class ImportCheck:
    lines: list[NeedLine]
    problems: list[tuple[int, str]]  # (line number, translated message)
    header: list[str]
    raw_rows: list[list[str]]  # as read, to give back the rows not yet posted


def _key(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.strip().lower()).encode("ascii", "ignore")
    return folded.decode()


def _column_of(header: str) -> str | None:
    wanted = _key(header)
    for column, names in COLUMNS.items():
        if wanted in {_key(n) for n in names}:
            return column
    return None


def _parse_due(text: str, zone: ZoneInfo) -> datetime | None:
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
        for pattern in DATE_FORMATS:
            try:
                moment = datetime.strptime(value, pattern)  # noqa: DTZ007  # local time, zone set below
            except ValueError:
                continue
            if "%H" not in pattern:
                moment = datetime.combine(moment.date(), DATE_ONLY_AT)
            break
    if moment is None:
        return None
    if len(value) == 10 and moment.time() == time(0, 0):
        moment = datetime.combine(moment.date(), DATE_ONLY_AT)
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def check_csv(
    text: str,
    *,
    parts: list[Part],
    points: list[DeliveryPoint],
    materials: set[str],
    zone: ZoneInfo,
) -> ImportCheck:
    """Parse ``text`` and resolve names to ids; nothing is written."""
    text = text.lstrip("\ufeff")  # spreadsheets often start UTF-8 files with a BOM
    sample = text[:4096]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=";,\t")
    except csv.Error:
        dialect = csv.excel
    rows = [row for row in csv.reader(io.StringIO(text), dialect) if any(c.strip() for c in row)]
    check = ImportCheck(lines=[], problems=[], header=rows[0] if rows else [], raw_rows=rows[1:])
    if not rows:
        check.problems.append((0, _("The file is empty.")))
        return check
    columns = [_column_of(h) for h in rows[0]]
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        check.problems.append((1, _("Missing columns: {columns}.", columns=", ".join(missing))))
        return check
    if len(rows) - 1 > MAX_ROWS:
        check.problems.append((0, _("At most {count} needs per file.", count=MAX_ROWS)))
        return check
    approved = {
        p.id: p for p in parts if any(v.status is DesignStatus.APPROVED for v in p.versions)
    }
    part_by_name = {_key(p.name): p for p in parts}
    point_by_name = {_key(p.name): p for p in points}
    point_ids = {p.id for p in points}
    material_by_key = {key.upper(): key for key in materials}
    for number, row in enumerate(rows[1:], start=2):
        cells = {
            column: (row[i].strip() if i < len(row) else "")
            for i, column in enumerate(columns)
            if column
        }
        before = len(check.problems)
        part = part_by_name.get(_key(cells["part"]))
        if part is None:
            try:
                part = next(p for p in parts if p.id == UUID(cells["part"]))
            except (ValueError, StopIteration):
                part = None
        if part is None:
            check.problems.append((number, _("Unknown part: {name}.", name=cells["part"])))
        elif part.id not in approved:
            check.problems.append(
                (number, _("{name} has no approved design version yet.", name=part.name))
            )
        try:
            quantity = int(cells["quantity"])
            if quantity < 1:
                raise ValueError
        except ValueError:
            quantity = 0
            check.problems.append((number, _("The quantity must be a whole number above 0.")))
        due_at = _parse_due(cells["due_at"], zone)
        if due_at is None:
            check.problems.append(
                (number, _("Unreadable deadline: {value}.", value=cells["due_at"]))
            )
        point = point_by_name.get(_key(cells["delivery_point"]))
        if point is None:
            try:
                candidate = UUID(cells["delivery_point"])
                point = next(p for p in points if p.id == candidate and candidate in point_ids)
            except (ValueError, StopIteration):
                point = None
        if point is None:
            check.problems.append(
                (number, _("Unknown delivery point: {name}.", name=cells["delivery_point"]))
            )
        priority_text = cells.get("priority", "") or "3"
        try:
            priority = int(priority_text)
            if not 1 <= priority <= 5:
                raise ValueError
        except ValueError:
            priority = 3
            check.problems.append((number, _("The priority goes from 1 to 5.")))
        typed_material = cells.get("material", "")
        material = material_by_key.get(typed_material.upper()) if typed_material else None
        if typed_material and material is None:
            check.problems.append((number, _("Unknown material: {name}.", name=typed_material)))
        if len(check.problems) == before and part and point and due_at:
            check.lines.append(
                NeedLine(
                    row=number,
                    part_id=part.id,
                    quantity=quantity,
                    due_at=due_at,
                    delivery_point_id=point.id,
                    priority=priority,
                    material_key=material,
                    note=cells.get("note", "")[:4000],
                )
            )
    return check


def remaining_text(check: ImportCheck, from_row: int) -> str:
    """The header and the rows from ``from_row`` on, as CSV (what is left to import)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    writer.writerow(check.header)
    for number, row in enumerate(check.raw_rows, start=2):
        if number >= from_row:
            writer.writerow(row)
    return out.getvalue()
