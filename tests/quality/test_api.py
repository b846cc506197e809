"""The quality story through the HTTP API, each role doing its part: a coordinator writes the
plan, an operator inspects a lot and weighs waste, a coordinator delivers, an auditor reads
the certificate, traces, recalls, exports and balances, and can change nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.clock import utcnow
from core.identity import User, issue_token
from core.runtime import Runtime
from tests.quality.support import World, make_world, printed_job
from tests.quality.test_inspections import CHECKS

Headers = dict[str, str]


@pytest.fixture
def setup(runtime: Runtime) -> Iterator[tuple[TestClient, World, dict[str, Headers]]]:
    with runtime.db.session() as session:
        world = make_world(session)
        headers = {}
        for role in ("operator", "other_operator", "coordinator", "auditor"):
            user = session.get(User, getattr(world, role).user_id)
            assert user is not None
            token, _row = issue_token(session, user, ttl=timedelta(hours=1))
            headers[role] = {"Authorization": f"Bearer {token}"}
        session.commit()
    with TestClient(create_app(runtime, background=False)) as client:
        yield client, world, headers


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def test_the_quality_story_through_the_api(
    runtime: Runtime, setup: tuple[TestClient, World, dict[str, Headers]]
) -> None:
    client, world, as_ = setup
    api = "/api/v1"
    plan = ok(
        client.post(
            f"{api}/design-versions/{world.version.id}/quality-plans",
            json={"standard": "EN 166:2001", "aql": 2.5, "checks": CHECKS},
            headers=as_["coordinator"],
        ),
        201,
    )
    assert plan["revision"] == 1
    with runtime.db.session() as session:
        plates = [printed_job(session, world, copies=10) for _ in range(2)]
        rejected = printed_job(session, world, copies=4)
    lot = ok(
        client.get(
            f"{api}/inspection-plan",
            params=[("job_id", str(p.id)) for p in plates],
            headers=as_["operator"],
        )
    )
    assert (lot["lot_size"], lot["code_letter"], lot["sample_size"]) == (20, "C", 5)
    measurements = [
        {"sample": n, "check": c["key"], **value}
        for n in range(1, lot["sample_size"] + 1)
        for c, value in zip(
            CHECKS,
            ({"value": 180.6}, {"ok": True}, {"ok": True}, {"text": "IFU-visor v3"}),
            strict=True,
        )
    ]
    body = {"job_ids": [str(p.id) for p in plates], "measurements": measurements}
    ok(client.post(f"{api}/inspections", json=body, headers=as_["auditor"]), 403)
    inspection = ok(client.post(f"{api}/inspections", json=body, headers=as_["operator"]), 201)
    assert (inspection["verdict"], inspection["defective_count"]) == ("passed", 0)

    bad: dict[str, Any] = {"measurements": [], "disposition": "pending"}
    bad["measurements"] = [
        {**m, "value": 190.0} if m["check"] == "width" else m for m in measurements[:16]
    ]
    failed = ok(
        client.post(f"{api}/jobs/{rejected.id}/inspections", json=bad, headers=as_["operator"]),
        201,
    )
    assert failed["verdict"] == "rejected"
    [nc] = ok(client.get(f"{api}/non-conformities", headers=as_["operator"]))
    assert ok(client.get(f"{api}/non-conformities", headers=as_["other_operator"])) == []
    decided = ok(
        client.post(
            f"{api}/non-conformities/{nc['id']}/disposition",
            json={"disposition": "reprint"},
            headers=as_["operator"],
        )
    )
    assert decided["disposition"] == "reprint"

    delivery_body = {"recipient": "Urgences", "idempotency_key": "coord-delivery-0001"}
    delivery = ok(
        client.post(
            f"{api}/needs/{world.need.id}/deliveries",
            json=delivery_body,
            headers=as_["coordinator"],
        ),
        201,
    )
    again = ok(
        client.post(
            f"{api}/needs/{world.need.id}/deliveries",
            json=delivery_body,
            headers=as_["coordinator"],
        ),
        201,
    )
    assert again["id"] == delivery["id"]
    assert delivery["quantity"] == 20

    certificate = client.get(
        f"{api}/deliveries/{delivery['id']}/certificate", headers=as_["auditor"]
    )
    assert certificate.status_code == 200
    assert (
        hashlib.sha256(certificate.content).hexdigest()
        == certificate.headers["X-Certificate-SHA256"]
    )
    pdf = client.get(f"{api}/deliveries/{delivery['id']}/certificate.pdf", headers=as_["auditor"])
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    check = ok(
        client.get(
            f"{api}/deliveries/{delivery['id']}/certificate/verification", headers=as_["auditor"]
        )
    )
    assert check["ok"], check
    held = ok(
        client.post(
            f"{api}/certificates/verification", json=certificate.json(), headers=as_["auditor"]
        )
    )
    assert held["ok"]
    ok(
        client.get(f"{api}/deliveries/{delivery['id']}/certificate", headers=as_["other_operator"]),
        404,
    )

    trace = ok(client.get(f"{api}/deliveries/{delivery['id']}/trace", headers=as_["auditor"]))
    assert len(trace["plates"]) == 2
    recall = ok(
        client.get(f"{api}/recall", params={"lot_code": world.lot.lot_code}, headers=as_["auditor"])
    )
    assert recall["affected_quantity"] == 20
    window = {
        "since": (utcnow() - timedelta(hours=3)).isoformat(),
        "until": (utcnow() + timedelta(hours=1)).isoformat(),
    }
    csv_text = client.get(f"{api}/exports/traceability", params=window, headers=as_["auditor"])
    assert csv_text.headers["content-type"].startswith("text/csv")
    assert csv_text.text.count(delivery["id"]) == 2
    document = ok(client.get(f"{api}/exports", params=window, headers=as_["auditor"]))
    assert document["records"]["audit"]
    ok(client.get(f"{api}/exports/audit", params=window, headers=as_["operator"]), 403)
    naive = {"since": "2026-01-01T00:00:00", "until": window["until"]}
    ok(client.get(f"{api}/exports", params=naive, headers=as_["auditor"]), 422)

    entry = ok(
        client.post(
            f"{api}/waste",
            json={
                "site_id": str(world.site.id),
                "material_key": "PLA",
                "mass_g": 42.0,
                "kind": "spool_end",
            },
            headers=as_["operator"],
        ),
        201,
    )
    batch = ok(
        client.post(
            f"{api}/recycling-batches",
            json={"material_key": "PLA", "site_id": str(world.site.id)},
            headers=as_["operator"],
        ),
        201,
    )
    ledger = ok(client.get(f"{api}/waste", params={"unbatched": True}, headers=as_["operator"]))
    assert entry["id"] in {w["id"] for w in ledger}
    filled = ok(
        client.post(
            f"{api}/recycling-batches/{batch['id']}/entries",
            json={"entry_ids": [w["id"] for w in ledger]},
            headers=as_["operator"],
        )
    )
    assert filled["total_mass_g"] == 42.0 + 100.0  # spool end + the rejected plate
    ok(client.post(f"{api}/recycling-batches/{batch['id']}/sent", json={}, headers=as_["operator"]))
    back = ok(
        client.post(
            f"{api}/recycling-batches/{batch['id']}/return",
            json={"returned_mass_g": 120.0, "lot_code": "C2-PLA-API-1"},
            headers=as_["operator"],
        )
    )
    assert back["status"] == "returned"
    balance = ok(
        client.get(
            f"{api}/mass-balance",
            params={**window, "site_id": str(world.site.id)},
            headers=as_["auditor"],
        )
    )
    [row] = balance["rows"]
    assert row["waste_g"]["rejected_part"] == 100.0
    assert row["recycled_back_g"] == 120.0
    assert row["delivered_parts_g"] == 500.0
    ok(
        client.get(
            f"{api}/mass-balance",
            params={**window, "site_id": str(world.site.id)},
            headers=as_["other_operator"],
        ),
        404,
    )
    cost = ok(client.get(f"{api}/needs/{world.need.id}/cost-of-quality", headers=as_["auditor"]))
    assert (cost["lots_rejected"], cost["reprints"]) == (1, 1)


def test_problem_titles_are_french_when_asked(
    setup: tuple[TestClient, World, dict[str, Headers]],
) -> None:
    client, _world, as_ = setup
    response = client.get(
        "/api/v1/deliveries/8c4a1e5e-3f1e-4f8e-9d5a-2a7c1c0e9b11/trace",
        headers={**as_["auditor"], "Accept-Language": "fr"},
    )
    assert response.status_code == 404
    assert response.json()["title"] == "Introuvable"
