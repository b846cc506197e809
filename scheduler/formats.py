"""Readers for problem files: the distrifab JSON schema (docs/problem-format.md)
and two public benchmark formats.

- ``rsijk``: Vallada and Ruiz (2011) unrelated parallel machines with machine-
  and sequence-dependent setup times (R|Sijk|Cmax). Line 1 ``n m ...``, line 2
  ignored, n lines of m pairs ``machine time``, a line ``SSD``, then per
  machine a line ``M<k>`` and an n x n matrix (row = previous job, column =
  next job). Time units are taken as seconds.
- ``orlib-wt``: OR-Library single-machine total weighted tardiness, a stream
  of instances, each n processing times, n weights, n due dates.

All readers raise :class:`core.errors.Invalid` with one readable sentence.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from core.errors import Invalid
from scheduler.types import (
    DeliveryPointSpec,
    JobSpec,
    Plan,
    PrinterSpec,
    Problem,
    SequenceSetups,
    SiteSpec,
)

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)  # benchmark files have no dates
BENCH_MATERIAL = "any"


def _ints(line: str, what: str) -> list[int]:
    try:
        return [int(v) for v in line.split()]
    except ValueError as exc:
        raise Invalid(f"{what}: expected integers, got {line.strip()[:40]!r}") from exc


def read_rsijk(text: str) -> Problem:
    """A Vallada-Ruiz instance as a Problem whose objective is the makespan."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) < 3:
        raise Invalid("rsijk: file too short")
    head = _ints(lines[0], "rsijk header")
    if len(head) < 2:
        raise Invalid("rsijk: the first line must give n and m")
    n, m = head[0], head[1]
    if n <= 0 or m <= 0:
        raise Invalid("rsijk: n and m must be positive")
    if len(lines) < 2 + n + 1 + m * (n + 1):
        raise Invalid(f"rsijk: expected {2 + n + 1 + m * (n + 1)} lines, got {len(lines)}")
    printer_ids = [f"M{k}" for k in range(m)]
    durations: list[dict[str, int]] = []
    for j in range(n):
        values = _ints(lines[2 + j], f"rsijk job {j}")
        if len(values) != 2 * m:
            raise Invalid(f"rsijk: job {j} has {len(values)} numbers, expected {2 * m}")
        durations.append({f"M{values[2 * i]}": values[2 * i + 1] for i in range(m)})
    at = 2 + n
    if lines[at].strip().upper() != "SSD":
        raise Invalid("rsijk: expected the line SSD after the processing times")
    at += 1
    matrices: dict[str, list[list[int]]] = {}
    for k in range(m):
        label = lines[at].strip()
        if label != f"M{k}":
            raise Invalid(f"rsijk: expected M{k}, got {label[:20]!r}")
        rows = [_ints(lines[at + 1 + r], f"rsijk setup M{k}") for r in range(n)]
        if any(len(r) != n for r in rows):
            raise Invalid(f"rsijk: setup matrix M{k} is not {n} x {n}")
        matrices[f"M{k}"] = rows
        at += n + 1
    max_setup = max(max(max(r) for r in mat) for mat in matrices.values())
    # Due dates beyond any semi-active schedule: the objective is the makespan.
    horizon = sum(max(d.values()) for d in durations) + n * max_setup + 1
    job_ids = tuple(f"J{j}" for j in range(n))
    jobs = tuple(
        JobSpec(
            job_ids[j],
            job_ids[j],
            durations[j],
            BENCH_MATERIAL,
            EPOCH,
            EPOCH + timedelta(seconds=horizon),
        )
        for j in range(n)
    )
    printers = tuple(PrinterSpec(pid, "bench", EPOCH, BENCH_MATERIAL, 0) for pid in printer_ids)
    return Problem(
        jobs=jobs,
        printers=printers,
        sites=(SiteSpec("bench", 0.0, 0.0),),
        now=EPOCH,
        setups=SequenceSetups(job_ids=job_ids, by_printer=matrices),
        stability_penalty_s=0.0,
    )


