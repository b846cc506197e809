"""Every route of the live route table, asked by every role, answers what the access
rules say: anonymous, coordinator, the operator of site A, the operator of site B acting
on site A's objects, the auditor (who reads and never writes) and the admin.

The matrix below is checked against ``app.routes`` first: a route added without its row
(or a row left for a route that is gone) fails the test, so no route escapes. Each cell
runs on a fresh copy of the same world (the SQLite file is restored between requests),
so an answer never depends on the cell before it. A refusal must also change nothing:
row counts, job states and the audit head are compared with the world's.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from api.app import create_app
from core.db import Base
from core.runtime import Runtime, set_runtime
from printers.simulator.fleet import SimulatedFleet, serve_in_thread
from scheduler.models import Job
from tests.fixtures.database import make_settings
from tests.trust.world import PASSWORD, ROLES, World, build_world, new_name, sign_in_pages

pytestmark = pytest.mark.slow

LOGIN = 0  # a page redirecting an anonymous visitor to the sign-in page (303 to /login)
DENIED = frozenset({403, 404})  # refused, or hidden: another site's object is not visible
SIGNED_IN = ("coordinator", "operator", "other_operator", "auditor", "admin")

Expect = dict[str, frozenset[int]]
Body = Callable[[World], dict[str, Any]] | None


def everyone(ok: int) -> Expect:
    """Any signed-in user (operators see their own sites' part of lists)."""
    return {"anonymous": frozenset({401}), **{r: frozenset({ok}) for r in SIGNED_IN}}


def only(ok: int, *roles: str, denied: frozenset[int] = frozenset({403})) -> Expect:
    """The listed roles (and the admin); everyone else is refused."""
    allowed = {*roles, "admin"}
    expect = {r: frozenset({ok}) if r in allowed else denied for r in SIGNED_IN}
    return {"anonymous": frozenset({401}), **expect}


def site_object(
    ok: int, *also: str, others: frozenset[int] = DENIED, denied: frozenset[int] = frozenset({403})
) -> Expect:
    """An object of site A: its operator and the admin (plus ``also``) act on it; the
    operator of site B is refused or does not see it; other roles are refused."""
    expect = only(ok, "operator", *also, denied=denied)
    expect["other_operator"] = others
    return expect


def visible(ok: int = 200) -> Expect:
    """Reading an object of site A: everyone but the operator of site B."""
    expect = everyone(ok)
    expect["other_operator"] = DENIED
    return expect


def page(expect: Expect) -> Expect:
    """The same rule for a page: an anonymous visitor is sent to the sign-in page."""
    return {**expect, "anonymous": frozenset({LOGIN})}


@dataclass(frozen=True)
class Case:
    expect: Expect
    json: Body = None
    form: Body = None
    query: Body = None
    printing: bool = False  # needs the simulated print in flight (pause, resume, cancel)
    upload: bool = False


API = "/api/v1"
NOW = "2026-01-01T00:00:00+00:00"
LATER = "2027-01-01T00:00:00+00:00"


def _credentials(world: World) -> dict[str, Any]:
    return {"username": "someone", "password": PASSWORD}


def _printer_body(number: int) -> Callable[[World], dict[str, Any]]:
    def body(world: World) -> dict[str, Any]:
        address = world.simulator.address(number)
        return {
            "site_id": str(world.ids["site"]),
            "name": new_name("P"),
            "driver": "simulator",
            "base_url": address.base_url,
            "api_key": address.api_key,
            "profile_key": "prusa-mk3s",
        }

    return body


def _need_body(world: World) -> dict[str, Any]:
    return {
        "part_id": str(world.ids["part"]),
        "quantity": 2,
        "due_at": LATER,
        "delivery_point_id": str(world.ids["point"]),
    }


S303 = frozenset({303})
# A page form shows a refusal in the form itself (422), like any other rule it breaks.
FORM = frozenset({422})
READER = only(200, "coordinator", "auditor")  # the network pages: needs, plan, map, stats
AUDITOR = only(200, "auditor")


def _need_form(world: World) -> dict[str, Any]:
    return {
        "part_id": str(world.ids["part"]),
        "quantity": "2",
        "priority": "3",
        "due_at": "2026-12-24T12:00",
        "point_choice": "existing",
        "delivery_point_id": str(world.ids["point"]),
    }


def _csv_form(world: World) -> dict[str, Any]:
    return {"csv": "part,quantity,due,delivery_point\n"}


def _printer_form(number: int) -> Callable[[World], dict[str, Any]]:
    def form(world: World) -> dict[str, Any]:
        body = _printer_body(number)(world)
        return {k: v for k, v in body.items() if k != "site_id"}

    return form


MATRIX: dict[tuple[str, str], Case] = {
    # --- auth and users
    ("POST", f"{API}/auth/token"): Case(
        {"anonymous": frozenset({401}), **{r: frozenset({201}) for r in SIGNED_IN}},
        json=_credentials,
    ),
    ("DELETE", f"{API}/auth/token"): Case(everyone(204)),
    ("GET", f"{API}/me"): Case(everyone(200)),
    ("GET", f"{API}/users"): Case(only(200)),
    ("POST", f"{API}/users"): Case(
        only(201),
        json=lambda w: {"username": new_name("u"), "password": PASSWORD, "role": "auditor"},
    ),
    ("GET", f"{API}/users/{{user}}"): Case(only(200)),
    # --- sites and printers
    ("GET", f"{API}/sites"): Case(everyone(200)),
    ("POST", f"{API}/sites"): Case(
        only(201), json=lambda w: {"name": new_name("site"), "lat": 49.4, "lon": 2.8}
    ),
    ("GET", f"{API}/sites/{{site}}"): Case(everyone(200)),
    ("GET", f"{API}/printers"): Case(everyone(200)),
    ("POST", f"{API}/printers"): Case(
        site_object(201, others=frozenset({403})), json=_printer_body(4)
    ),
    ("GET", f"{API}/printers/{{printer}}"): Case(visible()),
    ("POST", f"{API}/printers/{{printer}}/material"): Case(
        site_object(200), json=lambda w: {"material_key": "PLA", "remaining_g": 800}
    ),
    ("POST", f"{API}/printers/{{printer}}/cleared"): Case(site_object(200)),
    # --- catalogue
    ("GET", f"{API}/materials"): Case(everyone(200)),
    ("GET", f"{API}/printer-profiles"): Case(everyone(200)),
    ("GET", f"{API}/parts"): Case(everyone(200)),
    ("POST", f"{API}/parts"): Case(
        only(201, "coordinator"), json=lambda w: {"name": new_name("part")}
    ),
    ("GET", f"{API}/parts/{{part}}"): Case(everyone(200)),
    ("POST", f"{API}/parts/{{part}}/versions"): Case(only(201, "coordinator"), upload=True),
    ("POST", f"{API}/design-versions/{{draft}}/approve"): Case(only(200)),
    ("GET", f"{API}/design-versions/{{version}}"): Case(everyone(200)),
    # --- needs, jobs, plans
    ("GET", f"{API}/delivery-points"): Case(everyone(200)),
    ("POST", f"{API}/delivery-points"): Case(
        only(201, "coordinator"), json=lambda w: {"name": new_name("H"), "lat": 49.4, "lon": 2.8}
    ),
    ("GET", f"{API}/needs"): Case(everyone(200)),
    ("POST", f"{API}/needs"): Case(only(201, "coordinator"), json=_need_body),
    ("GET", f"{API}/needs/{{need}}"): Case(everyone(200)),
    ("PATCH", f"{API}/needs/{{need}}"): Case(
        only(200, "coordinator"), json=lambda w: {"priority": 5}
    ),
    ("GET", f"{API}/jobs"): Case(everyone(200)),
    ("GET", f"{API}/jobs/{{job_planned}}"): Case(visible()),
    ("POST", f"{API}/jobs/{{job_printing}}/pause"): Case(site_object(200), printing=True),
    ("POST", f"{API}/jobs/{{job_printing}}/resume"): Case(site_object(200), printing=True),
    ("POST", f"{API}/jobs/{{job_printing}}/cancel"): Case(
        site_object(200), json=lambda w: {"reason": "warping"}, printing=True
    ),
    ("POST", f"{API}/jobs/{{job_planned}}/accept"): Case(site_object(200)),
    ("POST", f"{API}/jobs/{{job_planned}}/refuse"): Case(
        site_object(200), json=lambda w: {"reason": "no PETG here"}
    ),
    ("POST", f"{API}/plans"): Case(only(202, "coordinator")),
    ("GET", f"{API}/plans/latest"): Case(everyone(200)),
    # --- quality
    ("GET", f"{API}/design-versions/{{version}}/quality-plans"): Case(everyone(200)),
    ("POST", f"{API}/design-versions/{{version}}/quality-plans"): Case(
        only(201, "coordinator"),
        json=lambda w: {
            "standard": "EN 166:2001",
            "checks": [{"key": "edges", "kind": "visual", "label": "No sharp edge"}],
        },
    ),
    ("GET", f"{API}/jobs/{{job_printed}}/inspection-plan"): Case(visible()),
    ("GET", f"{API}/inspection-plan"): Case(
        visible(), query=lambda w: {"job_id": str(w.ids["job_printed"])}
    ),
    ("POST", f"{API}/jobs/{{job_printed}}/inspections"): Case(
        site_object(201), json=lambda w: {"defective_count": 0}
    ),
    ("POST", f"{API}/inspections"): Case(
        site_object(201),
        json=lambda w: {"defective_count": 0, "job_ids": [str(w.ids["job_printed"])]},
    ),
    ("GET", f"{API}/jobs/{{job_passed}}/inspections"): Case(visible()),
    ("GET", f"{API}/inspections/{{inspection}}"): Case(visible()),
    # Allowed to coordinators, but sampling was never discontinued here: 409 by state.
    ("POST", f"{API}/sampling/resumptions"): Case(
        only(409, "coordinator"),
        json=lambda w: {
            "design_version_id": str(w.ids["version"]),
            "site_id": str(w.ids["site"]),
            "corrective_action": "nozzle replaced",
        },
    ),
    ("GET", f"{API}/non-conformities"): Case(everyone(200)),
    ("GET", f"{API}/non-conformities/{{nc_pending}}"): Case(visible()),
    ("POST", f"{API}/non-conformities/{{nc_pending}}/disposition"): Case(
        site_object(200, "coordinator"), json=lambda w: {"disposition": "use_as_is"}
    ),
    ("POST", f"{API}/non-conformities/{{nc_as_is}}/approval"): Case(
        only(200, "coordinator"), json=lambda w: {"note": "fit checked"}
    ),
    ("POST", f"{API}/non-conformities/{{nc_reprint}}/closure"): Case(
        site_object(200, "coordinator"), json=lambda w: {"note": "nozzle replaced"}
    ),
    ("GET", f"{API}/audit"): Case(only(200, "auditor")),
    ("GET", f"{API}/audit/verify"): Case(only(200, "auditor")),
    # --- deliveries, traceability, exports
    ("POST", f"{API}/needs/{{need_passed}}/deliveries"): Case(
        # The operator of site B has no passed plate of this need to hand over: 409.
        site_object(201, "coordinator", others=frozenset({403, 404, 409})),
        json=lambda w: {"recipient": "Pharmacie"},
    ),
    ("GET", f"{API}/deliveries"): Case(everyone(200)),
    ("GET", f"{API}/deliveries/{{delivery}}/trace"): Case(visible()),
    ("GET", f"{API}/jobs/{{job_passed}}/trace"): Case(visible()),
    ("GET", f"{API}/recall"): Case(
        everyone(200), query=lambda w: {"design_version_id": str(w.ids["version"])}
    ),
    ("GET", f"{API}/deliveries/{{delivery}}/certificate"): Case(visible()),
    ("GET", f"{API}/deliveries/{{delivery}}/certificate.pdf"): Case(visible()),
    ("GET", f"{API}/deliveries/{{delivery}}/certificate/verification"): Case(visible()),
    ("POST", f"{API}/certificates/verification"): Case(everyone(200), json=lambda w: w.certificate),
    ("GET", f"{API}/needs/{{need_passed}}/cost-of-quality"): Case(visible()),
    ("GET", f"{API}/exports"): Case(everyone(200), query=lambda w: {"since": NOW, "until": LATER}),
    # The audit trail is the one export kept to auditors and admins.
    ("GET", f"{API}/exports/audit"): Case(
        only(200, "auditor"), query=lambda w: {"since": NOW, "until": LATER}
    ),
    # --- waste and recycling
    ("GET", f"{API}/waste"): Case(everyone(200)),
    ("POST", f"{API}/waste"): Case(
        site_object(201, others=frozenset({403})),
        json=lambda w: {
            "site_id": str(w.ids["site"]),
            "material_key": "PLA",
            "mass_g": 12.5,
            "kind": "purge",
        },
    ),
    ("GET", f"{API}/recycling-batches"): Case(everyone(200)),
    ("POST", f"{API}/recycling-batches"): Case(
        site_object(201, others=frozenset({403})),
        json=lambda w: {"material_key": "PLA", "site_id": str(w.ids["site"])},
    ),
    ("GET", f"{API}/recycling-batches/{{batch}}"): Case(visible()),
    ("GET", f"{API}/recycling-batches/{{batch}}/entries"): Case(visible()),
    ("POST", f"{API}/recycling-batches/{{batch}}/entries"): Case(
        site_object(200), json=lambda w: {"entry_ids": [str(w.ids["waste"])]}
    ),
    ("POST", f"{API}/recycling-batches/{{batch}}/sent"): Case(site_object(200), json=lambda w: {}),
    ("POST", f"{API}/recycling-batches/{{batch_sent}}/return"): Case(
        site_object(200), json=lambda w: {"returned_mass_g": 10}
    ),
    ("GET", f"{API}/mass-balance"): Case(
        everyone(200), query=lambda w: {"since": NOW, "until": LATER}
    ),
    ("GET", "/healthz"): Case({r: frozenset({200}) for r in ROLES}),
    # --- pages (cookie session, CSRF token sent on every POST)
    ("GET", "/"): Case({"anonymous": frozenset({200}), **{r: frozenset({303}) for r in SIGNED_IN}}),
    ("GET", "/login"): Case(
        {"anonymous": frozenset({200}), **{r: frozenset({303}) for r in SIGNED_IN}}
    ),
    ("POST", "/login"): Case(
        {"anonymous": frozenset({422}), **{r: frozenset({303}) for r in SIGNED_IN}},
        form=_credentials,
    ),
    ("POST", "/logout"): Case({r: frozenset({303}) for r in ROLES}),
    ("POST", "/language"): Case(
        {r: frozenset({303}) for r in ROLES}, form=lambda w: {"lang": "en"}
    ),
    ("GET", "/needs"): Case(page(READER)),
    ("GET", "/needs/live"): Case(page(READER)),
    ("GET", "/needs/new"): Case(page(only(200, "coordinator"))),
    ("POST", "/needs/new"): Case(page(only(303, "coordinator")), form=_need_form),
    ("GET", "/places"): Case(page(only(200, "coordinator")), query=lambda w: {"q": "Compiègne"}),
    ("GET", "/needs/import"): Case(page(only(200, "coordinator"))),
    ("POST", "/needs/import"): Case(page(only(303, "coordinator")), form=_csv_form),
    ("GET", "/needs/{need}"): Case(page(READER)),
    ("GET", "/needs/{need}/live"): Case(page(READER)),
    ("GET", "/needs/{need}/progress.json"): Case(page(READER)),
    ("POST", "/needs/{need_passed}/deliver"): Case(
        page(site_object(303, "coordinator", others=frozenset({403, 404, 409}))),
        form=lambda w: {"recipient": "Pharmacie"},
    ),
    ("GET", "/plan"): Case(page(READER)),
    ("GET", "/plan/live"): Case(page(READER)),
    ("POST", "/plan/replan"): Case(page(only(303, "coordinator"))),
    ("GET", "/map"): Case(page(READER)),
    ("GET", "/map/network.json"): Case(page(READER)),
    ("GET", "/stats"): Case(page(READER)),
    ("GET", "/stats/progress.json"): Case(page(READER)),
    # An operator of a single site goes straight to that site's page.
    ("GET", "/sites"): Case(page({**everyone(200), "operator": S303, "other_operator": S303})),
    ("GET", "/sites/{site}"): Case(page(visible())),
    ("GET", "/sites/{site}/live"): Case(page(visible())),
    ("POST", "/jobs/{job_planned}/accept"): Case(page(site_object(303))),
    ("POST", "/jobs/{job_planned}/start"): Case(page(site_object(303, denied=DENIED))),
    ("GET", "/jobs/{job_planned}/refuse"): Case(page(visible())),
    ("POST", "/jobs/{job_planned}/refuse"): Case(
        page(site_object(303, denied=FORM)), form=lambda w: {"reason": "no PETG here"}
    ),
    ("POST", "/printers/{printer}/cleared"): Case(page(site_object(303))),
    ("GET", "/printers/{printer}/spool"): Case(page(visible())),
    ("POST", "/printers/{printer}/spool"): Case(
        page(site_object(303, denied=FORM)),
        form=lambda w: {"material_key": "PLA", "colour": "white", "remaining_g": "800"},
    ),
    ("GET", "/sites/{site}/printers/new"): Case(page(visible())),
    ("POST", "/sites/{site}/printers/new"): Case(
        page(site_object(303, denied=FORM)), form=_printer_form(4)
    ),
    ("GET", "/sites/{site}/waste"): Case(page(visible())),
    ("POST", "/sites/{site}/waste"): Case(
        page(site_object(303, denied=FORM)),
        form=lambda w: {"material_key": "PLA", "kind": "purge", "mass_g": "12.5"},
    ),
    ("GET", "/jobs/{job_printed}/inspect"): Case(page(visible())),
    # A preview of the verdict, computed and not stored: a read.
    ("POST", "/jobs/{job_printed}/inspect/verdict"): Case(page(visible())),
    ("POST", "/jobs/{job_printed}/inspect"): Case(
        page(site_object(303, denied=FORM)), form=lambda w: {"defective_count": "0"}
    ),
    ("GET", "/audit"): Case(page(AUDITOR)),
    ("GET", "/audit/deliveries/{delivery}"): Case(page(AUDITOR)),
    ("GET", "/audit/deliveries/{delivery}.csv"): Case(page(AUDITOR)),
    ("GET", "/audit/deliveries/{delivery}.json"): Case(page(AUDITOR)),
    ("GET", "/audit/jobs/{job_passed}"): Case(page(AUDITOR)),
    ("GET", "/audit/non-conformities"): Case(page(AUDITOR)),
    ("GET", "/audit/waste"): Case(page(AUDITOR)),
    ("GET", "/audit/waste/by-kind.json"): Case(page(AUDITOR)),
    ("GET", "/audit/waste/balance.json"): Case(page(AUDITOR)),
    ("GET", "/audit/chain"): Case(page(AUDITOR)),
    ("GET", "/audit/exports/all.json"): Case(
        page(AUDITOR), query=lambda w: {"since": "2026-01-01", "until": "2026-12-31"}
    ),
    ("GET", "/audit/exports/inspections.csv"): Case(
        page(AUDITOR), query=lambda w: {"since": "2026-01-01", "until": "2026-12-31"}
    ),
    ("GET", "/deliveries/{delivery}/certificate.pdf"): Case(page(visible())),
    ("GET", "/admin"): Case(page(only(200))),
    ("GET", "/admin/users"): Case(page(only(200))),
    ("POST", "/admin/users"): Case(
        page(only(303)),
        form=lambda w: {"username": new_name("u"), "password": PASSWORD, "role": "auditor"},
    ),
    ("GET", "/admin/sites"): Case(page(only(200))),
    ("POST", "/admin/sites"): Case(
        page(only(303)),
        form=lambda w: {"name": new_name("site"), "kind": "fablab", "lat": "49.4", "lon": "2.8"},
    ),
    ("GET", "/admin/catalog"): Case(page(only(200, "coordinator"))),
    ("POST", "/admin/catalog/versions"): Case(
        page(only(303, "coordinator")), form=lambda w: {"part_id": str(w.ids["part"])}, upload=True
    ),
    ("POST", "/admin/catalog/versions/{draft}/approve"): Case(page(only(303))),
}


def _route_key(method: str, path: str) -> tuple[str, str]:
    return method, path


def live_routes(app: Any) -> set[tuple[str, str]]:
    found = set()
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.original_route, APIRoute):
            continue  # the docs, the OpenAPI document and the static files
        assert context.path is not None
        assert context.methods is not None
        # The route table writes a typed parameter as {name:uuid}; the matrix as {name}.
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", context.path)
        for method in context.methods:
            found.add((method, path))
    return found


