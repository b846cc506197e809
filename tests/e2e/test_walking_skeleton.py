"""From a posted need to a delivered batch, through the API, on a REAL OctoPrint server.

Runs twice: embedded (SQLite, background work in-process) and distributed
(PostgreSQL, Redis, a real Celery worker and beat in their own processes).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.clock import utcnow
from core.identity import Role
from core.runtime import Runtime, set_runtime
from tests.factories import ADMIN, make_delivery_point, make_part, make_site, make_user
from tests.fixtures.database import TEST_SECRET, make_settings
from tests.fixtures.octoprint import OctoPrintServer
from tests.waiting import wait_until

pytestmark = [pytest.mark.octoprint, pytest.mark.slow]

T = TypeVar("T")
VENV_BIN = Path(sys.executable).parent
PASSWORD = "password-123"


def login(client: TestClient, username: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
def celery_processes(e2e_runtime: Runtime, tmp_path: Path) -> Iterator[Callable[[], None]]:
    """Start a real Celery worker and beat for the distributed runtime (call it to start)."""
    processes: list[subprocess.Popen[bytes]] = []
    settings = e2e_runtime.settings

    def start() -> None:
        env = {
            **os.environ,
            "DISTRIFAB_DATABASE_URL": settings.resolved_database_url,
            "DISTRIFAB_REDIS_URL": settings.redis_url or "",
            "DISTRIFAB_SECRET_KEY": TEST_SECRET,
            "DISTRIFAB_DATA_DIR": str(settings.data_dir),
            "DISTRIFAB_CELERY_QUEUE": settings.celery_queue,
            "DISTRIFAB_POLL_INTERVAL_S": str(settings.poll_interval_s),
            "DISTRIFAB_REPLAN_DEBOUNCE_S": "0",
            "DISTRIFAB_REPLAN_TIME_LIMIT_S": "1",
            "DISTRIFAB_PRINTER_TIMEOUT_S": "3",
        }
        for command in (["worker", "--concurrency=2"], ["beat"]):
            # The child keeps its own copy of the descriptor; ours closes at once.
            with open(tmp_path / f"{command[0]}.log", "wb") as log:
                processes.append(
                    subprocess.Popen(
                        [str(VENV_BIN / "distrifab"), *command, "--loglevel=info"],
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )

    yield start
    for process in processes:
        os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(params=["embedded", "distributed"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def backend(mode: str) -> str:
    # Embedded runs on SQLite, distributed on PostgreSQL: the two deployments users run.
    return "sqlite" if mode == "embedded" else "postgres"


@pytest.fixture
def e2e_runtime(mode: str, runtime: Runtime, tmp_path: Path) -> Runtime:
    if mode == "embedded":
        return runtime
    settings = make_settings(
        tmp_path,
        runtime.settings.resolved_database_url,
        redis_url="redis://127.0.0.1:6379/0",
        celery_queue=f"distrifab-test-{uuid.uuid4().hex[:8]}",
    )
    distributed = Runtime(
        settings=settings, db=runtime.db, store=runtime.store, secret_key=runtime.secret_key
    )
    set_runtime(distributed)
    return distributed


def job_audit_actions(client: TestClient, auditor: dict[str, str], job_id: str) -> list[str]:
    response = client.get(
        "/api/v1/audit", params={"entity_type": "job", "entity_id": job_id}, headers=auditor
    )
    assert response.status_code == 200, response.text
    return [entry["action"] for entry in response.json()]


def test_need_to_delivered_batch(
    mode: str,
    e2e_runtime: Runtime,
    octoprint_server: OctoPrintServer,
    celery_processes: Callable[[], None],
) -> None:
    from catalog.demo_parts import face_shield_headband

    runtime = e2e_runtime
    with runtime.db.session() as session:
        site = make_site(session, name="L'Hermitage", lat=49.44528, lon=3.125)
        hospital = make_delivery_point(session, name="CH Compiègne-Noyon", lat=49.415, lon=2.82306)
        coordinator = make_user(session, Role.COORDINATOR)
        operator = make_user(session, Role.OPERATOR, sites=(site,))
        auditor = make_user(session, Role.AUDITOR)
        # A 0.6 mm headband: the real outline in three layers, so the virtual printer is quick.
        part, _version = make_part(runtime, session, face_shield_headband(height_mm=0.6))
        site_id, hospital_id, part_id = site.id, hospital.id, part.id
        names = coordinator.username, operator.username, auditor.username
    if mode == "distributed":
        celery_processes()

    app = create_app(runtime)
    with TestClient(app) as client:
        as_coordinator, as_operator, as_auditor = (login(client, n) for n in names)

        # The operator registers the site's printer: checked against the real server.
        response = client.post(
            "/api/v1/printers",
            json={
                "site_id": str(site_id),
                "name": "MK3S-1",
                "driver": "octoprint",
                "base_url": octoprint_server.base_url,
                "api_key": octoprint_server.api_key,
                "profile_key": "prusa-mk3s",
            },
            headers=as_operator,
        )
        assert response.status_code == 201, response.text
        printer = response.json()
        assert "api_key" not in printer
        assert "api_key_encrypted" not in printer
        response = client.post(
            f"/api/v1/printers/{printer['id']}/material",
            json={"material_key": "PLA", "colour": "white", "remaining_g": 1000},
            headers=as_operator,
        )
        assert response.status_code == 200, response.text

        # The coordinator posts the need: 4 headbands for the hospital.
        response = client.post(
            "/api/v1/needs",
            json={
                "part_id": str(part_id),
                "quantity": 4,
                "due_at": (utcnow() + timedelta(days=2)).isoformat(),
                "delivery_point_id": str(hospital_id),
                "priority": 5,
            },
            headers=as_coordinator,
        )
        assert response.status_code == 201, response.text
        need = response.json()
        assert need["quantity"] == 4

        def jobs(headers: dict[str, str] = as_coordinator) -> list[dict[str, Any]]:
            answer = client.get("/api/v1/jobs", params={"need_id": need["id"]}, headers=headers)
            assert answer.status_code == 200, answer.text
            return list(answer.json())

        # Sliced and planned in the background, onto the only printer.
        planned = wait_until(
            lambda: (lambda js: js if js and all(j["state"] == "planned" for j in js) else None)(
                jobs()
            ),
            timeout_s=120,
            what="all jobs planned",
        )
        assert sum(j["copies"] for j in planned) == 4
        assert {j["printer_id"] for j in planned} == {printer["id"]}

        # The operator sees them in its queue and accepts them all.
        queue = jobs(as_operator)
        assert {j["id"] for j in queue} == {j["id"] for j in planned}
        for job in queue:
            response = client.post(f"/api/v1/jobs/{job['id']}/accept", headers=as_operator)
            assert response.status_code == 200, response.text
            assert response.json()["state"] == "accepted"

        # Each plate prints on the real OctoPrint server; the poller moves it to printed;
        # the operator clears the bed, inspects, and the next plate starts.
        for _ in queue:
            printed = wait_until(
                lambda: [j for j in jobs() if j["state"] == "printed"],
                timeout_s=240,
                what="a job printed",
            )
            job = printed[0]
            plan = client.get(
                f"/api/v1/jobs/{job['id']}/inspection-plan", headers=as_operator
            ).json()
            assert 1 <= plan["sample_size"] <= job["copies"]
            response = client.post(
                f"/api/v1/jobs/{job['id']}/inspections",
                json={
                    "defective_count": 0,
                    "measurements": [{"sample": 1, "check": "visual", "ok": True}],
                },
                headers=as_operator,
            )
            assert response.status_code == 201, response.text
            assert response.json()["verdict"] == "passed"
            response = client.post(f"/api/v1/printers/{printer['id']}/cleared", headers=as_operator)
            assert response.status_code == 200, response.text

        assert all(j["state"] == "passed" for j in jobs())
        # What OctoPrint printed is what distrifab sliced: its files are ours, one per plate.
        with httpx.Client(
            base_url=octoprint_server.base_url, headers=octoprint_server.headers
        ) as octo:
            files = octo.get("/api/files", params={"recursive": "true"}).json()["files"]
        assert {f["name"] for f in files} == {
            f"df-{j['id'].replace('-', '')[:12]}-a1-{j['gcode_hash'][:16]}.gcode" for j in jobs()
        }

        response = client.post(
            f"/api/v1/needs/{need['id']}/deliveries",
            json={"recipient": "Pharmacie"},
            headers=as_coordinator,
        )
        assert response.status_code == 201, response.text
        assert response.json()["quantity"] == 4
        assert (
            client.get(f"/api/v1/needs/{need['id']}", headers=as_coordinator).json()["status"]
            == "delivered"
        )

        # The audit trail lists every transition of every job, in order, and verifies.
        for job in jobs():
            actions = [
                a for a in job_audit_actions(client, as_auditor, job["id"]) if a != "job.printing"
            ]
            assert actions == [
                "job.planned",
                "job.accepted",
                "job.dispatched",
                "job.printed",
                "job.passed",
                "job.delivered",
            ], actions
        report = client.get("/api/v1/audit/verify", headers=as_auditor).json()
        assert report["ok"]
        assert report["entries"] > 0
    _ = ADMIN