def count_orlib_wt(text: str, n: int = 40) -> int:
    return len(text.split()) // (3 * n)


def read_orlib_wt(text: str, instance: int, n: int = 40) -> Problem:
    """Instance ``instance`` (1-based) of an OR-Library wt file as a
    one-printer Problem; each job is its own need."""
    numbers = _ints(text, "orlib-wt")
    count = len(numbers) // (3 * n)
    if not 1 <= instance <= count:
        raise Invalid(f"orlib-wt: instance {instance} out of 1..{count}")
    block = numbers[(instance - 1) * 3 * n : instance * 3 * n]
    p, w, d = block[:n], block[n : 2 * n], block[2 * n :]
    jobs = tuple(
        JobSpec(
            f"J{j}",
            f"J{j}",
            {"M": p[j]},
            BENCH_MATERIAL,
            EPOCH,
            EPOCH + timedelta(seconds=d[j]),
            weight=float(w[j]),
        )
        for j in range(n)
    )
    return Problem(
        jobs=jobs,
        printers=(PrinterSpec("M", "bench", EPOCH, BENCH_MATERIAL, 0),),
        sites=(SiteSpec("bench", 0.0, 0.0),),
        now=EPOCH,
        stability_penalty_s=0.0,
    )


# --- distrifab problem JSON (docs/problem-format.md) -------------------------


def _field(obj: dict[str, Any], name: str, where: str) -> Any:
    if name not in obj:
        raise Invalid(f"{where}: missing {name!r}")
    return obj[name]


