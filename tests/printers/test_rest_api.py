"""OctoPrint's REST API itself, below the driver: keys, status codes and error texts.

Run against the real server and the simulator alike; the expected values were read off
OctoPrint 1.11.8 (see shared/notes/octoprint.md), so a simulator answer that drifts from
OctoPrint's fails here even where the driver would not notice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.fixtures.octoprint import sample_gcode
from tests.printers.support import WAIT_S, Endpoint

JOB_KEYS = {"job", "progress", "state"}
JOB_JOB_KEYS = {
    "averagePrintTime",
    "estimatedPrintTime",
    "filament",
    "file",
    "lastPrintTime",
    "user",
}
FILE_KEYS = {"date", "display", "name", "origin", "path", "size"}
PROGRESS_KEYS = {"completion", "filepos", "printTime", "printTimeLeft", "printTimeLeftOrigin"}
FLAG_KEYS = {
    "cancelling",
    "closedOrError",
    "error",
    "finishing",
    "operational",
    "paused",
    "pausing",
    "printing",
    "ready",
    "resuming",
    "sdReady",
}
NOT_OPERATIONAL = {"error": "Printer is not operational"}
CANNOT_SELECT = {"error": "Printer is already printing, cannot select a new file"}


@pytest.fixture
def api(endpoint: Endpoint) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=endpoint.base_url, headers={"X-Api-Key": endpoint.api_key}, timeout=10.0
    ) as client:
        yield client


def wait_job(api: httpx.Client, accept: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while True:
        job: dict[str, Any] = api.get("/api/job").json()
        if accept(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"the awaited job state never came; last {job}")
        time.sleep(0.05)


def start_print(api: httpx.Client, moves: int = 600) -> None:
    response = api.post("/api/files/local", files={"file": ("p.gcode", sample_gcode(moves))})
    assert response.status_code == 201
    assert (
        api.post("/api/files/local/p.gcode", json={"command": "select", "print": True}).status_code
        == 204
    )
    wait_job(api, lambda j: j["state"] == "Printing")


def assert_job_shape(job: dict[str, Any], *, error: bool = False) -> None:
    assert set(job) == JOB_KEYS | ({"error"} if error else set())
    assert set(job["job"]) == JOB_JOB_KEYS
    assert set(job["job"]["file"]) == FILE_KEYS
    assert set(job["progress"]) == PROGRESS_KEYS


def test_version(api: httpx.Client) -> None:
    response = api.get("/api/version")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"api", "server", "text"}
    assert body["api"] == "0.1"
    assert body["text"] == f"OctoPrint {body['server']}"


def test_idle_shapes(api: httpx.Client) -> None:
    job = api.get("/api/job").json()
    assert_job_shape(job)
    assert job["state"] == "Operational"
    assert set(job["job"]["file"].values()) == {None}
    assert set(job["progress"].values()) == {None}

    printer = api.get("/api/printer").json()
    assert set(printer) == {"sd", "state", "temperature"}
    assert set(printer["state"]) == {"error", "flags", "text"}
    assert set(printer["state"]["flags"]) == FLAG_KEYS
    assert printer["state"]["flags"]["ready"] is True
    assert printer["state"]["error"] == ""
    assert set(api.get("/api/printer", params={"exclude": "sd,state"}).json()) == {"temperature"}

    connection = api.get("/api/connection").json()
    assert set(connection) == {"current", "options"}
    assert set(connection["current"]) == {"baudrate", "port", "printerProfile", "state"}
    assert connection["current"]["state"] == "Operational"
    assert connection["current"]["port"] == "VIRTUAL"
    assert "VIRTUAL" in connection["options"]["ports"]


def test_printing_and_paused_shapes(api: httpx.Client) -> None:
    start_print(api)
    job = wait_job(api, lambda j: (j["progress"]["completion"] or 0) > 0)
    assert_job_shape(job)
    assert job["job"]["file"]["name"] == "p.gcode"
    assert job["job"]["file"]["origin"] == "local"
    assert job["job"]["user"] == "admin"
    assert isinstance(job["progress"]["completion"], float)
    assert isinstance(job["progress"]["printTime"], int)
    flags = api.get("/api/printer").json()["state"]["flags"]
    assert flags["printing"] is True
    assert flags["ready"] is False

    assert api.post("/api/job", json={"command": "pause", "action": "pause"}).status_code == 204
    paused = wait_job(api, lambda j: j["state"] == "Paused")
    assert paused["state"] == "Paused"
    assert_job_shape(paused)
    flags = api.get("/api/printer").json()["state"]["flags"]
    assert flags["paused"] is True
    assert flags["printing"] is False
    assert api.get("/api/connection").json()["current"]["state"] == "Paused"


def test_error_and_offline_shapes(api: httpx.Client) -> None:
    start_print(api)
    api.post("/api/printer/command", json={"commands": ["!!DEBUG:drop_connection"]})
    failed = wait_job(api, lambda j: j["state"] == "Offline after error")
    assert_job_shape(failed, error=True)
    assert failed["error"]
    assert set(failed["job"]["file"].values()) == {None}
    assert api.get("/api/printer").json() == NOT_OPERATIONAL
    assert api.get("/api/connection").json()["current"]["state"] == "Closed"

    # Disconnecting is accepted and changes nothing: only a connect clears the error.
    assert api.post("/api/connection", json={"command": "disconnect"}).status_code == 204
    assert api.post("/api/job", json={"command": "cancel"}).json() == NOT_OPERATIONAL
    assert api.get("/api/job").json() == failed
    assert api.post("/api/connection", json={"command": "connect"}).status_code == 204
    back = wait_job(api, lambda j: j["state"] == "Operational")
    assert_job_shape(back)


def test_upload_answer(api: httpx.Client) -> None:
    response = api.post("/api/files/local", files={"file": ("u.gcode", sample_gcode(10))})
    assert response.status_code == 201
    assert response.headers["location"].endswith("/api/files/local/u.gcode")
    body = response.json()
    assert body["done"] is True
    assert body["effectiveSelect"] is False
    assert body["effectivePrint"] is False
    assert set(body["files"]["local"]) == {"name", "origin", "path", "refs"}

    info = api.get("/api/files/local/u.gcode").json()
    assert {"date", "display", "hash", "name", "origin", "path", "refs", "size", "type"} <= set(
        info
    )
    assert info["size"] == len(sample_gcode(10))
    assert info["type"] == "machinecode"
    listing = api.get("/api/files", params={"recursive": "true"}).json()
    assert {"files", "free", "total"} <= set(listing)
    assert [entry["name"] for entry in listing["files"]] == ["u.gcode"]

    printed = api.post(
        "/api/files/local",
        files={"file": ("v.gcode", sample_gcode(600))},
        data={"select": "true", "print": "true"},
    ).json()
    assert printed["effectivePrint"] is True
    assert wait_job(api, lambda j: j["state"] == "Printing")["job"]["file"]["name"] == "v.gcode"


def test_answers_when_idle(api: httpx.Client) -> None:
    # Start with nothing selected is accepted and does nothing.
    assert api.post("/api/job", json={"command": "start"}).status_code == 204
    assert api.get("/api/job").json()["state"] == "Operational"
    for command in ("pause", "cancel"):
        response = api.post("/api/job", json={"command": command})
        assert response.status_code == 409
        assert response.json() == {
            "error": f"Printer is neither printing nor paused, '{command}' command "
            "cannot be performed"
        }
    assert api.post("/api/job", json={"command": "nope"}).json() == {"error": "command is invalid"}
    assert api.post("/api/printer/command", json={}).status_code == 400
    for method, path in (
        ("GET", "/api/files/local/none.gcode"),
        ("DELETE", "/api/files/local/none.gcode"),
        ("GET", "/api/nothing"),
    ):
        assert api.request(method, path).status_code == 404
    missing = api.post("/api/files/local/none.gcode", json={"command": "select"})
    assert missing.status_code == 404
    wrong_type = api.post("/api/files/local", files={"file": ("n.txt", b"x")})
    assert wrong_type.status_code == 415
    assert wrong_type.json() == {"error": "Could not upload file, invalid type"}
    no_file = api.post("/api/files/local", files={"other": ("n.gcode", b"x")})
    assert no_file.status_code == 400
    assert no_file.json() == {"error": "No file to upload and no folder to create"}


def test_answers_while_printing(api: httpx.Client) -> None:
    start_print(api)
    api.post("/api/files/local", files={"file": ("q.gcode", sample_gcode(10))})
    start = api.post("/api/job", json={"command": "start"})
    assert start.status_code == 409
    assert start.json() == {
        "error": "Printer already has an active print job, did you mean 'restart'?"
    }
    select = api.post("/api/files/local/q.gcode", json={"command": "select", "print": True})
    assert select.status_code == 409
    assert select.json() == CANNOT_SELECT
    overwrite = api.post("/api/files/local", files={"file": ("p.gcode", b"G28\n")})
    assert overwrite.status_code == 409
    assert overwrite.json() == {"error": "Trying to overwrite file that is currently being printed"}
    delete = api.delete("/api/files/local/p.gcode")
    assert delete.status_code == 409
    assert delete.json() == {"error": "Trying to delete a file that is currently in use"}
    assert api.delete("/api/files/local/q.gcode").status_code == 204


def test_answers_when_disconnected(api: httpx.Client) -> None:
    api.post("/api/files/local", files={"file": ("d.gcode", sample_gcode(10))})
    assert api.post("/api/connection", json={"command": "disconnect"}).status_code == 204
    wait_job(api, lambda j: j["state"] == "Offline")
    assert api.get("/api/printer").json() == NOT_OPERATIONAL
    for path, body in (
        ("/api/job", {"command": "start"}),
        ("/api/job", {"command": "cancel"}),
        ("/api/printer/command", {"commands": ["M105"]}),
    ):
        response = api.post(path, json=body)
        assert response.status_code == 409
        assert response.json() == NOT_OPERATIONAL
    select = api.post("/api/files/local/d.gcode", json={"command": "select", "print": True})
    assert select.status_code == 409
    assert select.json() == CANNOT_SELECT  # OctoPrint's misleading text, kept
    upload = api.post(
        "/api/files/local",
        files={"file": ("e.gcode", sample_gcode(10))},
        data={"select": "true", "print": "true"},
    )
    assert upload.status_code == 201
    assert upload.json()["effectivePrint"] is False
    assert api.post("/api/connection", json={"command": "connect"}).status_code == 204


def test_key_checks(endpoint: Endpoint) -> None:
    forbidden = {
        "error": "You don't have the permission to access the requested resource. It is "
        "either read-protected or not readable by the server."
    }
    with httpx.Client(base_url=endpoint.base_url, timeout=10.0) as anonymous:
        for headers in ({}, {"X-Api-Key": "wrong"}):
            for path in ("/api/version", "/api/job", "/api/files/local/x.gcode"):
                response = anonymous.get(path, headers=headers)
                assert response.status_code == 403
                assert response.json() == forbidden
            for method, path in (("POST", "/api/job"), ("DELETE", "/api/files/local/x.gcode")):
                response = anonymous.request(
                    method, path, headers=headers, json={"command": "cancel"}
                )
                assert response.status_code == 400
                assert response.json() == {"error": "CSRF validation failed"}
        # OctoPrint also takes the key as a bearer token or a query parameter.
        bearer = {"Authorization": f"Bearer {endpoint.api_key}"}
        assert anonymous.get("/api/version", headers=bearer).status_code == 200
        assert anonymous.get("/api/version", params={"apikey": endpoint.api_key}).status_code == 200
