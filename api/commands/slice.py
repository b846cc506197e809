"""``distrifab slice``: a model file -> checked, plate-batched G-code with time, grams and cost.

Runs the pure slicer locally (no database, no server). Bad input (missing
file, broken mesh, unknown printer or material, part too large) ends with
one readable line on stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.errors import DomainError
from core.i18n import _

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]{escape(_('error'))}:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    @app.command("slice")
    def slice_command(
        model: Annotated[Path, typer.Argument(help="STL, 3MF or OBJ file")],
        printer: Annotated[
            str, typer.Option("--printer", help="Printer profile key, e.g. prusa-mk3s")
        ],
        material: Annotated[str, typer.Option("--material", help="PLA, PETG or ABS")],
        layer_height: Annotated[float, typer.Option(help="Layer height in mm")] = 0.2,
        infill: Annotated[float, typer.Option(help="Sparse infill density, 0 to 1")] = 0.15,
        copies: Annotated[int, typer.Option(help="Copies on one plate")] = 1,
        out_path: Annotated[
            Path | None, typer.Option("--out", help="G-code file (default: next to the model)")
        ] = None,
        unit: Annotated[
            str | None, typer.Option(help="Unit of the model when it is not mm: in, cm, m, ...")
        ] = None,
        thin_gaps: Annotated[
            str,
            typer.Option(help="fill: a line down thin gaps (classic); widen: loops grow into them"),
        ] = "fill",
        json_output: Annotated[bool, typer.Option("--json", help="Print a JSON object")] = False,
    ) -> None:
        """Slice MODEL for one printer and material; write G-code and print the estimates."""
        # Imported here so that ``distrifab --help`` does not pay for trimesh and shapely.
        from catalog.meshcheck import ensure_fits, load_mesh
        from catalog.plate import copies_that_fit
        from catalog.profiles import get_material, get_profile, load_profiles
        from catalog.slicer import slice_mesh
        from catalog.types import SliceSettings

        try:
            data = model.read_bytes()
        except OSError as error:
            raise _fail(
                _(
                    "cannot read {path}: {reason}",
                    path=str(model),
                    reason=error.strerror or str(error),
                )
            ) from None
        target = out_path or model.with_suffix(".gcode")
        try:
            profile = get_profile(printer)
            spec = get_material(material)
            report = load_mesh(data, model.name, unit=unit)
            ensure_fits(report.mesh, profile, load_profiles())
            settings = SliceSettings(
                layer_height_mm=layer_height,
                # Thin layers keep a 0.2 mm first layer: it sticks better to the bed.
                first_layer_height_mm=max(layer_height, 0.2),
                infill=infill,
                copies=copies,
                thin_gaps=thin_gaps,
            )
            fit = copies_that_fit(report.mesh, profile, settings)
            if json_output:
                result = slice_mesh(report.mesh, profile, spec, settings)
            else:
                with Progress(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    TextColumn("{task.percentage:>3.0f} %"),
                    TimeElapsedColumn(),
                    console=err,
                    transient=True,
                ) as bar:
                    task = bar.add_task(_("slicing"), total=1.0)
                    result = slice_mesh(
                        report.mesh,
                        profile,
                        spec,
                        settings,
                        progress=lambda fraction: bar.update(task, completed=fraction),
                    )
        except DomainError as error:
            raise _fail(str(error)) from None
        try:
            target.write_text(result.gcode, encoding="ascii")
        except OSError as error:
            raise _fail(
                _(
                    "cannot write {path}: {reason}",
                    path=str(target),
                    reason=error.strerror or str(error),
                )
            ) from None

        summary: dict[str, Any] = {
            "model": str(model),
            "printer": profile.key,
            "material": spec.key,
            "print_time_s": round(result.print_time_s, 1),
            "filament_mm": round(result.filament_mm, 1),
            "filament_g": round(result.filament_g, 2),
            "cost_eur": round(result.cost_eur, 2),
            "material_cost_eur": round(result.material_cost_eur, 2),
            "machine_cost_eur": round(result.machine_cost_eur, 2),
            "energy_cost_eur": round(result.energy_cost_eur, 2),
            "layers": result.layers,
            "copies": result.copies,
            "copies_that_fit": fit,
            "gcode_path": str(target),
            "repairs": list(report.repairs),
            "warnings": [*report.warnings, *result.warnings],
        }
        if json_output:
            out.print_json(json.dumps(summary))
            return
        table = Table(show_header=False, box=None)
        table.add_row(_("printer"), profile.name)
        table.add_row(_("material"), spec.name)
        table.add_row(_("print time"), _format_duration(result.print_time_s))
        table.add_row(
            _("filament"), f"{result.filament_g:.1f} g ({result.filament_mm / 1000:.2f} m)"
        )
        table.add_row(
            _("cost"),
            _(
                "{total} EUR (material {material}, machine {machine}, energy {energy})",
                total=f"{result.cost_eur:.2f}",
                material=f"{result.material_cost_eur:.2f}",
                machine=f"{result.machine_cost_eur:.2f}",
                energy=f"{result.energy_cost_eur:.2f}",
            ),
        )
        table.add_row(_("layers"), str(result.layers))
        table.add_row(_("copies"), _("{copies} (up to {fit} fit)", copies=result.copies, fit=fit))
        table.add_row(_("G-code"), str(target))
        out.print(table)
        for line in summary["repairs"]:
            err.print(f"{escape(_('repaired'))}: {escape(line)}")
        for line in summary["warnings"]:
            err.print(f"[yellow]{escape(_('warning'))}:[/yellow] {escape(line)}")


def _format_duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"