def _when(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise Invalid(f"{where}: expected an ISO 8601 datetime string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise Invalid(f"{where}: {value!r} is not an ISO 8601 datetime") from exc
    if parsed.tzinfo is None:
        raise Invalid(f"{where}: {value!r} has no timezone offset")
    return parsed


def _number(value: Any, where: str, *, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(f"{where}: expected a number")
    if integer and int(value) != value:
        raise Invalid(f"{where}: expected whole seconds")
    return value


def _objects(doc: dict[str, Any], name: str, *, required: bool = True) -> list[dict[str, Any]]:
    items = doc.get(name)
    if items is None and not required:
        return []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise Invalid(f"{name}: expected a list of objects")
    return items


def read_problem_json(text: str) -> Problem:
    """A Problem from the JSON schema of docs/problem-format.md."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Invalid(f"not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    if not isinstance(doc, dict):
        raise Invalid("the problem must be a JSON object")
    now = _when(_field(doc, "now", "problem"), "now")
    sites = []
    for k, s in enumerate(_objects(doc, "sites")):
        where = f"sites[{k}]"
        windows = s.get("open_windows")
        parsed_windows = None
        if windows is not None:
            if not isinstance(windows, list):
                raise Invalid(f"{where}.open_windows: expected a list of [start, end] pairs")
            parsed_windows = []
            for w, pair in enumerate(windows):
                if not isinstance(pair, list) or len(pair) != 2:
                    raise Invalid(f"{where}.open_windows[{w}]: expected [start, end]")
                a = _when(pair[0], f"{where}.open_windows[{w}][0]")
                b = _when(pair[1], f"{where}.open_windows[{w}][1]")
                if b < a:
                    raise Invalid(f"{where}.open_windows[{w}]: ends before it starts")
                parsed_windows.append((a, b))
        sites.append(
            SiteSpec(
                str(_field(s, "id", where)),
                float(_number(_field(s, "lat", where), f"{where}.lat")),
                float(_number(_field(s, "lon", where), f"{where}.lon")),
                open_windows=None if parsed_windows is None else tuple(parsed_windows),
            )
        )
    points = tuple(
        DeliveryPointSpec(
            str(_field(d, "id", f"delivery_points[{k}]")),
            float(_number(_field(d, "lat", f"delivery_points[{k}]"), f"delivery_points[{k}].lat")),
            float(_number(_field(d, "lon", f"delivery_points[{k}]"), f"delivery_points[{k}].lon")),
        )
        for k, d in enumerate(_objects(doc, "delivery_points", required=False))
    )
    printers = []
    for k, p in enumerate(_objects(doc, "printers")):
        where = f"printers[{k}]"
        material = p.get("material")
        printers.append(
            PrinterSpec(
                str(_field(p, "id", where)),
                str(_field(p, "site_id", where)),
                _when(p.get("available_at", doc["now"]), f"{where}.available_at"),
                None if material is None else str(material),
                int(
                    _number(
                        p.get("material_change_s", 900), f"{where}.material_change_s", integer=True
                    )
                ),
            )
        )
    jobs = [_job(j, f"jobs[{k}]", now) for k, j in enumerate(_objects(doc, "jobs"))]
    travel: dict[tuple[str, str], int] = {}
    for k, t in enumerate(_objects(doc, "travel_s", required=False)):
        where = f"travel_s[{k}]"
        travel[(str(_field(t, "site_id", where)), str(_field(t, "delivery_point_id", where)))] = (
            int(_number(_field(t, "seconds", where), f"{where}.seconds", integer=True))
        )
    speed = float(_number(doc.get("travel_speed_kmh", 40.0), "travel_speed_kmh"))
    factor = float(_number(doc.get("road_factor", 1.3), "road_factor"))
    if "road_graph" in doc:
        road = _road_travel(doc["road_graph"], sites, points, speed, factor)
        travel = {**road, **travel}
    setups = None
    if "setups" in doc:
        raw = doc["setups"]
        if not isinstance(raw, dict) or "job_ids" not in raw or "by_printer" not in raw:
            raise Invalid("setups: expected {job_ids: [...], by_printer: {printer: matrix}}")
        setups = SequenceSetups(
            job_ids=tuple(str(j) for j in raw["job_ids"]), by_printer=dict(raw["by_printer"])
        )
    return Problem(
        jobs=tuple(jobs),
        printers=tuple(printers),
        sites=tuple(sites),
        delivery_points=points,
        now=now,
        travel_s=travel,
        travel_speed_kmh=speed,
        road_factor=factor,
        setups=setups,
        stability_penalty_s=float(
            _number(doc.get("stability_penalty_s", 1800.0), "stability_penalty_s")
        ),
    )


def _job(j: dict[str, Any], where: str, now: datetime) -> JobSpec:
    durations = _field(j, "durations_s", where)
    if not isinstance(durations, dict):
        raise Invalid(f"{where}.durations_s: expected an object printer id -> seconds")
    frozen_start = j.get("frozen_start_at")
    previous_start = j.get("previous_start_at")
    if j.get("frozen_printer_id") is not None and frozen_start is None:
        raise Invalid(f"{where}: frozen_printer_id needs frozen_start_at")
    return JobSpec(
        str(_field(j, "id", where)),
        str(j.get("need_id", j["id"])),
        {
            str(pid): int(_number(v, f"{where}.durations_s.{pid}", integer=True))
            for pid, v in durations.items()
        },
        str(_field(j, "material", where)),
        _when(j.get("release_at", now.isoformat()), f"{where}.release_at"),
        _when(_field(j, "due_at", where), f"{where}.due_at"),
        weight=float(_number(j.get("weight", 1.0), f"{where}.weight")),
        delivery_point_id=j.get("delivery_point_id"),
        frozen_printer_id=j.get("frozen_printer_id"),
        frozen_start_at=None
        if frozen_start is None
        else _when(frozen_start, f"{where}.frozen_start_at"),
        previous_printer_id=j.get("previous_printer_id"),
        previous_start_at=None
        if previous_start is None
        else _when(previous_start, f"{where}.previous_start_at"),
    )


def _road_travel(
    raw: Any,
    sites: list[SiteSpec],
    points: tuple[DeliveryPointSpec, ...],
    speed: float,
    factor: float,
) -> dict[tuple[str, str], int]:
    import networkx as nx

    from scheduler.travel import road_travel_s

    if not isinstance(raw, dict):
        raise Invalid("road_graph: expected {nodes: [...], edges: [...]}")
    graph = nx.Graph()
    for k, node in enumerate(_objects(raw, "nodes")):
        where = f"road_graph.nodes[{k}]"
        graph.add_node(
            str(_field(node, "id", where)),
            lat=float(_number(_field(node, "lat", where), f"{where}.lat")),
            lon=float(_number(_field(node, "lon", where), f"{where}.lon")),
        )
    for k, edge in enumerate(_objects(raw, "edges")):
        where = f"road_graph.edges[{k}]"
        attrs = {
            key: float(_number(edge[key], f"{where}.{key}"))
            for key in ("length_km", "travel_s")
            if key in edge
        }
        graph.add_edge(str(_field(edge, "from", where)), str(_field(edge, "to", where)), **attrs)
    return road_travel_s(graph, sites, points, speed_kmh=speed, road_factor=factor)


def problem_to_json(problem: Problem) -> dict[str, Any]:
    """The JSON document :func:`read_problem_json` reads back (road graphs are
    written as their resulting ``travel_s`` pairs)."""
    iso = datetime.isoformat
    doc: dict[str, Any] = {
        "now": iso(problem.now),
        "travel_speed_kmh": problem.travel_speed_kmh,
        "road_factor": problem.road_factor,
        "stability_penalty_s": problem.stability_penalty_s,
        "sites": [
            {
                "id": s.id,
                "lat": s.lat,
                "lon": s.lon,
                "open_windows": None
                if s.open_windows is None
                else [[iso(a), iso(b)] for a, b in s.open_windows],
            }
            for s in problem.sites
        ],
        "delivery_points": [
            {"id": d.id, "lat": d.lat, "lon": d.lon} for d in problem.delivery_points
        ],
        "printers": [
            {
                "id": p.id,
                "site_id": p.site_id,
                "available_at": iso(p.available_at),
                "material": p.material,
                "material_change_s": p.material_change_s,
            }
            for p in problem.printers
        ],
        "jobs": [],
        "travel_s": [
            {"site_id": s, "delivery_point_id": d, "seconds": v}
            for (s, d), v in problem.travel_s.items()
        ],
    }
    for j in problem.jobs:
        item: dict[str, Any] = {
            "id": j.id,
            "need_id": j.need_id,
            "durations_s": dict(j.durations_s),
            "material": j.material,
            "release_at": iso(j.release_at),
            "due_at": iso(j.due_at),
            "weight": j.weight,
        }
        for key in ("delivery_point_id", "frozen_printer_id", "previous_printer_id"):
            if getattr(j, key) is not None:
                item[key] = getattr(j, key)
        for key in ("frozen_start_at", "previous_start_at"):
            if getattr(j, key) is not None:
                item[key] = iso(getattr(j, key))
        doc["jobs"].append(item)
    if problem.setups is not None:
        doc["setups"] = {
            "job_ids": list(problem.setups.job_ids),
            "by_printer": {k: [list(r) for r in v] for k, v in problem.setups.by_printer.items()},
        }
    return doc


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """The plan as the CLI prints it with ``--json``."""
    return {
        "status": str(plan.status),
        "method": plan.method,
        "objective": {
            "weighted_tardiness_s": plan.weighted_tardiness_s,
            "makespan_s": plan.makespan_s,
            "travel_s": plan.travel_s,
            "moved_jobs": plan.moved_jobs,
        },
        "bound": plan.bound,
        "seconds": plan.solve_time_s,
        "greedy_weighted_tardiness_s": plan.greedy_weighted_tardiness_s,
        "assignments": [
            {
                "job_id": a.job_id,
                "printer_id": a.printer_id,
                "start_at": a.start_at.isoformat(),
                "end_at": a.end_at.isoformat(),
                "removed_at": None if a.removed_at is None else a.removed_at.isoformat(),
                "delivered_at": a.delivered_at.isoformat(),
                "material_change": a.material_change,
                "travel_s": a.travel_s,
            }
            for a in plan.assignments
        ],
        "unassigned": [{"job_id": u.job_id, "reason": u.reason} for u in plan.unassigned],
    }
