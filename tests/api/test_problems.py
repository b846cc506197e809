"""Every route answers bad input with problem+json and a clear message, never a 500,
and writes nothing when it refuses."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import func, select

from core.audit import AuditEntry
from core.db import Base
from tests.api.conftest import Api
from tests.routes import route_table

MISSING = str(uuid4())

# (method, path template, who, json body or None, expected status)
CASES: list[tuple[str, str, str, Any, int]] = [
    ("POST", "/auth/token", "anonymous", {"username": "nobody", "password": "wrong-password"}, 401),
    ("POST", "/auth/token", "anonymous", {"username": ""}, 422),
    ("DELETE", "/auth/token", "anonymous", None, 401),
    ("GET", "/me", "anonymous", None, 401),
    ("GET", "/users", "coordinator", None, 403),
    (
        "POST",
        "/users",
        "operator",
        {"username": "x", "password": "password-1", "role": "admin"},
        403,
    ),
    (
        "POST",
        "/users",
        "admin",
        {"username": "bad name!", "password": "password-1", "role": "admin"},
        422,
    ),
    (
        "POST",
        "/users",
        "admin",
        {"username": "op", "password": "password-1", "role": "operator"},
        422,
    ),
    ("GET", "/users/{missing}", "admin", None, 404),
    ("GET", "/sites", "anonymous", None, 401),
    ("POST", "/sites", "coordinator", {"name": "x", "lat": 1, "lon": 1}, 403),
    ("POST", "/sites", "admin", {"name": "x", "lat": 91, "lon": 1}, 422),
    (
        "POST",
        "/sites",
        "admin",
        {"name": "x", "lat": 1, "lon": 1, "opening_hours": {"mon": [["18:00", "09:00"]]}},
        422,
    ),
    ("GET", "/sites/{missing}", "coordinator", None, 404),
    ("GET", "/printers", "anonymous", None, 401),
    (
        "POST",
        "/printers",
        "other_operator",
        {
            "site_id": "{site}",
            "name": "P",
            "base_url": "http://127.0.0.1:9",
            "api_key": "k",
            "profile_key": "prusa-mk3s",
        },
        403,
    ),
    (
        "POST",
        "/printers",
        "operator",
        {
            "site_id": "{site}",
            "name": "P",
            "base_url": "ftp://x",
            "api_key": "k",
            "profile_key": "prusa-mk3s",
        },
        422,
    ),
    (
        "POST",
        "/printers",
        "operator",
        {
            "site_id": "{site}",
            "name": "P",
            "base_url": "http://127.0.0.1:9",
            "api_key": "k",
            "profile_key": "prusa-mk3s",
        },
        503,
    ),
    ("GET", "/printers/{missing}", "operator", None, 404),
    (
        "POST",
        "/printers/{missing}/material",
        "operator",
        {"material_key": "PLA", "remaining_g": 10},
        404,
    ),
    (
        "POST",
        "/printers/{missing}/material",
        "operator",
        {"material_key": "PLA", "remaining_g": -1},
        422,
    ),
    ("POST", "/printers/{missing}/cleared", "operator", None, 404),
    ("GET", "/materials", "anonymous", None, 401),
    ("GET", "/printer-profiles", "anonymous", None, 401),
    ("GET", "/parts", "anonymous", None, 401),
    ("POST", "/parts", "operator", {"name": "visor"}, 403),
    ("POST", "/parts", "coordinator", {"name": "visor", "default_material_key": "WOOD"}, 404),
    ("GET", "/parts/{missing}", "coordinator", None, 404),
    ("POST", "/parts/{missing}/versions", "coordinator", None, 422),
    ("POST", "/design-versions/{missing}/approve", "admin", None, 404),
    ("POST", "/design-versions/{missing}/approve", "coordinator", None, 403),
    ("GET", "/design-versions/{missing}", "coordinator", None, 404),
    ("GET", "/delivery-points", "anonymous", None, 401),
    ("POST", "/delivery-points", "operator", {"name": "CH", "lat": 49, "lon": 2}, 403),
    ("POST", "/delivery-points", "coordinator", {"name": "CH", "lat": 49}, 422),
    ("GET", "/needs", "anonymous", None, 401),
    (
        "POST",
        "/needs",
        "coordinator",
        {
            "part_id": "{missing}",
            "quantity": 0,
            "due_at": "2030-01-01T00:00:00Z",
            "delivery_point_id": "{missing}",
        },
        422,
    ),
    (
        "POST",
        "/needs",
        "coordinator",
        {
            "part_id": "{missing}",
            "quantity": 5,
            "due_at": "2030-01-01T00:00:00",
            "delivery_point_id": "{missing}",
        },
        422,
    ),
    (
        "POST",
        "/needs",
        "coordinator",
        {
            "part_id": "{missing}",
            "quantity": 5,
            "due_at": "2030-01-01T00:00:00Z",
            "delivery_point_id": "{missing}",
        },
        404,
    ),
    (
        "POST",
        "/needs",
        "operator",
        {
            "part_id": "{missing}",
            "quantity": 5,
            "due_at": "2030-01-01T00:00:00Z",
            "delivery_point_id": "{missing}",
        },
        403,
    ),
    ("GET", "/needs/{missing}", "coordinator", None, 404),
    ("PATCH", "/needs/{missing}", "coordinator", {"priority": 4}, 404),
    ("PATCH", "/needs/{missing}", "coordinator", {"priority": 9}, 422),
    ("PATCH", "/needs/{missing}", "operator", {"priority": 4}, 403),
    ("GET", "/jobs", "anonymous", None, 401),
    ("GET", "/jobs/{missing}", "coordinator", None, 404),
    ("POST", "/jobs/{missing}/accept", "operator", None, 404),
    ("POST", "/jobs/{missing}/refuse", "operator", {"reason": ""}, 422),
    ("POST", "/jobs/{missing}/refuse", "operator", {"reason": "maintenance"}, 404),
    ("POST", "/jobs/{missing}/pause", "operator", None, 404),
    ("POST", "/jobs/{missing}/resume", "operator", None, 404),
    ("POST", "/jobs/{missing}/cancel", "operator", {"reason": ""}, 422),
    ("POST", "/jobs/{missing}/cancel", "operator", {"reason": "warping"}, 404),
    ("POST", "/plans", "operator", None, 403),
    ("GET", "/plans/latest", "coordinator", None, 404),
    ("GET", "/jobs/{missing}/inspection-plan", "operator", None, 404),
    ("POST", "/jobs/{missing}/inspections", "operator", {"defective_count": -1}, 422),
    ("POST", "/jobs/{missing}/inspections", "operator", {"defective_count": 0}, 404),
    ("GET", "/jobs/{missing}/inspections", "operator", None, 404),
    ("POST", "/needs/{missing}/deliveries", "coordinator", {}, 404),
    ("POST", "/needs/{missing}/deliveries", "auditor", {}, 403),
    ("GET", "/waste", "anonymous", None, 401),
    (
        "POST",
        "/waste",
        "other_operator",
        {"site_id": "{site}", "material_key": "PLA", "mass_g": 10, "kind": "purge"},
        403,
    ),
    (
        "POST",
        "/waste",
        "operator",
        {"site_id": "{site}", "material_key": "PLA", "mass_g": 0, "kind": "purge"},
        422,
    ),
    (
        "POST",
        "/waste",
        "operator",
        {"site_id": "{site}", "material_key": "PLA", "mass_g": 5, "kind": "glitter"},
        422,
    ),
    ("GET", "/audit", "operator", None, 403),
    ("GET", "/audit/verify", "coordinator", None, 403),
    # quality plans, lot inspections, non-conformities
    ("GET", "/design-versions/{missing}/quality-plans", "auditor", None, 404),
    ("POST", "/design-versions/{missing}/quality-plans", "operator", {"standard": "EN 166"}, 403),
    (
        "POST",
        "/design-versions/{missing}/quality-plans",
        "coordinator",
        {"standard": "EN 166", "checks": [{"key": "w", "kind": "smell"}]},
        422,
    ),
    (
        "POST",
        "/design-versions/{missing}/quality-plans",
        "coordinator",
        {"standard": "EN 166"},
        404,
    ),
    ("GET", "/inspection-plan", "operator", None, 422),
    ("POST", "/inspections", "operator", {"job_ids": []}, 422),
    (
        "POST",
        "/inspections",
        "operator",
        {"job_ids": ["00000000-0000-4000-8000-000000000000"], "defective_count": 0},
        404,
    ),
    (
        "POST",
        "/inspections",
        "auditor",
        {"job_ids": ["00000000-0000-4000-8000-000000000000"], "defective_count": 0},
        403,
    ),
    (
        "POST",
        "/jobs/{missing}/inspections",
        "operator",
        {"defective_count": 0, "measurements": [{"sample": 0, "check": "w"}]},
        422,
    ),
    ("GET", "/inspections/{missing}", "auditor", None, 404),
    (
        "POST",
        "/sampling/resumptions",
        "operator",
        {"design_version_id": "{missing}", "site_id": "{site}", "corrective_action": "nozzle"},
        403,
    ),
    (
        "POST",
        "/sampling/resumptions",
        "coordinator",
        {"design_version_id": "{missing}", "site_id": "{missing}", "corrective_action": "nozzle"},
        404,
    ),
    ("GET", "/non-conformities", "anonymous", None, 401),
    ("GET", "/non-conformities/{missing}", "auditor", None, 404),
    ("POST", "/non-conformities/{missing}/disposition", "operator", {"disposition": "burn"}, 422),
    ("POST", "/non-conformities/{missing}/disposition", "operator", {"disposition": "scrap"}, 404),
    ("POST", "/non-conformities/{missing}/disposition", "auditor", {"disposition": "scrap"}, 403),
    ("POST", "/non-conformities/{missing}/approval", "operator", {}, 403),
    ("POST", "/non-conformities/{missing}/approval", "coordinator", {}, 404),
    ("POST", "/non-conformities/{missing}/closure", "operator", {"note": ""}, 422),
    ("POST", "/non-conformities/{missing}/closure", "operator", {"note": "nozzle changed"}, 404),
    # deliveries, certificates, traceability, exports
    ("POST", "/needs/{missing}/deliveries", "coordinator", {"job_ids": []}, 422),
    ("GET", "/deliveries", "anonymous", None, 401),
    ("GET", "/deliveries/{missing}/trace", "auditor", None, 404),
    ("GET", "/jobs/{missing}/trace", "auditor", None, 404),
    ("GET", "/recall", "auditor", None, 422),
    ("GET", "/deliveries/{missing}/certificate", "auditor", None, 404),
    ("GET", "/deliveries/{missing}/certificate.pdf", "auditor", None, 404),
    ("GET", "/deliveries/{missing}/certificate/verification", "auditor", None, 404),
    ("POST", "/certificates/verification", "auditor", {"number": "DF-20260101-00000000"}, 404),
    ("POST", "/certificates/verification", "auditor", {"plates": []}, 422),
    ("GET", "/needs/{missing}/cost-of-quality", "auditor", None, 404),
    ("GET", "/exports", "auditor", None, 422),
    ("GET", "/exports/{missing}", "auditor", None, 422),
    # recycling and the mass balance
    ("GET", "/recycling-batches", "anonymous", None, 401),
    ("POST", "/recycling-batches", "auditor", {"material_key": "PLA"}, 403),
    ("POST", "/recycling-batches", "coordinator", {"material_key": "WOOD"}, 404),
    (
        "POST",
        "/recycling-batches",
        "operator",
        {"material_key": "PLA", "site_id": "{site}", "waste_code": "7"},
        422,
    ),
    (
        "POST",
        "/recycling-batches",
        "other_operator",
        {"material_key": "PLA", "site_id": "{site}"},
        403,
    ),
    ("GET", "/recycling-batches/{missing}", "auditor", None, 404),
    ("GET", "/recycling-batches/{missing}/entries", "auditor", None, 404),
    ("POST", "/recycling-batches/{missing}/entries", "operator", {"entry_ids": []}, 422),
    (
        "POST",
        "/recycling-batches/{missing}/entries",
        "operator",
        {"entry_ids": ["00000000-0000-4000-8000-000000000000"]},
        404,
    ),
    ("POST", "/recycling-batches/{missing}/sent", "operator", {}, 404),
    ("POST", "/recycling-batches/{missing}/return", "operator", {"returned_mass_g": -1}, 422),
    ("POST", "/recycling-batches/{missing}/return", "operator", {"returned_mass_g": 10}, 404),
    ("GET", "/mass-balance", "auditor", None, 422),
]


def fill(value: Any, api: Api) -> Any:
    if isinstance(value, str):
        return value.replace("{missing}", MISSING).replace("{site}", str(api.site.id))
    if isinstance(value, dict):
        return {k: fill(v, api) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, api) for v in value]
    return value


def row_counts(api: Api) -> dict[str, int]:
    with api.runtime.db.session() as session:
        return {
            table.name: session.scalar(select(func.count()).select_from(table)) or 0
            for table in Base.metadata.sorted_tables
        } | {"audit": session.scalar(select(func.count(AuditEntry.seq))) or 0}


@pytest.mark.parametrize(
    ("method", "path", "who", "body", "expected"),
    CASES,
    ids=[f"{c[0]} {c[1]} {c[2]} {c[4]}" for c in CASES],
)
def test_bad_input_gets_a_problem_and_changes_nothing(
    api: Api, method: str, path: str, who: str, body: Any, expected: int
) -> None:
    before = row_counts(api)
    response = api.client.request(
        method, "/api/v1" + fill(path, api), json=fill(body, api), headers=api.as_(who)
    )
    assert response.status_code == expected, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == expected
    assert problem["type"].startswith("https://distrifab.org/problems/")
    assert problem["title"]
    assert len(problem["detail"]) > 5
    assert row_counts(api) == before


def test_every_api_route_has_a_bad_input_case(api: Api) -> None:
    covered = {(m, p) for m, p, *_ in CASES}
    routes = {
        (entry.method, entry.template(prefix="/api/v1"))
        for entry in route_table(api.client.app)  # type: ignore[arg-type]
        if entry.path.startswith("/api/v1/")
        and entry.method not in {"HEAD", "OPTIONS"}
        and not entry.path.startswith(("/api/v1/openapi", "/api/v1/docs"))
    }
    # The walk itself must see the routes, or this test would pass on nothing.
    assert ("POST", "/needs") in routes
    assert len(routes) >= 60
    missing = sorted(routes - covered)
    assert not missing, f"routes without a bad-input test: {missing}"


def test_malformed_json_is_a_400(api: Api) -> None:
    response = api.client.post(
        "/api/v1/needs",
        content=b"{not json",
        headers={**api.as_("coordinator"), "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "the request body is not valid JSON"


def test_titles_follow_the_language(api: Api) -> None:
    response = api.client.get("/api/v1/me", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert response.status_code == 401
    assert response.json()["title"] == "Authentification requise"
