"""Quality on the command line: ``distrifab trace``, ``recall``, ``certificate``, ``export``
and ``waste``.

The command line is the machine's own operator: it reads everything and acts as
the system (audited as ``cli``). Every command has ``--json``; a refused request
ends with one readable line on stderr and exit code 2; a failed verification
with exit code 3.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from core.errors import DomainError, Invalid
from core.i18n import _

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

trace_app = typer.Typer(help="Trace a delivered batch or a plate back to its origins.")
certificate_app = typer.Typer(help="Certificates of conformity of delivered batches.")
waste_app = typer.Typer(help="The waste ledger and the mass balance.")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON")]
SinceOption = Annotated[str, typer.Option("--since", help="Start, ISO date or instant (UTC)")]
UntilOption = Annotated[str, typer.Option("--until", help="End (exclusive), ISO date or instant")]


@contextmanager
def _session() -> Iterator[Session]:
    """A session on the configured database; a refused request becomes one line and exit 2."""
    from core.runtime import get_runtime

    try:
        with get_runtime().db.session() as session:
            yield session
    except DomainError as error:
        err.print(f"distrifab: {escape(str(error))}", soft_wrap=True)
        raise typer.Exit(code=2) from None


def _actor() -> Any:
    from core.identity import Actor

    return Actor.system("cli")


def _instant(text: str, option: str) -> datetime:
    """An ISO date (midnight UTC) or instant (UTC when no offset is given)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(
            _("{option}: {text} is not an ISO date or instant", option=option, text=text)
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _uuid(text: str, what: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise Invalid(_("{what}: {text} is not an id", what=what, text=text)) from None


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as error:
        raise Invalid(
            _("cannot write {path}: {reason}", path=str(path), reason=error.strerror)
        ) from None
    out.print(_("Written: {path} ({size} bytes)", path=str(path), size=len(data)))


# --- trace and recall ------------------------------------------------------------------


@trace_app.command("delivery")
def trace_delivery(
    delivery_id: Annotated[str, typer.Argument(help="Delivery id")],
    json_output: JsonOption = False,
) -> None:
    """Each plate of a delivered batch back to need, design, G-code, printer, lot, inspection."""
    from quality.traceability import trace_delivery as trace

    with _session() as session:
        found = trace(session, _uuid(delivery_id, "delivery"), actor=_actor())
    if json_output:
        _print_json(found)
        return
    delivery, design = found["delivery"], found["design_version"]
    out.print(
        _(
            "Delivery {id} on {at}: {quantity} parts to {point} ({recipient})",
            id=delivery["id"],
            at=delivery["delivered_at"][:16],
            quantity=delivery["quantity"],
            point=delivery["delivery_point"]["name"],
            recipient=delivery["recipient"] or "-",
        )
    )
    out.print(
        _(
            "Design {part} v{number} (model {sha}), approved by {who} on {at}",
            part=design["part"],
            number=design["number"],
            sha=design["model_sha256"][:12],
            who=design["approved_by"] or "-",
            at=(design["approved_at"] or "-")[:10],
        )
    )
    out.print(_plates_table(found["plates"]))


def _plates_table(plates: list[dict[str, Any]]) -> Table:
    table = Table()
    for title in (
        _("Plate"),
        _("Copies"),
        _("Site"),
        _("Printer"),
        _("Operator"),
        _("Material lot"),
        _("Printed"),
        _("G-code SHA-256"),
        _("Inspection"),
        _("Inspector"),
    ):
        table.add_column(title)
    for plate in plates:
        printed = plate["print"] or {}
        lot = plate["material"]["spool_lot"] or {}
        inspection = plate["inspection"] or {}
        table.add_row(
            str(plate["plate"]),
            str(plate["copies"]),
            escape(printed.get("site") or "-"),
            escape(printed.get("printer") or "-"),
            escape(printed.get("operator") or "-"),
            escape(f"{plate['material']['key']} {lot.get('lot_code', '')}"),
            f"{(printed.get('started_at') or '')[:16]} → {(printed.get('ended_at') or '')[:16]}",
            str(printed.get("gcode_sha256", ""))[:16],
            f"{inspection.get('verdict', '-')} n={inspection.get('sample_size', '-')}",
            escape(inspection.get("inspector") or "-"),
        )
    return table


@trace_app.command("job")
def trace_job(
    job_id: Annotated[str, typer.Argument(help="Job (plate) id")],
    json_output: JsonOption = False,
) -> None:
    """A plate's whole story, every attempt included."""
    from quality.traceability import trace_job as trace

    with _session() as session:
        found = trace(session, _uuid(job_id, "job"), actor=_actor())
    if json_output:
        _print_json(found)
        return
    out.print(_("Job {id}: {state}", id=found["job_id"], state=found["state"]))
    out.print(_plates_table(found["attempts"]))


def recall(
    lot_code: Annotated[str | None, typer.Option("--lot", help="Spool lot code")] = None,
    spool_lot: Annotated[str | None, typer.Option("--spool-lot", help="Spool lot id")] = None,
    printer: Annotated[str | None, typer.Option("--printer", help="Printer id")] = None,
    since: Annotated[str | None, typer.Option("--since", help="With --printer")] = None,
    until: Annotated[str | None, typer.Option("--until", help="With --printer")] = None,
    design_version: Annotated[
        str | None, typer.Option("--design-version", help="Design version id")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Every delivery and recipient affected by a spool lot, a printer over a time window, or
    a design version; and the plates not delivered yet to hold back."""
    from quality.traceability import recall as find

    with _session() as session:
        found = find(
            session,
            actor=_actor(),
            lot_code=lot_code,
            spool_lot_id=_uuid(spool_lot, "spool lot") if spool_lot else None,
            printer_id=_uuid(printer, "printer") if printer else None,
            since=_instant(since, "--since") if since else None,
            until=_instant(until, "--until") if until else None,
            design_version_id=_uuid(design_version, "design version") if design_version else None,
        )
    if json_output:
        _print_json(found)
        return
    table = Table(title=_("Affected deliveries"))
    for title in (_("Delivered"), _("Delivery point"), _("Recipient"), _("Contact"), _("Parts")):
        table.add_column(title)
    for delivery in found["deliveries"]:
        table.add_row(
            delivery["delivered_at"][:16],
            escape(delivery["delivery_point"]),
            escape(delivery["recipient"] or "-"),
            escape(delivery["contact"] or "-"),
            str(delivery["affected_quantity"]),
        )
    out.print(table)
    out.print(
        _(
            "{parts} delivered parts affected; {plates} plates not delivered yet to hold back.",
            parts=found["affected_quantity"],
            plates=len(found["undelivered"]),
        )
    )


# --- certificates ----------------------------------------------------------------------


@certificate_app.command("pdf")
def certificate_pdf(
    delivery_id: Annotated[str, typer.Argument(help="Delivery id")],
    output: Annotated[Path, typer.Option("--out", help="PDF file to write")],
) -> None:
    """Write a batch's certificate of conformity as PDF."""
    from quality.certificate_pdf import render_pdf
    from quality.certificates import certificate_content, get_certificate

    with _session() as session:
        certificate = get_certificate(
            session, delivery_id=_uuid(delivery_id, "delivery"), actor=_actor()
        )
        pdf = render_pdf(certificate_content(certificate), certificate.sha256)
        _write(output, pdf)


@certificate_app.command("json")
def certificate_json(
    delivery_id: Annotated[str, typer.Argument(help="Delivery id")],
    output: Annotated[Path | None, typer.Option("--out", help="File (default: print)")] = None,
) -> None:
    """A batch's certificate as its canonical JSON (its SHA-256 is the verification hash)."""
    from quality.certificates import get_certificate

    with _session() as session:
        certificate = get_certificate(
            session, delivery_id=_uuid(delivery_id, "delivery"), actor=_actor()
        )
        if output is None:
            typer.echo(certificate.content_json)
            return
        _write(output, certificate.content_json.encode())


@certificate_app.command("verify")
def certificate_verify(
    delivery_id: Annotated[str | None, typer.Argument(help="Delivery id")] = None,
    document: Annotated[
        Path | None, typer.Option("--file", help="A certificate JSON someone holds")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Check a certificate against its hash, its audit entry and today's records (exit 3
    when anything disagrees)."""
    from quality.certificates import get_certificate, verify_certificate, verify_document

    if (delivery_id is None) == (document is None):
        raise typer.BadParameter(_("give a delivery id or --file, one of the two"))
    with _session() as session:
        if document is not None:
            try:
                held = json.loads(document.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
                raise Invalid(
                    _("cannot read {path}: {reason}", path=str(document), reason=str(error))
                ) from None
            if not isinstance(held, dict):
                raise Invalid(_("{path} is not a certificate", path=str(document)))
            report = verify_document(session, held)
        else:
            assert delivery_id is not None
            certificate = get_certificate(
                session, delivery_id=_uuid(delivery_id, "delivery"), actor=_actor()
            )
            report = verify_certificate(session, certificate)
    if json_output:
        _print_json(report)
    elif report["ok"]:
        out.print(
            _("Certificate {number} verified: {sha}", number=report["number"], sha=report["sha256"])
        )
    else:
        for problem in report["problems"]:
            err.print(
                _("certificate {number}: {problem}", number=report["number"], problem=problem)
            )
        for path in report["differences"][:10]:
            err.print(_("  differs at {path}", path=path))
    if not report["ok"]:
        raise typer.Exit(code=3)


# --- exports, waste, balance -------------------------------------------------------------


def export(
    kind: Annotated[
        str,
        typer.Argument(
            help="all, inspections, non_conformities, deliveries, traceability, waste, "
            "recycling or audit"
        ),
    ],
    since: SinceOption,
    until: UntilOption,
    file_format: Annotated[str, typer.Option("--format", help="csv or json")] = "csv",
    output: Annotated[Path | None, typer.Option("--out", help="File (default: print)")] = None,
) -> None:
    """Export a time window for auditors (``all`` is one JSON document with its hash)."""
    from quality import exports

    with _session() as session:
        start, end = _instant(since, "--since"), _instant(until, "--until")
        if kind == "all":
            text = json.dumps(
                exports.export_json(session, actor=_actor(), since=start, until=end),
                ensure_ascii=False,
                indent=2,
            )
        else:
            try:
                chosen = exports.ExportKind(kind)
            except ValueError:
                raise Invalid(_("no export {kind}", kind=kind)) from None
            if file_format not in ("csv", "json"):
                raise Invalid(_("the format is csv or json"))
            if file_format == "json":
                rows = exports.export_rows(session, chosen, actor=_actor(), since=start, until=end)
                text = json.dumps(rows, ensure_ascii=False, indent=2)
            else:
                text = exports.export_csv(session, chosen, actor=_actor(), since=start, until=end)
        if output is None:
            typer.echo(text, nl=False)
            return
        _write(output, text.encode())


@waste_app.command("list")
def waste_list(
    site: Annotated[str | None, typer.Option("--site", help="Site id")] = None,
    material: Annotated[str | None, typer.Option("--material", help="PLA, PETG, ABS...")] = None,
    unbatched: Annotated[bool, typer.Option("--unbatched", help="Not in a batch yet")] = False,
    json_output: JsonOption = False,
) -> None:
    """Ledger entries, newest first."""
    from quality.waste import find_waste

    with _session() as session:
        entries = find_waste(
            session,
            actor=_actor(),
            site_id=_uuid(site, "site") if site else None,
            material_key=material,
            unbatched=True if unbatched else None,
        )
        rows = [
            {
                "id": str(e.id),
                "recorded_at": e.recorded_at.isoformat(),
                "material": e.material_key,
                "kind": e.kind.value,
                "mass_g": e.mass_g,
                "estimated": e.estimated,
                "site_id": str(e.site_id) if e.site_id else None,
                "recycling_batch_id": str(e.recycling_batch_id) if e.recycling_batch_id else None,
            }
            for e in entries
        ]
    if json_output:
        _print_json(rows)
        return
    table = Table(title=_("Waste ledger"))
    for title in (
        _("Recorded"),
        _("Material"),
        _("Kind"),
        _("Mass (g)"),
        _("Estimated"),
        _("Batch"),
    ):
        table.add_column(title)
    for row in rows:
        table.add_row(
            str(row["recorded_at"])[:16],
            str(row["material"]),
            str(row["kind"]),
            f"{row['mass_g']:.1f}",
            _("yes") if row["estimated"] else _("no"),
            str(row["recycling_batch_id"] or "-")[:8],
        )
    out.print(table)


@waste_app.command("add")
def waste_add(
    site: Annotated[str, typer.Option("--site", help="Site id")],
    material: Annotated[str, typer.Option("--material", help="PLA, PETG, ABS...")],
    mass_g: Annotated[float, typer.Option("--mass-g", help="Weighed mass in grams")],
    kind: Annotated[
        str, typer.Option("--kind", help="support_and_brim, purge, spool_end, failed_print...")
    ],
    note: Annotated[str, typer.Option(help="Free text")] = "",
    json_output: JsonOption = False,
) -> None:
    """Enter weighed waste in the ledger."""
    from quality.models import WasteKind
    from quality.waste import record_waste

    try:
        chosen = WasteKind(kind)
    except ValueError:
        raise typer.BadParameter(
            _("the kind is one of {kinds}", kinds=", ".join(k.value for k in WasteKind))
        ) from None
    with _session() as session:
        entry = record_waste(
            session,
            material_key=material,
            mass_g=mass_g,
            kind=chosen,
            site_id=_uuid(site, "site"),
            actor=_actor(),
            note=note,
        )
    if json_output:
        _print_json({"id": str(entry.id), "mass_g": entry.mass_g, "kind": entry.kind.value})
        return
    out.print(
        _("Waste entry {id}: {mass} g of {material}", id=entry.id, mass=mass_g, material=material)
    )


@waste_app.command("balance")
def waste_balance(
    since: SinceOption,
    until: UntilOption,
    material: Annotated[str | None, typer.Option("--material")] = None,
    site: Annotated[str | None, typer.Option("--site", help="Site id")] = None,
    json_output: JsonOption = False,
) -> None:
    """The mass balance per material and site: received, delivered, in stock, wasted,
    recycled, and the unexplained difference."""
    from quality.balance import mass_balance

    with _session() as session:
        report = mass_balance(
            session,
            actor=_actor(),
            since=_instant(since, "--since"),
            until=_instant(until, "--until"),
            material_key=material,
            site_id=_uuid(site, "site") if site else None,
        )
    rows = [r.as_dict() for r in report.rows]
    totals = [r.as_dict() for r in report.totals]
    if json_output:
        _print_json({"rows": rows, "totals": totals})
        return
    table = Table(title=_("Mass balance (g)"))
    for title in (
        _("Material"),
        _("Site"),
        _("Received"),
        _("Recycled back"),
        _("Delivered"),
        _("In stock"),
        _("Wasted"),
        _("Sent to recycling"),
        _("Unexplained"),
    ):
        table.add_column(title)
    for row in [*rows, *({**t, "site_id": _("all sites")} for t in totals)]:
        table.add_row(
            str(row["material"]),
            str(row["site_id"] or "-")[:8],
            *(
                f"{row[key]:.0f}"
                for key in (
                    "received_g",
                    "recycled_back_g",
                    "delivered_parts_g",
                    "parts_in_stock_g",
                    "wasted_g",
                    "sent_to_recycling_g",
                    "unexplained_g",
                )
            ),
        )
    out.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(trace_app, name="trace")
    app.add_typer(certificate_app, name="certificate")
    app.add_typer(waste_app, name="waste")
    app.command("recall")(recall)
    app.command("export")(export)
