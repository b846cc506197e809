"""Typed builders of test records, through the real use cases where one exists."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta
from typing import Any

import trimesh
from sqlalchemy.orm import Session

from catalog import service as catalog
from catalog.models import DesignVersion, Part
from core.clock import utcnow
from core.identity import Actor, Role, User, create_user
from core.runtime import Runtime
from printers import service as printers
from printers.models import DriverKind, Printer, Site
from scheduler import service as scheduler
from scheduler.models import DeliveryPoint, Need

ADMIN = Actor.system("test-admin")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def make_site(session: Session, **overrides: Any) -> Site:
    values: dict[str, Any] = {
        "name": unique("site"),
        "lat": 49.44528,
        "lon": 3.125,
        "address": "Autrêches, Oise",
    }
    values.update(overrides)
    return printers.create_site(session, actor=ADMIN, **values)


def make_user(
    session: Session, role: Role, *, sites: tuple[Site, ...] = (), password: str = "password-123"
) -> User:
    user = create_user(
        session, username=unique(role.value), password=password, role=role, sites=list(sites)
    )
    session.commit()
    return user


def actor_of(user: User) -> Actor:
    return Actor.of(user)


def make_delivery_point(session: Session, **overrides: Any) -> DeliveryPoint:
    values: dict[str, Any] = {"name": unique("hospital"), "lat": 49.415, "lon": 2.82306}
    values.update(overrides)
    return scheduler.create_delivery_point(session, actor=ADMIN, **values)


def stl_bytes(mesh: trimesh.Trimesh) -> bytes:
    buffer = io.BytesIO()
    mesh.export(buffer, file_type="stl")
    return buffer.getvalue()


def make_part(
    runtime: Runtime,
    session: Session,
    mesh: trimesh.Trimesh,
    *,
    approve: bool = True,
    material_key: str = "PLA",
) -> tuple[Part, DesignVersion]:
    part = catalog.create_part(
        session, name=unique("part"), actor=ADMIN, default_material_key=material_key
    )
    version = catalog.add_design_version(
        session,
        runtime.store,
        part_id=part.id,
        model=stl_bytes(mesh),
        file_name="part.stl",
        actor=ADMIN,
        max_upload_bytes=runtime.settings.max_upload_bytes,
        licence="CC-BY-4.0",
    )
    if approve:
        version = catalog.approve_version(session, version_id=version.id, actor=ADMIN)
    return part, version


def make_printer(
    runtime: Runtime,
    session: Session,
    site: Site,
    *,
    base_url: str,
    api_key: str,
    driver: DriverKind = DriverKind.OCTOPRINT,
    profile_key: str = "prusa-mk3s",
    material_key: str | None = "PLA",
) -> Printer:
    printer = printers.register_printer(
        session,
        site_id=site.id,
        name=unique("printer"),
        driver=driver,
        base_url=base_url,
        api_key=api_key,
        profile_key=profile_key,
        actor=ADMIN,
        secret_key=runtime.secret_key,
    )
    if material_key:
        printer = printers.load_material(
            session,
            printer_id=printer.id,
            material_key=material_key,
            actor=ADMIN,
            remaining_g=1000.0,
        )
    return printer


def make_need(
    session: Session,
    part: Part,
    point: DeliveryPoint,
    *,
    quantity: int = 4,
    due_in: timedelta = timedelta(days=2),
    priority: int = 3,
) -> Need:
    return scheduler.post_need(
        session,
        part_id=part.id,
        quantity=quantity,
        due_at=utcnow() + due_in,
        delivery_point_id=point.id,
        priority=priority,
        actor=ADMIN,
    )