def matrix_paths() -> set[tuple[str, str]]:
    """The matrix's rows as route templates (our placeholders name world objects)."""
    return {(m, template_of(p)) for m, p in MATRIX}


PLACEHOLDERS = {
    "user": "user_id",
    "site": "site_id",
    "printer": "printer_id",
    "part": "part_id",
    "draft": "version_id",
    "version": "version_id",
    "need": "need_id",
    "need_passed": "need_id",
    "job_planned": "job_id",
    "job_printing": "job_id",
    "job_printed": "job_id",
    "job_passed": "job_id",
    "inspection": "inspection_id",
    "nc_pending": "nc_id",
    "nc_as_is": "nc_id",
    "nc_reprint": "nc_id",
    "delivery": "delivery_id",
    "batch": "batch_id",
    "batch_sent": "batch_id",
    "job_printed}/inspect": "job_id}/inspect",
}


def template_of(path: str) -> str:
    for ours, theirs in PLACEHOLDERS.items():
        path = path.replace("{" + ours + "}", "{" + theirs + "}")
    for concrete, template in LITERALS.items():
        path = path.replace(concrete, template)
    return path


# Rows that name one value of a path parameter (the route is one, whatever the value).
LITERALS = {
    f"{API}/exports/audit": f"{API}/exports/{{kind}}",
    "/stats/progress.json": "/stats/{name}.json",
    "/audit/exports/inspections.csv": "/audit/exports/{kind}.csv",
}


