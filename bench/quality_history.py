"""Benchmark: traceability, recall, certificates, the mass balance and exports on a large
generated history (SQLite file, or PostgreSQL with DISTRIFAB_BENCH_DATABASE_URL).

    .venv/bin/python bench/quality_history.py [--plates 5000]

Prints the figures and saves them in bench/results/quality.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

from sqlalchemy import select

from bench.provenance import code_version
from catalog.models import DesignStatus, DesignVersion, Material, Part, SliceRecord, SpoolLot
from catalog.service import seed_reference_data
from core.clock import utcnow
from core.db import Database
from core.identity import Actor, Role
from core.migrate import upgrade
from printers.models import DriverKind, Printer, Site
from quality import balance, certificates, exports, traceability
from quality.certificate_pdf import render_pdf
from quality.models import Delivery, Inspection, InspectionJob, Verdict
from scheduler.models import DeliveryPoint, Job, JobState, Need, NeedStatus, PrintRun, RunOutcome

RESULTS = Path(__file__).parent / "results" / "quality.json"
AUDITOR = Actor(user_id=None, username="bench-auditor", role=Role.AUDITOR)


def generate(db: Database, *, plates: int, seed: int = 7) -> dict[str, Any]:
    """A network's history: 4 sites, 40 printers, 60 spool lots, needs of 40 plates of 4
    copies each, every plate printed, inspected, delivered in batches of 10 plates."""
    rng = random.Random(seed)
    start = utcnow() - timedelta(days=60)
    with db.session() as session:
        seed_reference_data(session)
        pla = session.scalar(select(Material).where(Material.key == "PLA"))
        assert pla is not None
        sites = [Site(name=f"site-{i}", lat=49.4, lon=2.8 + i / 10) for i in range(4)]
        session.add_all(sites)
        session.flush()
        lots = [
            SpoolLot(
                material_id=pla.id,
                lot_code=f"LOT-{i:03d}",
                received_mass_g=10_000,
                site_id=sites[i % 4].id,
                received_at=start,
            )
            for i in range(60)
        ]
        printers = [
            Printer(
                site_id=sites[i % 4].id,
                name=f"printer-{i:02d}",
                driver=DriverKind.SIMULATOR,
                base_url="http://127.0.0.1:9",
                api_key_encrypted="-",
                profile_key="prusa-mk3s",
                bed_x_mm=250,
                bed_y_mm=210,
                max_z_mm=210,
            )
            for i in range(40)
        ]
        point = DeliveryPoint(name="CH Compiègne-Noyon", lat=49.415, lon=2.823)
        part = Part(name="headband")
        session.add_all([*lots, *printers, point, part])
        session.flush()
        version = DesignVersion(
            part_id=part.id,
            number=1,
            model_hash="ab" * 32,
            model_file_name="headband.stl",
            status=DesignStatus.APPROVED,
            size_x_mm=180,
            size_y_mm=120,
            size_z_mm=15,
            volume_mm3=20000,
            approved_at=start,
        )
        session.add(version)
        session.flush()
        record = SliceRecord(
            design_version_id=version.id,
            profile_key="prusa-mk3s",
            material_key="PLA",
            copies=4,
            settings_hash="cd" * 32,
            settings={"layer_height_mm": 0.3},
            gcode_hash="ef" * 32,
            print_time_s=3600,
            filament_mm=1000,
            filament_g=100.0,
            cost_eur=Decimal("2.5"),
            layers=50,
        )
        session.add(record)
        session.flush()
        per_need, per_delivery = 40, 10
        moment = start
        for _need_number in range(plates // per_need):
            need = Need(
                part_id=part.id,
                design_version_id=version.id,
                material_key="PLA",
                quantity=per_need * 4,
                due_at=start + timedelta(days=90),
                delivery_point_id=point.id,
                status=NeedStatus.DELIVERED,
            )
            session.add(need)
            session.flush()
            for d in range(per_need // per_delivery):
                moment += timedelta(minutes=rng.randint(5, 30))
                delivery = Delivery(
                    need_id=need.id,
                    delivery_point_id=point.id,
                    quantity=per_delivery * 4,
                    recipient=f"service-{d}",
                    delivered_at=moment + timedelta(hours=3),
                )
                session.add(delivery)
                session.flush()
                for k in range(per_delivery):
                    printer = printers[rng.randrange(len(printers))]
                    job = Job(
                        need_id=need.id,
                        index=d * per_delivery + k + 1,
                        design_version_id=version.id,
                        material_key="PLA",
                        copies=4,
                        state=JobState.DELIVERED,
                        slice_id=record.id,
                        gcode_hash=record.gcode_hash,
                        delivery_id=delivery.id,
                        site_id=printer.site_id,
                    )
                    session.add(job)
                    session.flush()
                    run = PrintRun(
                        job_id=job.id,
                        attempt=1,
                        printer_id=printer.id,
                        site_id=printer.site_id,
                        spool_lot_id=lots[rng.randrange(len(lots))].id,
                        material_key="PLA",
                        gcode_hash=record.gcode_hash,
                        file_name=f"df-{uuid4().hex[:12]}.gcode",
                        filament_g=100.0,
                        outcome=RunOutcome.DONE,
                        dispatched_at=moment,
                        started_at=moment,
                        ended_at=moment + timedelta(hours=1),
                    )
                    inspection = Inspection(
                        job_id=job.id,
                        attempt=1,
                        design_version_id=version.id,
                        site_id=printer.site_id,
                        lot_size=4,
                        code_letter="A",
                        sample_size=4,
                        accept_number=0,
                        reject_number=1,
                        defective_count=0,
                        verdict=Verdict.PASSED,
                        inspected_at=moment + timedelta(hours=2),
                    )
                    session.add_all([run, inspection])
                    session.flush()
                    session.add(
                        InspectionJob(
                            inspection_id=inspection.id,
                            job_id=job.id,
                            attempt=1,
                            copies=4,
                            print_run_id=run.id,
                        )
                    )
            session.commit()
        return {
            "delivery_id": session.scalars(select(Delivery.id).limit(1)).one(),
            "lot_code": lots[0].lot_code,
            "printer_id": printers[0].id,
            "since": start,
            "until": moment + timedelta(days=1),
            "window": (start + timedelta(days=1), start + timedelta(days=2)),
        }


def timed(label: str, action: Callable[[], Any], repeat: int = 5) -> dict[str, Any]:
    samples = []
    for _ in range(repeat):
        begun = time.perf_counter()
        action()
        samples.append(time.perf_counter() - begun)
    figure = {"median_ms": round(statistics.median(samples) * 1000, 1), "runs": repeat}
    print(f"{label:<40} {figure['median_ms']:>10.1f} ms")
    return figure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plates", type=int, default=5000)
    args = parser.parse_args()
    url = os.environ.get("DISTRIFAB_BENCH_DATABASE_URL")
    folder = tempfile.mkdtemp(prefix="distrifab-bench-quality-")
    db = Database(url or f"sqlite:///{folder}/bench.db")
    upgrade(db.engine)
    begun = time.perf_counter()
    facts = generate(db, plates=args.plates)
    print(
        f"generated {args.plates} plates in {time.perf_counter() - begun:.1f} s ({db.engine.dialect.name})"
    )
    figures: dict[str, Any] = {}
    with db.session() as session:
        delivery = session.get(Delivery, facts["delivery_id"])
        assert delivery is not None
        figures["trace_delivery_10_plates"] = timed(
            "trace a delivery (10 plates)",
            lambda: traceability.trace_delivery(session, delivery.id, actor=AUDITOR),
        )
        content = certificates.build_content(session, delivery, number="DF-BENCH", issued_at="")
        sha = certificates.content_sha256(content)
        figures["certificate_json_10_plates"] = timed(
            "certificate JSON (10 plates)",
            lambda: certificates.build_content(session, delivery, number="DF-BENCH", issued_at=""),
        )
        figures["certificate_pdf_10_plates"] = timed(
            "certificate PDF render (10 plates)", lambda: render_pdf(content, sha)
        )
        found = traceability.recall(session, actor=AUDITOR, lot_code=facts["lot_code"])
        figures["recall_by_lot"] = timed(
            "recall by spool lot",
            lambda: traceability.recall(session, actor=AUDITOR, lot_code=facts["lot_code"]),
        )
        figures["recall_by_lot"]["deliveries"] = len(found["deliveries"])
        since, until = facts["window"]
        figures["recall_by_printer_day"] = timed(
            "recall by printer over a day",
            lambda: traceability.recall(
                session, actor=AUDITOR, printer_id=facts["printer_id"], since=since, until=until
            ),
        )
        figures["mass_balance_whole_history"] = timed(
            "mass balance, whole history",
            lambda: balance.mass_balance(
                session, actor=AUDITOR, since=facts["since"], until=facts["until"]
            ),
            repeat=3,
        )
        figures["export_traceability_csv_day"] = timed(
            "export traceability CSV, one day",
            lambda: exports.export_csv(
                session, exports.ExportKind.TRACEABILITY, actor=AUDITOR, since=since, until=until
            ),
            repeat=3,
        )
    result = {
        "plates": args.plates,
        "database": db.engine.dialect.name,
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "figures": figures,
        "code": code_version(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {RESULTS}")
    db.dispose()


if __name__ == "__main__":
    main()
