"""The inspection sheet against a quality plan, the auditor's exports and the data the
maps and plots draw from."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from core.clock import utcnow
from quality.models import Inspection, Verdict
from quality.plans import revise_plan
from tests.quality.support import World, make_world, printed_job
from tests.web.conftest import PASSWORD, Pages, csrf_of, planned_job, post_form

ROOT = Path(__file__).resolve().parents[2]
CHECKS: list[dict[str, Any]] = [
    {
        "key": "width",
        "kind": "dimensional",
        "label": "Width",
        "nominal_mm": 181.0,
        "tolerance_mm": 0.5,
    },
    {"key": "edges", "kind": "visual", "label": "No sharp edge"},
]


def sign_in(pages: Pages, username: str) -> TestClient:
    client = pages.client()
    response = client.post(
        "/login",
        data={
            "username": username,
            "password": PASSWORD,
            "csrf_token": csrf_of(client.get("/login").text),
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    return client


def planned_world(pages: Pages) -> tuple[World, str]:
    with pages.runtime.db.session() as session:
        world = make_world(session, copies_per_plate=4)
        revise_plan(
            session,
            design_version_id=world.version.id,
            actor=world.coordinator,
            standard="EN 166 (adapted, April 2020)",
            checks=CHECKS,
        )
        session.commit()
        job = printed_job(session, world)
        return world, str(job.id)


def sheet(**widths: str) -> dict[str, str]:
    return {f"s{n}-width": value for n, value in ((int(k[1:]), v) for k, v in widths.items())}


def test_the_inspection_sheet_follows_the_quality_plan(pages: Pages) -> None:
    world, job_id = planned_world(pages)
    client = sign_in(pages, world.operator.username)
    page = client.get(f"/jobs/{job_id}/inspect")
    assert page.status_code == 200
    assert '<dd id="sample-size">4</dd>' in page.text  # a lot of 4: all 4 drawn (ISO 2859-1, A)
    assert page.text.count('inputmode="decimal"') == 4  # one width per sampled part
    assert "181.0 ± 0.5 mm" in page.text
    assert "EN 166 (adapted, April 2020)" in page.text

    token = csrf_of(page.text)
    preview = client.post(
        f"/jobs/{job_id}/inspect/verdict",
        data={"csrf_token": token, **sheet(s1="181.2", s2="183.0", s3="180.9", s4="181")},
        headers={"HX-Request": "true"},
    )
    assert "1 defective in the sample." in preview.text
    assert "The lot is rejected" in preview.text  # Ac 0: one out of tolerance rejects
    incomplete = client.post(
        f"/jobs/{job_id}/inspect/verdict",
        data={"csrf_token": token, **sheet(s1="181.2")},
        headers={"HX-Request": "true"},
    )
    assert "Some results are still missing." in incomplete.text

    missing = post_form(
        client,
        f"/jobs/{job_id}/inspect",
        f"/jobs/{job_id}/inspect",
        {**sheet(s1="181,2", s2="180.8", s4="181.1"), "note": "bavures légères"},
    )
    assert missing.status_code == 422
    assert 'id="e-s3-width"' in missing.text
    assert 'value="181,2"' in missing.text  # kept as typed
    assert "bavures légères" in missing.text
    with pages.runtime.db.session() as session:
        assert session.scalar(select(Inspection.id)) is None

    recorded = post_form(
        client,
        f"/jobs/{job_id}/inspect",
        f"/jobs/{job_id}/inspect",
        sheet(s1="181,2", s2="180.8", s3="180.6", s4="181.1"),
    )
    assert recorded.status_code == 303
    with pages.runtime.db.session() as session:
        inspection = session.scalars(select(Inspection)).one()
    assert inspection.verdict is Verdict.PASSED
    assert inspection.sample_size == 4
    widths = sorted(m["value"] for m in inspection.measurements if m["check"] == "width")
    assert widths == [180.6, 180.8, 181.1, 181.2]
    assert all(m["ok"] for m in inspection.measurements)


def test_the_other_sites_operator_cannot_inspect(pages: Pages) -> None:
    world, job_id = planned_world(pages)
    client = sign_in(pages, world.other_operator.username)
    assert client.get(f"/jobs/{job_id}/inspect").status_code == 404
    token = csrf_of(client.get("/sites").text)
    refused = client.post(f"/jobs/{job_id}/inspect", data={"csrf_token": token, **sheet(s1="181")})
    assert refused.status_code == 404


def test_the_auditor_exports_a_period(pages: Pages) -> None:
    world, _job_id = planned_world(pages)
    client = pages.signed_in("auditor")
    home = client.get("/audit")
    assert 'formaction="/audit/exports/inspections.csv"' in home.text
    today = utcnow().date()
    period = {"since": (today - timedelta(days=1)).isoformat(), "until": today.isoformat()}
    csv_text = client.get("/audit/exports/waste.csv", params=period)
    assert csv_text.status_code == 200
    assert csv_text.headers["content-disposition"].startswith("attachment;")
    assert csv_text.text.splitlines()[0].startswith("waste_entry_id,")
    document = client.get("/audit/exports/all.json", params=period)
    assert set(json.loads(document.text)) >= {"records", "records_sha256", "generated_by"}
    assert client.get("/audit/exports/nothing.csv", params=period).status_code == 404
    assert (
        client.get("/audit/exports/waste.csv", params={"since": "x", "until": "y"}).status_code
        == 404
    )
    # Operators have no auditor pages.
    operator = sign_in(pages, world.operator.username)
    assert operator.get("/audit/exports/waste.csv", params=period).status_code == 403


def test_the_map_and_plots_read_real_data(pages: Pages) -> None:
    job = planned_job(pages, pages.site)
    client = pages.signed_in("coordinator")
    network = client.get("/map/network.json").json()
    sites = {site["name"]: site for site in network["sites"]}
    assert sites["Fablab UTC"]["printers"] == 1
    assert sites["Atelier Venette"]["printers"] == 0
    assert sites["Atelier Venette"]["load_band"] == "none"
    assert sites["Fablab UTC"]["load"] > 0  # the planned plate occupies its printer
    assert [p["caption"] for p in network["points"]] == ["1 open needs"]
    lateness = client.get("/stats/lateness.json").json()
    assert lateness["labels"]
    assert lateness["datasets"][0]["data"][0] < 0
    progress = client.get(f"/needs/{job.need_id}/progress.json").json()
    target = progress["datasets"][-1]
    assert [point["y"] for point in target["data"]] == [1, 1]  # one copy needed
    utilisation = client.get("/stats/utilisation.json").json()
    assert utilisation["labels"] == ["Fablab UTC"]
    assert client.get("/stats/unknown.json").status_code == 404
    # A plot's figures are in the page too, for those who cannot see the plot.
    assert "Fablab UTC" in client.get("/stats").text


def test_the_vendored_assets_are_the_locked_ones() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "vendor_assets.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads((ROOT / "api" / "static" / "vendor" / "MANIFEST.json").read_text())
    assert {"htmx.org", "leaflet", "chart.js", "axe-core"} <= set(manifest)
    for entry in manifest.values():
        assert any("LICENSE" in name for name in entry["files"]), entry
