"""``distrifab part ...``: the catalogue from the command line (list, add, upload, approve).

The CLI runs on the server with direct database access, as an administrator
would; every change is written to the audit trail under the name ``cli``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import typer
from rich.console import Console
from rich.table import Table

from core.errors import Invalid
from core.i18n import _

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.identity import Actor

out = Console(highlight=False)
part_app = typer.Typer(help="Parts and their design versions.", no_args_is_help=True)


def _actor() -> Actor:
    from core.identity import Actor  # imported lazily: --help stays fast

    return Actor.system("cli")


def _part_id(session: Session, reference: str) -> UUID:
    """A part named ``reference``, or with that id."""
    from sqlalchemy import select

    from catalog.models import Part

    found = session.scalar(select(Part.id).where(Part.name == reference))
    if found is not None:
        return found
    try:
        return UUID(reference)
    except ValueError:
        raise Invalid(_("no part named {name}", name=reference)) from None


@part_app.command("list")
def list_parts(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """Parts with their versions and statuses."""
    from catalog import service as catalog
    from core.runtime import get_runtime

    runtime = get_runtime()
    with runtime.db.session() as session:
        rows: list[dict[str, Any]] = [
            {
                "part": part.name,
                "part_id": str(part.id),
                "versions": [
                    {
                        "id": str(v.id),
                        "number": v.number,
                        "status": v.status.value,
                        "model_hash": v.model_hash,
                    }
                    for v in part.versions
                ],
            }
            for part in catalog.find_parts(session)
        ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table()
    for column in (_("Part"), _("Version"), _("Status"), _("Id")):
        table.add_column(column)
    for row in rows:
        for version in row["versions"] or [{"number": "-", "status": "-", "id": "-"}]:
            table.add_row(
                str(row["part"]), str(version["number"]), str(version["status"]), str(version["id"])
            )
    out.print(table)


@part_app.command("add")
def add_part(
    name: Annotated[str, typer.Argument(help="Part name, e.g. 'Serre-tête de visière'")],
    material: Annotated[str, typer.Option(help="Default material key")] = "PLA",
    category: Annotated[str, typer.Option()] = "",
    description: Annotated[str, typer.Option()] = "",
) -> None:
    """Create a part (no model yet: upload a version next)."""
    from api.bootstrap import prepare_database
    from catalog import service as catalog
    from core.runtime import get_runtime

    runtime = get_runtime()
    prepare_database(runtime)
    with runtime.db.session() as session:
        part = catalog.create_part(
            session,
            name=name,
            actor=_actor(),
            category=category,
            description=description,
            default_material_key=material,
        )
    out.print(_("Part {name} created: {id}", name=part.name, id=part.id))


@part_app.command("upload")
def upload_version(
    part: Annotated[str, typer.Argument(help="Part name or id")],
    model: Annotated[Path, typer.Argument(help="STL (binary or ASCII), 3MF or OBJ file")],
    licence: Annotated[str, typer.Option(help="e.g. CC-BY-4.0")] = "",
    source: Annotated[str, typer.Option(help="Where the design comes from (URL)")] = "",
    author: Annotated[str, typer.Option()] = "",
    note: Annotated[str, typer.Option(help="What changed in this version")] = "",
    unit: Annotated[
        str | None, typer.Option(help="The file's unit when it is not mm: cm, m, in, ft or um")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Check a model file and store it as a new draft version of PART."""
    from catalog import service as catalog
    from core.runtime import get_runtime

    try:
        data = model.read_bytes()
    except OSError as exc:
        raise Invalid(
            _("cannot read {path}: {reason}", path=model, reason=exc.strerror or exc)
        ) from None
    runtime = get_runtime()
    with runtime.db.session() as session:
        version = catalog.add_design_version(
            session,
            runtime.store,
            part_id=_part_id(session, part),
            model=data,
            file_name=model.name,
            actor=_actor(),
            max_upload_bytes=runtime.settings.max_upload_bytes,
            licence=licence,
            source=source,
            author=author,
            change_note=note,
            unit=unit,
        )
    report = version.check_report
    if as_json:
        print(
            json.dumps(
                {
                    "id": str(version.id),
                    "number": version.number,
                    "status": version.status.value,
                    **report,
                },
                indent=2,
            )
        )
        return
    out.print(_("Version {number} stored as a draft: {id}", number=version.number, id=version.id))
    for line in [*report.get("repairs", []), *report.get("warnings", [])]:
        out.print(f"  - {line}")
    fits = ", ".join(f"{k}: {n}" for k, n in report.get("copies_per_profile", {}).items())
    out.print(_("Copies per plate: {fits}", fits=fits))


@part_app.command("approve")
def approve_version(version_id: Annotated[str, typer.Argument(help="Design version id")]) -> None:
    """Approve a draft version: it becomes the one needs order (the previous one retires)."""
    from catalog import service as catalog
    from core.runtime import get_runtime

    try:
        identifier = UUID(version_id)
    except ValueError:
        raise Invalid(_("{value} is not a version id", value=version_id)) from None
    runtime = get_runtime()
    with runtime.db.session() as session:
        version = catalog.approve_version(session, version_id=identifier, actor=_actor())
    out.print(
        _("Version {number} of {part} approved.", number=version.number, part=version.part.name)
    )


def register(app: typer.Typer) -> None:
    app.add_typer(part_app, name="part")
