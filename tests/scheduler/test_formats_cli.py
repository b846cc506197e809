"""Problem files in and plans out: the readers, the JSON schema and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from api.commands.plan import register
from core.errors import Invalid
from scheduler.allocator import allocate
from scheduler.formats import (
    problem_to_json,
    read_orlib_wt,
    read_problem_json,
    read_rsijk,
)
from scheduler.validate import check_plan
from tests.scheduler.factories import small_problem

RSIJK = """3 2 1
x
0 4 1 9
0 5 1 2
0 7 1 3
SSD
M0
0 1 2
3 0 4
5 6 0
M1
0 9 9
9 0 1
9 1 0
"""


def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.callback()
    def root() -> None:
        """distrifab (test app)."""

    return app


def test_rsijk_reader_gives_setups_and_a_makespan_problem() -> None:
    problem = read_rsijk(RSIJK)
    assert [dict(j.durations_s) for j in problem.jobs] == [
        {"M0": 4, "M1": 9},
        {"M0": 5, "M1": 2},
        {"M0": 7, "M1": 3},
    ]
    assert problem.setups is not None
    assert problem.setups.by_printer["M1"][1][2] == 1
    plan = allocate(problem, time_limit_s=1.0)
    assert check_plan(problem, plan) == []
    # Best: J0 on M0 (4), J1 then J2 on M1 (2 + 1 + 3 = 6) or J2, J1 (3 + 1 + 2).
    assert plan.makespan_s == 6
    assert plan.bound is not None
    assert plan.bound <= 6


def test_rsijk_reader_refuses_a_truncated_file() -> None:
    with pytest.raises(Invalid, match="rsijk"):
        read_rsijk("\n".join(RSIJK.splitlines()[:8]))


def test_orlib_reader_and_instance_range() -> None:
    text = "1 2  3 1  2 3   4 1  1 1  1 1"
    problem = read_orlib_wt(text, 2, n=2)
    assert [j.durations_s["M"] for j in problem.jobs] == [4, 1]
    plan = allocate(problem, time_limit_s=0.5)
    # Job 1 (p=1, d=1) first is on time, job 0 ends at 5 vs due 1: tardiness 4.
    assert plan.weighted_tardiness_s == 4
    with pytest.raises(Invalid, match="out of"):
        read_orlib_wt(text, 3, n=2)


def test_problem_json_round_trip() -> None:
    problem = small_problem()
    again = read_problem_json(json.dumps(problem_to_json(problem)))
    assert again == problem


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("now"), "missing 'now'"),
        (lambda d: d["jobs"][0].update(due_at="2025-03-03T10:00:00"), "no timezone"),
        (lambda d: d["jobs"][0].update(durations_s={"p1": 1.5}), "whole seconds"),
        (lambda d: d["printers"][0].update(site_id="nowhere"), "unknown site"),
    ],
)
def test_problem_json_errors_are_one_sentence(mutate: object, message: str) -> None:
    doc = problem_to_json(small_problem())
    mutate(doc)  # type: ignore[operator]  # parametrised callables
    with pytest.raises(Invalid, match=message):
        allocate(read_problem_json(json.dumps(doc)), method="greedy")


def test_road_graph_fills_travel(tmp_path: Path) -> None:
    doc = problem_to_json(small_problem())
    doc["road_graph"] = {
        "nodes": [
            {"id": "a", "lat": 49.26, "lon": 2.47},
            {"id": "b", "lat": 49.42, "lon": 2.83},
            {"id": "c", "lat": 49.89, "lon": 2.30},
        ],
        "edges": [
            {"from": "a", "to": "c", "travel_s": 3000},
            {"from": "b", "to": "c", "length_km": 60},
        ],
    }
    problem = read_problem_json(json.dumps(doc))
    assert 3000 <= problem.travel_s[("creil", "chu-amiens")] < 3300
    assert problem.travel_s[("compiegne", "chu-amiens")] >= 5400


def test_cli_plans_a_json_problem(tmp_path: Path) -> None:
    path = tmp_path / "problem.json"
    path.write_text(json.dumps(problem_to_json(small_problem())), encoding="utf-8")
    result = CliRunner().invoke(
        cli(), ["plan", "--problem", str(path), "--time-limit", "0.5", "--json", "--explain"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["status"] in {"feasible", "optimal", "greedy", "infeasible"}
    assert {"objective", "bound", "seconds", "assignments", "explanation"} <= set(doc)
    assert doc["unassigned"] == [{"job_id": "orphan", "reason": "no_eligible_printer"}]


def test_cli_reads_rsijk(tmp_path: Path) -> None:
    path = tmp_path / "i.txt"
    path.write_text(RSIJK, encoding="utf-8")
    result = CliRunner().invoke(
        cli(),
        ["plan", "--problem", str(path), "--format", "rsijk", "--time-limit", "0.5", "--json"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["objective"]["makespan_s"] == 6


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--problem", "/does/not/exist.json"], "cannot read"),
        (["--problem", "{bad}", "--format", "xml"], "unknown format"),
    ],
)
def test_cli_bad_input_is_one_line_without_traceback(args: list[str], expected: str) -> None:
    result = CliRunner().invoke(cli(), ["plan", *args])
    assert result.exit_code == 1
    assert expected in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_cli_bad_json_content(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text("{not json", encoding="utf-8")
    result = CliRunner().invoke(cli(), ["plan", "--problem", str(path)])
    assert result.exit_code == 1
    assert "not valid JSON" in result.output
