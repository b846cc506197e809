"""Auditor exports (CSV and JSON) and the command line: trace, recall, certificate, export,
waste, and ``distrifab audit verify`` catching a database edited behind its back."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from api.cli import _register_commands, app
from core.audit import canonical_json
from core.clock import utcnow
from core.errors import Forbidden
from core.runtime import Runtime
from quality import deliveries, exports, inspections
from quality.exports import ExportKind
from quality.models import Delivery
from tests.quality.support import World, make_world, printed_job

runner = CliRunner()
_register_commands()


@pytest.fixture
def delivered(runtime: Runtime) -> tuple[World, Delivery]:
    with runtime.db.session() as session:
        world = make_world(session)
        rejected = printed_job(session, world)
        inspections.record_inspection(
            session, job_ids=[rejected.id], actor=world.operator, defective_count=1, cause="warp"
        )
        job = printed_job(session, world)
        inspections.record_inspection(
            session, job_ids=[job.id], actor=world.operator, defective_count=0
        )
        delivery = deliveries.deliver_need(
            session, need_id=world.need.id, actor=world.coordinator, recipient="Urgences"
        )
        return world, delivery


def window() -> tuple[str, str]:
    now = utcnow()
    return (now - timedelta(hours=3)).isoformat(), (now + timedelta(hours=1)).isoformat()


def test_exports_for_auditors_and_operators(
    runtime: Runtime, delivered: tuple[World, Delivery]
) -> None:
    world, delivery = delivered
    since, until = utcnow() - timedelta(hours=3), utcnow() + timedelta(hours=1)
    with runtime.db.session() as session:
        table = exports.export_csv(
            session, ExportKind.TRACEABILITY, actor=world.auditor, since=since, until=until
        )
        rows = list(csv.DictReader(io.StringIO(table)))
        assert [r["delivery_id"] for r in rows] == [str(delivery.id)]
        assert rows[0]["spool_lot"] == world.lot.lot_code
        assert rows[0]["inspector"] == world.operator.username
        verdicts = [
            r["verdict"]
            for r in exports.export_rows(
                session, ExportKind.INSPECTIONS, actor=world.auditor, since=since, until=until
            )
        ]
        assert sorted(verdicts) == ["passed", "rejected"]
        document = exports.export_json(session, actor=world.auditor, since=since, until=until)
        assert set(document["records"]) == {k.value for k in ExportKind}
        assert (
            document["records_sha256"]
            == hashlib.sha256(canonical_json(document["records"]).encode()).hexdigest()
        )
        assert len(document["records"]["non_conformities"]) == 1
        assert document["records"]["deliveries"][0]["certificate_sha256"]
        # The other site's operator sees none of it, and no audit trail at all.
        other = exports.export_json(session, actor=world.other_operator, since=since, until=until)
        assert "audit" not in other["records"]
        assert all(rows == [] for rows in other["records"].values())
        with pytest.raises(Forbidden):
            exports.export_rows(
                session, ExportKind.AUDIT, actor=world.operator, since=since, until=until
            )
        empty = exports.export_csv(
            session, ExportKind.RECYCLING, actor=world.auditor, since=since, until=until
        )
        assert empty.startswith("recycling_batch_id,sent_at,")


def test_cli_trace_recall_certificate_and_export(
    runtime: Runtime, delivered: tuple[World, Delivery], tmp_path: Path
) -> None:
    world, delivery = delivered
    result = runner.invoke(app, ["trace", "delivery", str(delivery.id), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["delivery"]["recipient"] == "Urgences"
    result = runner.invoke(app, ["trace", "delivery", str(delivery.id)])
    assert result.exit_code == 0
    assert "(Urgences)" in result.stdout  # the table itself is cut to the runner's 80 columns
    result = runner.invoke(app, ["recall", "--lot", world.lot.lot_code, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["affected_quantity"] == 4
    pdf = tmp_path / "certificate.pdf"
    result = runner.invoke(app, ["certificate", "pdf", str(delivery.id), "--out", str(pdf)])
    assert result.exit_code == 0, result.output
    assert pdf.read_bytes().startswith(b"%PDF-")
    held = tmp_path / "certificate.json"
    result = runner.invoke(app, ["certificate", "json", str(delivery.id), "--out", str(held)])
    assert result.exit_code == 0
    result = runner.invoke(app, ["certificate", "verify", "--file", str(held)])
    assert result.exit_code == 0, result.output
    forged = json.loads(held.read_text())
    forged["delivery"]["quantity"] = 4000
    held.write_text(json.dumps(forged))
    result = runner.invoke(app, ["certificate", "verify", "--file", str(held)])
    assert result.exit_code == 3
    assert "differs" in result.stderr
    since, until = window()
    result = runner.invoke(app, ["export", "waste", "--since", since, "--until", until])
    assert result.exit_code == 0, result.output
    assert "rejected_part" in result.stdout
    result = runner.invoke(
        app,
        [
            "waste",
            "balance",
            "--since",
            since,
            "--until",
            until,
            "--site",
            str(world.site.id),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"][0]["waste_g"]["rejected_part"] == 100.0


def test_cli_refusals_are_one_readable_line(runtime: Runtime) -> None:
    for arguments in (
        ["trace", "delivery", "not-an-id"],
        ["trace", "delivery", "8c4a1e5e-3f1e-4f8e-9d5a-2a7c1c0e9b11"],
        ["recall"],
        ["export", "waste", "--since", "yesterday", "--until", "2030-01-01"],
        ["waste", "add", "--site", "8c4a1e5e-3f1e-4f8e-9d5a-2a7c1c0e9b11", "--material",
         "PLA", "--mass-g", "-3", "--kind", "purge"],
    ):  # fmt: skip
        result = runner.invoke(app, arguments)
        assert result.exit_code == 2, (arguments, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("distrifab: ")


def test_audit_verify_catches_an_edit_behind_distrifabs_back(
    runtime: Runtime, delivered: tuple[World, Delivery]
) -> None:
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "Audit trail intact" in result.stdout
    with runtime.db.engine.begin() as connection:
        seq = connection.execute(
            text("SELECT MIN(seq) FROM audit_entries WHERE action = 'inspection.recorded'")
        ).scalar_one()
        # Turn the rejected lot's record into an accepted one.
        connection.execute(
            text(
                "UPDATE audit_entries SET data_json = REPLACE(data_json, 'rejected', 'passed') WHERE seq = :s"
            ),
            {"s": seq},
        )
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 3
    assert f"entry {seq}:" in result.stderr
    assert "does not match its hash" in result.stderr
    with runtime.db.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_entries WHERE seq = :s"), {"s": seq + 1})
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 3
    assert f"entries {seq + 1} to {seq + 1} are missing" in result.stderr
