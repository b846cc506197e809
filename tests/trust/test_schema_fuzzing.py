"""Schemathesis against distrifab's own OpenAPI document, as every role.

Every operation gets generated requests (valid and invalid, with random ids and with
the ids of real objects of the world) from anonymous, each role, and the operator of
another site. Nothing may answer a server error, and every answer must match the
schema the API publishes (status, content type and body).

``DISTRIFAB_FUZZ_EXAMPLES`` sets the examples per operation and role (default 6, for
CI); ``DISTRIFAB_FUZZ_RESULTS=dir`` saves a JSON summary there (bench/results).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from api.app import create_app
from core.runtime import Runtime, set_runtime
from printers.simulator.fleet import SimulatedFleet, serve_in_thread
from tests.fixtures.database import make_settings
from tests.trust.world import ROLES, World, build_world

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("DISTRIFAB_FUZZ_EXAMPLES", "6"))
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
# Path parameters filled with the world's objects, so that requests reach the rules
# behind the lookups (random UUIDs mostly meet 404).
IDS = {
    "user_id": "user",
    "site_id": "site",
    "printer_id": "printer",
    "part_id": "part",
    "version_id": "version",
    "need_id": "need_passed",
    "job_id": "job_printed",
    "inspection_id": "inspection",
    "nc_id": "nc_pending",
    "delivery_id": "delivery",
    "batch_id": "batch",
}


@pytest.fixture(scope="module")
def fuzz_world(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[World, Any, dict[str, Any]]]:
    import shutil

    from catalog.service import seed_reference_data

    root = tmp_path_factory.mktemp("fuzz")
    shutil.copyfile(sqlite_template, root / "distrifab.db")
    runtime = Runtime.from_settings(make_settings(root, f"sqlite:///{root / 'distrifab.db'}"))
    with runtime.db.session() as session:
        seed_reference_data(session)
        session.commit()
    set_runtime(runtime)
    results: dict[str, Any] = {}
    with serve_in_thread(SimulatedFleet(5, seed="fuzz", time_scale=1.0)) as simulator:
        world = build_world(runtime, simulator)
        app = create_app(runtime, background=False)
        with TestClient(app):  # runs the lifespan
            schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
            yield world, schema, results
    set_runtime(None)
    runtime.db.dispose()
    save(results)


def save(results: dict[str, Any]) -> None:
    target = os.environ.get("DISTRIFAB_FUZZ_RESULTS")
    if not target or not results:
        return
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    summary = {
        "tool": f"schemathesis {schemathesis.__version__}",
        "at": stamp,
        "examples_per_operation_and_role": EXAMPLES,
        "checks": [c.__name__ for c in CHECKS],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_avg": os.getloadavg(),
        "requests": sum(r["requests"] for r in results.values()),
        "failures": sum(len(r["failures"]) for r in results.values()),
        "by_role": results,
    }
    path = Path(target) / f"schemathesis-{stamp}.json"
    path.write_text(json.dumps(summary, indent=1, sort_keys=True))


def throwaway_token(world: World, role: str) -> dict[str, str]:
    from sqlalchemy import select

    from core.identity import User, issue_token

    with world.runtime.db.session() as session:
        user = session.scalars(select(User).where(User.username == world.usernames[role])).one()
        token, _row = issue_token(session, user, ttl=timedelta(minutes=5))
        session.commit()
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("role", ROLES)
def test_no_server_error_and_no_answer_off_schema(
    fuzz_world: tuple[World, Any, dict[str, Any]], role: str
) -> None:
    world, schema, results = fuzz_world
    headers = world.api_headers(role)
    ids = {name: str(world.ids[key]) for name, key in IDS.items()}
    record: dict[str, Any] = {
        "requests": 0,
        "operations": 0,
        "seconds": 0.0,
        "statuses": Counter(),
        "failures": [],
    }
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        record["operations"] += 1
        known = {p.name: ids[p.name] for p in operation.path_parameters if p.name in ids}
        strategy = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
            operation.as_strategy(GenerationMode.POSITIVE, path_parameters=known),
        )

        label = operation.label

        @given(case=strategy)
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,  # the same requests on every CI run
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            # Our token replaces whatever the generator put in the Authorization header.
            case.headers = {
                k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"
            }
            if label == "DELETE /api/v1/auth/token" and role != "anonymous":  # noqa: B023
                # Revoking the role's token would leave every later request anonymous.
                case.headers.update(throwaway_token(world, role))
            else:
                case.headers.update(headers)
            response = case.call()
            record["requests"] += 1
            record["statuses"][str(response.status_code)] += 1
            try:
                case.validate_response(response, checks=CHECKS)
            except Exception as failure:
                first = str(failure).strip().splitlines()[0] if str(failure).strip() else ""
                record["failures"].append(
                    {
                        "operation": label,  # noqa: B023  # run() is called in this iteration
                        "status": response.status_code,
                        "failure": type(failure).__name__ + ": " + first[:300],
                    }
                )
                raise

        with contextlib.suppress(Exception):  # recorded above; every operation still runs
            run()
    record["seconds"] = round(time.monotonic() - started, 1)
    record["statuses"] = dict(record["statuses"])
    results[role] = record
    assert not record["failures"], json.dumps(record["failures"][:20], indent=1)