# --- the world, once, and its snapshot -------------------------------------------------


@dataclass
class Stage:
    world: World
    client: TestClient
    db_file: Path
    snapshot: Path
    fingerprint: tuple[Any, ...]

    def restore(self) -> None:
        # The backup API writes the snapshot into the live file through SQLite itself, so
        # the app's pooled connections simply see the restored content.
        with sqlite3.connect(self.snapshot) as source, sqlite3.connect(self.db_file) as target:
            source.backup(target)


def fingerprint(runtime: Runtime) -> tuple[Any, ...]:
    """What a refused request must leave as it was: every table's row count, the job
    states and the audit trail's head."""
    with runtime.db.session() as session:
        counts = tuple(
            (table.name, session.scalar(select(func.count()).select_from(table)))
            for table in Base.metadata.sorted_tables
        )
        states = tuple(session.execute(select(Job.id, Job.state).order_by(Job.id)).all())
        head = session.execute(text("SELECT last_seq, last_hash FROM audit_head")).all()
    return counts, states, tuple(head)


@pytest.fixture(scope="module")
def stage(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    from catalog.service import seed_reference_data

    root = tmp_path_factory.mktemp("matrix")
    db_file = root / "distrifab.db"
    shutil.copyfile(sqlite_template, db_file)
    runtime = Runtime.from_settings(make_settings(root, f"sqlite:///{db_file}"))
    with runtime.db.session() as session:
        seed_reference_data(session)
        session.commit()
    set_runtime(runtime)
    # Slow prints: the job in flight is still printing when its cells run.
    fleet = SimulatedFleet(5, seed="matrix", time_scale=1.0)
    with serve_in_thread(fleet) as simulator:
        world = build_world(runtime, simulator)
        app = create_app(runtime, background=False)
        with TestClient(app) as client:
            sign_in_pages(world, client)
            runtime.db.engine.dispose()
            snapshot = root / "snapshot.db"
            # The online backup API: one consistent file, whatever is left in the WAL.
            with sqlite3.connect(db_file) as source, sqlite3.connect(snapshot) as target:
                source.backup(target)
            yield Stage(world, client, db_file, snapshot, fingerprint(runtime))
    set_runtime(None)
    runtime.db.dispose()


def _model() -> bytes:
    from catalog.demo_parts import ear_saver
    from tests.factories import stl_bytes

    return stl_bytes(ear_saver())


def request(stage: Stage, method: str, path: str, role: str, case: Case) -> tuple[int, str]:
    world, client = stage.world, stage.client
    url = path.format(**{k: v for k, v in world.ids.items()})
    kwargs: dict[str, Any] = {"follow_redirects": False}
    if case.query is not None:
        kwargs["params"] = case.query(world)
    client.cookies.clear()
    if path.startswith(API):
        kwargs["headers"] = world.api_headers(role)
        if case.json is not None:
            body = case.json(world)
            if path.endswith("/auth/token") and role != "anonymous":
                body = {"username": world.usernames[role], "password": PASSWORD}
            kwargs["json"] = body
        if case.upload:
            kwargs["files"] = {"model": ("ear-saver.stl", _model())}
    else:
        for name, value in world.cookies.get(role, {}).items():
            client.cookies.set(name, value)
        if method != "GET":
            form = case.form(world) if case.form is not None else {}
            if path == "/login" and role != "anonymous":
                form = {"username": world.usernames[role], "password": PASSWORD}
            kwargs["data"] = {**form, "csrf_token": world.csrf.get(role, "")}
            if case.upload:
                kwargs["files"] = {"model": ("ear-saver.stl", _model())}
    answer = client.request(method, url, **kwargs)
    status = answer.status_code
    if status == 303 and answer.headers.get("location", "").startswith("/login?"):
        status = LOGIN
    return status, answer.text[:300]


def test_the_matrix_covers_every_route(stage: Stage) -> None:
    live = live_routes(stage.client.app)
    rows = matrix_paths()
    assert not live - rows, f"routes without a row in the access matrix: {sorted(live - rows)}"
    assert not rows - live, f"rows for routes that no longer exist: {sorted(rows - live)}"


REFUSALS = frozenset({LOGIN, 401, 403, 404, 409, 422})


def test_every_role_on_every_route(stage: Stage) -> None:
    wrong: list[str] = []
    for (method, path), case in MATRIX.items():
        for role in ROLES:
            stage.restore()
            if case.printing:
                stage.world.restart_print()
            status, body = request(stage, method, path, role, case)
            expected = case.expect[role]
            if status not in expected:
                wrong.append(
                    f"{method} {path} as {role}: {status} not in {sorted(expected)}: {body}"
                )
                continue
            if status in REFUSALS and fingerprint(stage.world.runtime) != stage.fingerprint:
                wrong.append(f"{method} {path} as {role}: refused ({status}) but wrote something")
    assert not wrong, f"{len(wrong)} cells differ:\n" + "\n".join(wrong)
