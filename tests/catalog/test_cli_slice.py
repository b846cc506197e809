"""``distrifab slice`` through a local Typer app: JSON, summary, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from api.commands.slice import register
from catalog import demo_parts


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    application = typer.Typer()
    register(application)

    @application.command()
    def version() -> None:  # a second command, so that "slice" is a real sub-command
        typer.echo("test")

    return application


@pytest.fixture(scope="module")
def saver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "ear saver.stl"
    demo_parts.ear_saver().export(path)
    return path


def test_json_output_and_gcode_file(app: typer.Typer, saver: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.gcode"
    result = CliRunner().invoke(
        app,
        [
            "slice",
            str(saver),
            "--printer",
            "prusa-mk3s",
            "--material",
            "PETG",
            "--copies",
            "2",
            "--infill",
            "0.2",
            "--thin-gaps",
            "widen",
            "--out",
            str(target),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["copies"] == 2
    assert summary["layers"] == 8
    assert summary["gcode_path"] == str(target)
    assert summary["print_time_s"] > 0
    assert summary["filament_g"] > 0
    assert summary["cost_eur"] == pytest.approx(
        summary["material_cost_eur"] + summary["machine_cost_eur"] + summary["energy_cost_eur"],
        abs=0.011,
    )
    assert "M109 S230" in target.read_text()  # PETG's first-layer nozzle temperature


def test_readable_summary_next_to_the_model(app: typer.Typer, saver: Path) -> None:
    result = CliRunner().invoke(
        app, ["slice", str(saver), "--printer", "creality-ender3", "--material", "PLA"]
    )
    assert result.exit_code == 0, result.output
    assert "Creality Ender-3" in result.stdout
    assert saver.with_suffix(".gcode").exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["missing.stl", "--printer", "prusa-mk3s", "--material", "PLA"], "cannot read"),
        (["MODEL", "--printer", "makerbot", "--material", "PLA"], "Unknown printer profile"),
        (["MODEL", "--printer", "prusa-mk3s", "--material", "nylon"], "Unknown material"),
        (["MODEL", "--printer", "prusa-mk3s", "--material", "PLA", "--copies", "500"], "at most"),
        (
            ["MODEL", "--printer", "prusa-mk3s", "--material", "PLA", "--layer-height", "0.5"],
            "Layer height",
        ),
        (["BROKEN", "--printer", "prusa-mk3s", "--material", "PLA"], "not a 3D mesh"),
    ],
)
def test_bad_input_is_one_line_without_traceback(
    app: typer.Typer, saver: Path, tmp_path: Path, arguments: list[str], message: str
) -> None:
    broken = tmp_path / "broken.stl"
    broken.write_bytes(b"solid nothing here\nendsolid\n" * 10)
    replaced = [
        str(saver) if a == "MODEL" else str(broken) if a == "BROKEN" else a for a in arguments
    ]
    result = CliRunner().invoke(app, ["slice", *replaced])
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1
