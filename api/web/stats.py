"""The plots' data: need progress over time, lateness, utilisation per site, waste.

Each function returns a chart spec (plain JSON) that ``distrifab.js`` hands to
Chart.js and that the page also renders as a table, so that the figures stay
readable without JavaScript and by screen readers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.web.labels import label
from api.web.queries import need_rows, site_utilisation
from core.audit import AuditEntry
from core.clock import as_utc
from core.i18n import _
from core.identity import Actor
from quality.models import WasteEntry
from scheduler.models import Need, NeedStatus

# Colour-blind-safe pairs (Okabe-Ito), dark enough against white.
BLUE, ORANGE, GREEN, RED, GREY, PURPLE = (
    "#0072b2",
    "#d55e00",
    "#009e73",
    "#a4161a",
    "#5a5a5a",
    "#8f4f9f",
)
PALETTE = (BLUE, ORANGE, GREEN, PURPLE, GREY, RED)
MILESTONES = ("job.printed", "job.passed", "job.delivered", "job.rejected")

ChartSpec = dict[str, Any]


def _ms(moment: datetime) -> int:
    return int(as_utc(moment).timestamp() * 1000)


def progress_spec(session: Session, needs: Iterable[Need], *, now: datetime) -> ChartSpec:
    """Copies printed, passed and delivered over time (cumulative), against the target."""
    needs = list(needs)
    copies = {str(job.id): job.copies for need in needs for job in need.jobs}
    entries = (
        list(
            session.scalars(
                select(AuditEntry)
                .where(
                    AuditEntry.entity_type == "job",
                    AuditEntry.entity_id.in_(list(copies)),
                    AuditEntry.action.in_(MILESTONES),
                )
                .order_by(AuditEntry.seq)
            )
        )
        if copies
        else []
    )
    totals = {"printed": 0, "passed": 0, "delivered": 0}
    series: dict[str, list[dict[str, int]]] = {key: [] for key in totals}
    start = min((as_utc(n.created_at) for n in needs), default=now)
    for key in totals:
        series[key].append({"x": _ms(start), "y": 0})
    printed_jobs: set[str] = set()
    for entry in entries:
        amount = copies[entry.entity_id]
        key = entry.action.removeprefix("job.")
        if key == "rejected":
            # A rejected plate is printed again: it no longer counts as printed.
            if entry.entity_id in printed_jobs:
                printed_jobs.discard(entry.entity_id)
                totals["printed"] -= amount
                series["printed"].append({"x": _ms(entry.at), "y": totals["printed"]})
            continue
        if key == "printed":
            if entry.entity_id in printed_jobs:
                continue
            printed_jobs.add(entry.entity_id)
        totals[key] += amount
        series[key].append({"x": _ms(entry.at), "y": totals[key]})
    for key in totals:
        series[key].append({"x": _ms(now), "y": totals[key]})
    target = sum(n.quantity for n in needs)
    names = {"printed": _("printed"), "passed": _("passed inspection"), "delivered": _("delivered")}
    colours = {"printed": ORANGE, "passed": BLUE, "delivered": GREEN}
    datasets: list[dict[str, Any]] = [
        {"label": names[key], "data": series[key], "color": colours[key]} for key in totals
    ]
    datasets.append(
        {
            "label": _("quantity needed"),
            "data": [{"x": _ms(start), "y": target}, {"x": _ms(now), "y": target}],
            "color": GREY,
            "dashed": True,
        }
    )
    return {
        "kind": "line",
        "x_time": True,
        "labels": [],
        "datasets": datasets if copies else [],
        "y_label": _("copies"),
        "y_integer": True,
        "x_label": "",
        "summary": _(
            "Progress: {printed} printed, {passed} passed, {delivered} delivered of {target} needed.",
            target=target,
            **totals,
        ),
        "table": {
            "columns": [_("milestone"), _("copies")],
            "rows": [[names[key], totals[key]] for key in totals]
            + [[_("quantity needed"), target]],
        },
    }


def lateness_spec(session: Session) -> ChartSpec:
    """Hours between each open need's delivery forecast and its deadline (positive: late)."""
    labels: list[str] = []
    values: list[float] = []
    colours: list[str] = []
    rows: list[list[Any]] = []
    for row in need_rows(session, status=NeedStatus.OPEN):
        need = row.need
        # Short, so that the axis keeps room for the bars on a phone; the table has it all.
        name = f"{need.part.name[:24]} × {need.quantity}"
        forecast = row.progress.forecast_delivery_at
        if forecast is None:
            rows.append([name, _("not planned yet")])
            continue
        hours = round((as_utc(forecast) - as_utc(need.due_at)).total_seconds() / 3600, 1)
        labels.append(name)
        values.append(hours)
        colours.append(RED if hours > 0 else GREEN)
        rows.append([name, hours])
    late = sum(1 for v in values if v > 0)
    return {
        "kind": "bar",
        "x_time": False,
        "horizontal": True,
        "labels": labels,
        "datasets": [{"label": _("hours late (negative: ahead)"), "data": values, "color": colours}]
        if values
        else [],
        "y_label": _("hours late (negative: ahead)"),
        "x_label": "",
        "summary": _(
            "{late} of {count} planned open needs are forecast late.", late=late, count=len(values)
        ),
        "table": {"columns": [_("need"), _("hours late (negative: ahead)")], "rows": rows},
    }


def utilisation_spec(session: Session, *, actor: Actor, now: datetime) -> ChartSpec:
    rows = site_utilisation(session, actor=actor, now=now)
    past_label, next_label = _("printing, last 24 h"), _("planned, next 24 h")
    return {
        "kind": "bar",
        "x_time": False,
        "labels": [site.name for site, _past, _next in rows],
        "datasets": [
            {"label": past_label, "data": [round(p * 100) for _s, p, _n in rows], "color": BLUE},
            {"label": next_label, "data": [round(n * 100) for _s, _p, n in rows], "color": ORANGE},
        ]
        if rows
        else [],
        "y_label": _("% of printer time"),
        "y_max": 100,
        "x_label": "",
        "summary": _("Printer utilisation per site, in % of printer time."),
        "table": {
            "columns": [_("site"), past_label, next_label],
            "rows": [[site.name, round(p * 100), round(n * 100)] for site, p, n in rows],
        },
    }


def waste_spec(entries: Iterable[WasteEntry]) -> ChartSpec:
    """Grams of waste by kind, stacked by material."""
    grams: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for entry in entries:
        grams[entry.material_key][entry.kind.value] += entry.mass_g
    kinds = sorted({kind for per_kind in grams.values() for kind in per_kind})
    materials = sorted(grams)
    datasets = [
        {
            "label": material,
            "data": [round(grams[material].get(kind, 0.0), 1) for kind in kinds],
            "color": PALETTE[index % len(PALETTE)],
            "stack": "waste",
        }
        for index, material in enumerate(materials)
    ]
    total = sum(sum(per_kind.values()) for per_kind in grams.values())
    return {
        "kind": "bar",
        "x_time": False,
        "stacked": True,
        "labels": [label("waste", kind) for kind in kinds],
        "datasets": datasets,
        "y_label": _("grams"),
        "x_label": "",
        "summary": _("Waste by kind and material: {grams} g in all.", grams=round(total)),
        "table": {
            "columns": [_("kind"), *materials],
            "rows": [
                [label("waste", kind), *(round(grams[m].get(kind, 0.0), 1) for m in materials)]
                for kind in kinds
            ],
        },
    }
