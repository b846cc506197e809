"""``distrifab plan``: solve a problem file with the pure allocator.

Reads the distrifab problem JSON (docs/problem-format.md), a Vallada-Ruiz
R|Sijk|Cmax instance (``--format rsijk``) or one instance of an OR-Library
weighted-tardiness file (``--format orlib-wt --instance K``), and prints the
plan with its objective, bound, status and seconds. No database, no server.
Bad input ends with one readable line on stderr and exit code 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from core.errors import DomainError
from core.i18n import _

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
FORMATS = ("json", "rsijk", "orlib-wt")


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]{escape(_('error'))}:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    @app.command("plan")
    def plan_command(
        problem_path: Annotated[
            Path, typer.Option("--problem", help="Problem file (see docs/problem-format.md)")
        ],
        time_limit: Annotated[
            float, typer.Option("--time-limit", help="Seconds for the search")
        ] = 10.0,
        file_format: Annotated[
            str, typer.Option("--format", help="json, rsijk or orlib-wt")
        ] = "json",
        instance: Annotated[
            int, typer.Option("--instance", help="Instance number in an orlib-wt file (1-based)")
        ] = 1,
        method: Annotated[str, typer.Option(help="auto or greedy")] = "auto",
        seed: Annotated[int, typer.Option(help="Random seed of the search")] = 0,
        workers: Annotated[int, typer.Option(help="CP-SAT worker threads")] = 2,
        explain: Annotated[
            bool, typer.Option("--explain", help="Add alternatives and late-need causes")
        ] = False,
        json_output: Annotated[bool, typer.Option("--json", help="Print a JSON object")] = False,
    ) -> None:
        """Plan which printer prints which job and when."""
        # Imported here so that ``distrifab --help`` does not pay for OR-Tools.
        from scheduler.allocator import allocate
        from scheduler.explain import explain_plan
        from scheduler.formats import plan_to_json, read_orlib_wt, read_problem_json, read_rsijk

        if file_format not in FORMATS:
            raise _fail(_("unknown format {name}; use json, rsijk or orlib-wt", name=file_format))
        if time_limit < 0:
            raise _fail(_("the time limit must be positive"))
        try:
            text = problem_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or str(error)
            raise _fail(
                _("cannot read {path}: {reason}", path=str(problem_path), reason=reason)
            ) from None
        try:
            if file_format == "rsijk":
                problem = read_rsijk(text)
            elif file_format == "orlib-wt":
                problem = read_orlib_wt(text, instance)
            else:
                problem = read_problem_json(text)
            plan = allocate(
                problem, time_limit_s=time_limit, seed=seed, method=method, workers=workers
            )
            explanation = explain_plan(problem, plan) if explain else None
        except DomainError as error:
            raise _fail(str(error)) from None
        if json_output:
            doc = plan_to_json(plan)
            if explanation is not None:
                doc["explanation"] = explanation.to_dict()
            out.print_json(json.dumps(doc))
            return
        table = Table(title=_("Plan"), show_header=False)
        table.add_row(_("status"), str(plan.status))
        table.add_row(_("method"), plan.method)
        table.add_row(_("weighted tardiness (s)"), f"{plan.weighted_tardiness_s:,.0f}")
        if plan.greedy_weighted_tardiness_s is not None:
            table.add_row(_("greedy baseline (s)"), f"{plan.greedy_weighted_tardiness_s:,.0f}")
        table.add_row(_("makespan (s)"), f"{plan.makespan_s:,.0f}")
        table.add_row(_("travel (s)"), f"{plan.travel_s:,.0f}")
        table.add_row(_("bound"), "-" if plan.bound is None else f"{plan.bound:,.0f}")
        table.add_row(_("jobs planned"), str(len(plan.assignments)))
        table.add_row(_("jobs unassigned"), str(len(plan.unassigned)))
        table.add_row(_("seconds"), f"{plan.solve_time_s:.2f}")
        out.print(table)
        if explanation is not None:
            for need in explanation.late_needs[:10]:
                causes = ", ".join(f"{name} {seconds}s" for name, seconds in need.causes[:3])
                out.print(
                    _(
                        "late: {need} by {late} s ({causes})",
                        need=need.need_id,
                        late=need.late_s,
                        causes=causes,
                    )
                )
