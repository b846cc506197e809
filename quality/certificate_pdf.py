"""The certificate of conformity as a PDF, rendered with ReportLab from the frozen JSON.

Labels follow the reader's language; the data and the verification hash do not.
The PDF is reproducible (ReportLab's invariant mode): the same certificate gives
the same bytes, so a PDF can be compared as well as the JSON.
"""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path
from typing import Any

from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from core.i18n import _

# DejaVu covers every character a French or English name may hold; ReportLab's
# built-in Helvetica only covers Latin-1, so it is the fallback, not the choice.
_DEJAVU = Path("/usr/share/fonts/truetype/dejavu")


@cache
def _fonts() -> tuple[str, str]:
    regular, bold = _DEJAVU / "DejaVuSans.ttf", _DEJAVU / "DejaVuSans-Bold.ttf"
    if regular.exists() and bold.exists():
        pdfmetrics.registerFont(TTFont("DejaVuSans", str(regular)))
        pdfmetrics.registerFont(TTFont("DejaVuSans-Bold", str(bold)))
        return "DejaVuSans", "DejaVuSans-Bold"
    return "Helvetica", "Helvetica-Bold"


def _styles() -> dict[str, ParagraphStyle]:
    regular, bold = _fonts()
    base = getSampleStyleSheet()
    return {
        "title": ParagraphStyle("title", parent=base["Title"], fontName=bold, fontSize=16),
        "heading": ParagraphStyle("heading", parent=base["Heading2"], fontName=bold, fontSize=11),
        "body": ParagraphStyle("body", parent=base["BodyText"], fontName=regular, fontSize=8.5),
        "cell": ParagraphStyle("cell", fontName=regular, fontSize=6.8, leading=8),
        "mono": ParagraphStyle("mono", fontName="Courier", fontSize=8, leading=10),
    }


def _p(text: Any, style: ParagraphStyle) -> Paragraph:
    value = "" if text is None else str(text)
    escaped = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return Paragraph(escaped, style)


def _day(value: str | None) -> str:
    return (value or "")[:16].replace("T", " ")


def render_pdf(content: dict[str, Any], sha256: str) -> bytes:
    """The certificate as PDF bytes; ``sha256`` is printed in full and as a QR code."""
    styles = _styles()
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=landscape(A4),
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=14 * mm,
        title=_("Certificate of conformity") + " " + str(content.get("number", "")),
        author="distrifab",
        # Also in the document's properties, where tools and tests can read it in clear.
        subject="SHA-256 " + sha256,
        invariant=True,
    )
    story: list[Any] = [
        _p(_("Certificate of conformity") + " " + str(content.get("number", "")), styles["title"]),
        _header(content, styles),
        Spacer(1, 4 * mm),
        _p(_("Traceability"), styles["heading"]),
        _traceability(content, styles),
        Spacer(1, 4 * mm),
        _p(_("Inspection summary"), styles["heading"]),
        _summary(content, styles),
        Spacer(1, 3 * mm),
    ]
    for plan in content.get("quality_plans", []):
        story.append(_plan(plan, styles))
    story += [
        _p(_("Statement"), styles["heading"]),
        _p(_(str(content.get("statement", ""))), styles["body"]),
        Spacer(1, 4 * mm),
        _verification(sha256, styles),
    ]
    document.build(story, onFirstPage=_footer, onLaterPages=_footer)
    return buffer.getvalue()


def _footer(canvas: Any, document: Any) -> None:
    regular, _bold = _fonts()
    canvas.saveState()
    canvas.setFont(regular, 7)
    canvas.drawRightString(
        document.pagesize[0] - 12 * mm,
        7 * mm,
        _("Page {page}", page=canvas.getPageNumber()),
    )
    canvas.restoreState()


def _grid(rows: list[list[Any]], widths: list[float], *, header: bool = True) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1 if header else 0)
    commands: list[tuple[Any, ...]] = [
        ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 2),
        ("RIGHTPADDING", (0, 0), (-1, -1), 2),
    ]
    if header:
        commands.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef4")))
    table.setStyle(TableStyle(commands))
    return table


def _header(content: dict[str, Any], styles: dict[str, ParagraphStyle]) -> Table:
    delivery = content.get("delivery", {})
    point = delivery.get("delivery_point", {})
    need = content.get("need", {})
    design = content.get("design_version", {})
    body = styles["body"]
    pairs = [
        (_("Issued"), _day(content.get("issued_at"))),
        (_("Delivered to"), f"{point.get('name', '')} — {point.get('address', '')}"),
        (_("Recipient"), delivery.get("recipient", "")),
        (_("Quantity"), delivery.get("quantity", "")),
        (_("Need"), f"{need.get('id', '')} ({_('quantity')} {need.get('quantity', '')})"),
        (
            _("Part and design version"),
            f"{design.get('part', '')} v{design.get('number', '')} — SHA-256 "
            f"{str(design.get('model_sha256', ''))[:16]}…",
        ),
        (
            _("Design approved"),
            f"{design.get('approved_by') or '-'} {_day(design.get('approved_at'))}",
        ),
    ]
    rows = [[_p(label, body), _p(value, body)] for label, value in pairs]
    return _grid(rows, [55 * mm, 210 * mm], header=False)


