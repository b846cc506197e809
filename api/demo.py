"""The Oise demo network: three production sites around Compiègne, a hospital, simulated printers.

Coordinates from the project's domain notes (commune points from Wikipedia
infoboxes): L'Hermitage in Autrêches, the UTC fablab and an SME in Compiègne's
industrial zone, the Compiègne-Noyon hospital.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from uuid import UUID

import trimesh
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog import service as catalog
from catalog.demo_parts import door_opener, ear_saver, face_shield_headband
from core import audit
from core.identity import Actor, Role, create_user
from core.runtime import Runtime
from printers import service as printers
from printers.models import DriverKind, Site, SiteKind
from printers.simulator.fleet import RunningSimulator
from quality.plans import revise_plan
from scheduler import service as scheduler

DEMO_SEED = "distrifab-demo"
DEMO_PASSWORD = "demo-demo-demo"  # noqa: S105  # published demo credentials, printed at start
WEEKDAYS_9_TO_19 = {d: [["09:00", "19:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}


@dataclass(frozen=True, slots=True)
class DemoSite:
    name: str
    kind: SiteKind
    address: str
    lat: float
    lon: float
    printers: tuple[tuple[str, str], ...]  # (name, profile key)
    always_open: bool = True
    operator: str = ""


SITES = (
    DemoSite(
        "L'Hermitage",
        SiteKind.THIRD_PLACE,
        "Autrêches, 60350 Oise",
        49.44528,
        3.12500,
        (
            ("MK3S-Hermitage-1", "prusa-mk3s"),
            ("MK3S-Hermitage-2", "prusa-mk3s"),
            ("Ender3-Hermitage", "creality-ender3"),
        ),
        operator="hermitage",
    ),
    DemoSite(
        "Fablab UTC",
        SiteKind.FABLAB,
        "Université de technologie, 60200 Compiègne",
        49.40150,
        2.80050,
        (
            ("MK3S-UTC-1", "prusa-mk3s"),
            ("MK3S-UTC-2", "prusa-mk3s"),
            ("UM2-UTC", "ultimaker-2plus"),
        ),
        operator="utc",
    ),
    DemoSite(
        "Atelier Venette (PME)",
        SiteKind.SME,
        "ZI Nord, 60280 Venette",
        49.41700,
        2.79400,
        (("Ender3-Venette-1", "creality-ender3"), ("Ender3-Venette-2", "creality-ender3")),
        operator="venette",
    ),
)
HOSPITAL = ("CH Compiègne-Noyon", "8 avenue Henri Adnot, 60200 Compiègne", 49.41500, 2.82306)
DEMO_PRINTER_COUNT = sum(len(s.printers) for s in SITES)

# What a fablab checked on visor headbands in 2020 (EN 166 frame requirements and the
# French adapted procedure for non-certified visors): the band's inner width, no
# burrs, the marking and the instructions shipped with it.
HEADBAND_CHECKS: list[dict[str, object]] = [
    {"key": "width", "kind": "dimensional", "label": "Inner width at the pins", "nominal_mm": 168.0, "tolerance_mm": 1.5},
    {"key": "edges", "kind": "visual", "label": "No sharp edge or burr", "reference": "EN 166:2001 §7.1.1"},
    {"key": "pins", "kind": "functional", "label": "The visor sheet clips onto the four pins"},
    {"key": "marking", "kind": "marking", "label": "Maker marking", "expected": "FABOISE EN166 3"},
]  # fmt: skip


def _stl(mesh: trimesh.Trimesh) -> bytes:
    buffer = io.BytesIO()
    mesh.export(buffer, file_type="stl")
    return buffer.getvalue()


def has_data(session: Session) -> bool:
    return bool(session.scalar(select(func.count(Site.id))))


@dataclass
class DemoNetwork:
    site_ids: dict[str, UUID]
    hospital_id: UUID
    part_ids: dict[str, UUID]
    operators: dict[str, str]  # site name -> username


def build_demo_network(runtime: Runtime, simulator: RunningSimulator) -> DemoNetwork:
    """Create the demo sites, users, parts and simulated printers (on an empty database)."""
    admin = Actor.system("demo")
    with runtime.db.session() as session:
        users: list[tuple[str, Role, tuple[Site, ...]]] = [
            ("admin", Role.ADMIN, ()),
            ("coordinator", Role.COORDINATOR, ()),
            ("auditor", Role.AUDITOR, ()),
        ]
        site_ids: dict[str, UUID] = {}
        operators: dict[str, str] = {}
        number = 0
        for demo in SITES:
            site = printers.create_site(
                session,
                name=demo.name,
                kind=demo.kind,
                address=demo.address,
                lat=demo.lat,
                lon=demo.lon,
                actor=admin,
                opening_hours={} if demo.always_open else WEEKDAYS_9_TO_19,
            )
            site_ids[demo.name] = site.id
            for name, profile_key in demo.printers:
                number += 1
                address = simulator.address(number)
                printer = printers.register_printer(
                    session,
                    site_id=site.id,
                    name=name,
                    driver=DriverKind.SIMULATOR,
                    base_url=address.base_url,
                    api_key=address.api_key,
                    profile_key=profile_key,
                    actor=admin,
                    secret_key=runtime.secret_key,
                )
                printers.load_material(
                    session,
                    printer_id=printer.id,
                    material_key="PLA",
                    colour="white",
                    remaining_g=1000.0,
                    actor=admin,
                )
            users.append((f"operator-{demo.operator}", Role.OPERATOR, (site,)))
            operators[demo.name] = f"operator-{demo.operator}"
        for username, role, sites in users:
            user = create_user(
                session,
                username=username,
                password=DEMO_PASSWORD,
                role=role,
                language="fr",
                sites=list(sites),
            )
            audit.record(
                session,
                actor=admin,
                action="user.created",
                entity_type="user",
                entity_id=user.id,
                data={"username": username, "role": role},
            )
        session.commit()
        point = scheduler.create_delivery_point(
            session,
            name=HOSPITAL[0],
            address=HOSPITAL[1],
            lat=HOSPITAL[2],
            lon=HOSPITAL[3],
            actor=admin,
        )
        part_ids: dict[str, UUID] = {}
        for name, category, mesh in (
            ("Serre-tête de visière", "face-shield", face_shield_headband()),
            ("Attache-masque (ear saver)", "mask", ear_saver()),
            ("Ouvre-porte sans contact", "hygiene", door_opener()),
        ):
            part = catalog.create_part(session, name=name, category=category, actor=admin)
            version = catalog.add_design_version(
                session,
                runtime.store,
                part_id=part.id,
                model=_stl(mesh),
                file_name=f"{category}.stl",
                actor=admin,
                max_upload_bytes=runtime.settings.max_upload_bytes,
                licence="CC-BY-4.0",
                author="distrifab demo",
                source="catalog/demo_parts.py",
            )
            catalog.approve_version(session, version_id=version.id, actor=admin)
            if category == "face-shield":
                revise_plan(
                    session,
                    design_version_id=version.id,
                    actor=admin,
                    standard="EN 166:2001",
                    standard_note="French adapted procedure for non-certified visors (2020)",
                    checks=HEADBAND_CHECKS,
                    aql=2.5,
                )
                session.commit()
            part_ids[name] = part.id
        return DemoNetwork(
            site_ids=site_ids, hospital_id=point.id, part_ids=part_ids, operators=operators
        )