def _traceability(content: dict[str, Any], styles: dict[str, ParagraphStyle]) -> Table:
    cell = styles["cell"]
    titles = [
        _("Plate"),
        _("Copies"),
        _("Site"),
        _("Printer"),
        _("Operator"),
        _("Material lot"),
        _("Printed"),
        _("G-code SHA-256"),
        _("Slicing settings"),
        _("Inspection"),
        _("Inspector"),
    ]
    rows: list[list[Any]] = [[_p(t, cell) for t in titles]]
    for plate in content.get("plates", []):
        printed = plate.get("print") or {}
        material = plate.get("material") or {}
        lot = material.get("spool_lot") or {}
        settings = plate.get("slice") or {}
        inspection = plate.get("inspection") or {}
        verdict = inspection.get("verdict", "-")
        if plate.get("concession"):
            verdict = _("concession")
        rows.append(
            [
                _p(plate.get("plate"), cell),
                _p(plate.get("copies"), cell),
                _p(printed.get("site"), cell),
                _p(printed.get("printer"), cell),
                _p(printed.get("operator"), cell),
                _p(f"{material.get('key', '')} {lot.get('lot_code', '')}", cell),
                _p(f"{_day(printed.get('started_at'))} → {_day(printed.get('ended_at'))}", cell),
                _p(str(printed.get("gcode_sha256", ""))[:16], cell),
                _p(
                    f"{settings.get('profile', '')} {str(settings.get('settings_sha256', ''))[:8]}",
                    cell,
                ),
                _p(
                    f"{verdict} n={inspection.get('sample_size', '-')} "
                    f"Ac={inspection.get('accept_number', '-')} "
                    f"d={inspection.get('defective_count', '-')} "
                    f"({inspection.get('severity', '-')})",
                    cell,
                ),
                _p(inspection.get("inspector"), cell),
            ]
        )
    widths = [m * mm for m in (12, 12, 26, 26, 22, 28, 38, 26, 26, 36, 21)]
    return _grid(rows, widths)


def _summary(content: dict[str, Any], styles: dict[str, ParagraphStyle]) -> Table:
    summary = content.get("inspection_summary", {})
    body = styles["body"]
    pairs = [
        (_("Lots inspected"), summary.get("lots")),
        (_("Parts delivered"), summary.get("parts_delivered")),
        (_("Parts sampled"), summary.get("parts_sampled")),
        (_("Defective parts found in samples"), summary.get("defective_found")),
        (_("Lots accepted"), summary.get("lots_accepted")),
        (_("Lots released under concession"), summary.get("lots_under_concession")),
        (_("Inspection severities"), ", ".join(summary.get("severities", []))),
    ]
    return _grid([[_p(k, body), _p(v, body)] for k, v in pairs], [80 * mm, 40 * mm], header=False)


def _plan(plan: dict[str, Any], styles: dict[str, ParagraphStyle]) -> KeepTogether:
    body, cell = styles["body"], styles["cell"]
    head = _p(
        _(
            "Quality plan revision {revision}: {standard}, AQL {aql}, level {level}",
            revision=plan.get("revision"),
            standard=plan.get("standard"),
            aql=plan.get("aql"),
            level=plan.get("inspection_level"),
        ),
        body,
    )
    rows: list[list[Any]] = [
        [_p(_("Check"), cell), _p(_("Kind"), cell), _p(_("Requirement"), cell)]
    ]
    for check in plan.get("checks", []):
        requirement = check.get("expected", "")
        if check.get("kind") == "dimensional":
            requirement = f"{check.get('nominal_mm')} ± {check.get('tolerance_mm')} mm"
        rows.append(
            [
                _p(check.get("label"), cell),
                _p(check.get("kind"), cell),
                _p(f"{requirement} {check.get('reference', '')}", cell),
            ]
        )
    parts: list[Any] = [head]
    if plan.get("standard_note"):
        parts.append(_p(plan["standard_note"], body))
    parts += [_grid(rows, [90 * mm, 30 * mm, 120 * mm]), Spacer(1, 3 * mm)]
    return KeepTogether(parts)


def _verification(sha256: str, styles: dict[str, ParagraphStyle]) -> Table:
    size = 28 * mm
    widget = QrCodeWidget(sha256)
    x0, y0, x1, y1 = widget.getBounds()
    drawing = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
    drawing.add(widget)
    text = [
        _p(_("Verification hash (SHA-256 of the certificate's canonical JSON)"), styles["body"]),
        _p(sha256, styles["mono"]),
        _p(_("Check it with: distrifab certificate verify"), styles["body"]),
    ]
    return _grid([[drawing, text]], [32 * mm, 200 * mm], header=False)
