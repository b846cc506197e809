"""Catalogue use cases: reference data, parts, design versions, approvals and cached slices."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from decimal import Decimal
from typing import Any
from uuid import UUID

import trimesh
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog.meshcheck import load_mesh
from catalog.models import (
    DesignStatus,
    DesignVersion,
    Material,
    Part,
    PrinterProfileRecord,
    SliceRecord,
    SpoolLot,
)
from catalog.plate import copies_that_fit
from catalog.profiles import load_materials, load_profiles
from catalog.slicer import slice_mesh
from catalog.types import MaterialSpec, PrinterProfile, SliceSettings
from core import audit
from core.clock import utcnow
from core.errors import Conflict, Invalid, NotFound
from core.identity import Actor, Role, require_role
from core.storage import BlobStore


def seed_reference_data(session: Session) -> None:
    """Insert the shipped materials and printer profiles that are missing (idempotent, flush only)."""
    known_materials = set(session.scalars(select(Material.key)))
    for spec in load_materials().values():
        if spec.key not in known_materials:
            session.add(
                Material(
                    key=spec.key,
                    name=spec.name,
                    density_g_cm3=spec.density_g_cm3,
                    price_eur_per_kg=Decimal(str(spec.price_eur_per_kg)),
                    nozzle_temp_c=spec.nozzle_temp_c,
                    bed_temp_c=spec.bed_temp_c,
                    spec=dataclasses.asdict(spec),
                )
            )
    known_profiles = set(session.scalars(select(PrinterProfileRecord.key)))
    for profile in load_profiles().values():
        if profile.key not in known_profiles:
            session.add(
                PrinterProfileRecord(
                    key=profile.key, name=profile.name, spec=dataclasses.asdict(profile)
                )
            )
    session.flush()


def find_materials(session: Session) -> list[Material]:
    return list(session.scalars(select(Material).order_by(Material.key)))


def get_material(session: Session, key: str) -> Material:
    material = session.scalar(select(Material).where(Material.key == key))
    if material is None:
        keys = ", ".join(m.key for m in find_materials(session))
        raise NotFound(f"no material {key!r}; known materials: {keys}")
    return material


def material_spec(material: Material) -> MaterialSpec:
    fields = {f.name for f in dataclasses.fields(MaterialSpec)}
    return MaterialSpec(**{k: v for k, v in material.spec.items() if k in fields})


def find_profiles(session: Session) -> list[PrinterProfileRecord]:
    return list(session.scalars(select(PrinterProfileRecord).order_by(PrinterProfileRecord.key)))


def get_profile(session: Session, key: str) -> PrinterProfile:
    record = session.scalar(select(PrinterProfileRecord).where(PrinterProfileRecord.key == key))
    if record is None:
        keys = ", ".join(p.key for p in find_profiles(session))
        raise NotFound(f"no printer profile {key!r}; known profiles: {keys}")
    fields = {f.name for f in dataclasses.fields(PrinterProfile)}
    return PrinterProfile(**{k: v for k, v in record.spec.items() if k in fields})


def add_spool_lot(
    session: Session,
    *,
    material_key: str,
    lot_code: str,
    received_mass_g: float,
    actor: Actor,
    supplier: str = "",
    colour: str = "",
    site_id: UUID | None = None,
    recycled: bool = False,
) -> SpoolLot:
    require_role(actor, Role.OPERATOR, Role.COORDINATOR)
    if received_mass_g <= 0:
        raise Invalid("a spool lot's received mass must be positive")
    material = get_material(session, material_key)
    exists = session.scalar(
        select(SpoolLot.id).where(
            SpoolLot.material_id == material.id, SpoolLot.lot_code == lot_code
        )
    )
    if exists is not None:
        raise Conflict(f"the lot {lot_code} of {material_key} is already recorded")
    lot = SpoolLot(
        material_id=material.id,
        lot_code=lot_code,
        supplier=supplier,
        colour=colour,
        received_mass_g=received_mass_g,
        site_id=site_id,
        recycled=recycled,
    )
    session.add(lot)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="spool_lot.received",
        entity_type="spool_lot",
        entity_id=lot.id,
        data={"material": material_key, "lot_code": lot_code, "mass_g": received_mass_g},
    )
    session.commit()
    return lot


def create_part(
    session: Session,
    *,
    name: str,
    actor: Actor,
    description: str = "",
    category: str = "",
    default_material_key: str = "PLA",
) -> Part:
    require_role(actor, Role.COORDINATOR)
    name = name.strip()
    if not name:
        raise Invalid("a part needs a name")
    get_material(session, default_material_key)
    if session.scalar(select(Part.id).where(Part.name == name)) is not None:
        raise Conflict(f"a part named {name!r} exists already")
    part = Part(
        name=name,
        description=description,
        category=category,
        default_material_key=default_material_key,
    )
    session.add(part)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="part.created",
        entity_type="part",
        entity_id=part.id,
        data={"name": name},
    )
    session.commit()
    return part


def find_parts(session: Session) -> list[Part]:
    return list(session.scalars(select(Part).order_by(Part.name)))


def get_part(session: Session, part_id: UUID) -> Part:
    part = session.get(Part, part_id)
    if part is None:
        raise NotFound(f"no part {part_id}")
    return part


def get_version(session: Session, version_id: UUID) -> DesignVersion:
    version = session.get(DesignVersion, version_id)
    if version is None:
        raise NotFound(f"no design version {version_id}")
    return version


def add_design_version(
    session: Session,
    store: BlobStore,
    *,
    part_id: UUID,
    model: bytes,
    file_name: str,
    actor: Actor,
    max_upload_bytes: int,
    licence: str = "",
    source: str = "",
    author: str = "",
    change_note: str = "",
    unit: str | None = None,
) -> DesignVersion:
    """Check the model, then store it by hash and record a draft version.

    The file is stored only after every check passed, and the blob store is
    content-addressed, so a refused or repeated upload leaves nothing behind."""
    require_role(actor, Role.COORDINATOR)
    part = get_part(session, part_id)
    report = load_mesh(model, file_name, max_bytes=max_upload_bytes, unit=unit)
    mesh = report.mesh
    fits = {
        profile.key: copies_that_fit(mesh, profile, SliceSettings())
        for profile in (get_profile(session, r.key) for r in find_profiles(session))
    }
    if not any(fits.values()):
        raise Invalid(
            f"the model ({_size_text(mesh)}) is larger than the build volume of every printer profile"
        )
    number = (
        session.scalar(
            select(func.max(DesignVersion.number)).where(DesignVersion.part_id == part.id)
        )
        or 0
    ) + 1
    digest = store.put(model)
    extents = mesh.extents
    version = DesignVersion(
        part_id=part.id,
        number=number,
        model_hash=digest,
        model_file_name=_safe_name(file_name),
        licence=licence,
        source=source,
        author=author,
        change_note=change_note,
        size_x_mm=float(extents[0]),
        size_y_mm=float(extents[1]),
        size_z_mm=float(extents[2]),
        volume_mm3=float(abs(mesh.volume)),
        check_report={
            "repairs": list(report.repairs),
            "warnings": list(report.warnings),
            "copies_per_profile": fits,
            "unit": unit,
        },
        created_by_id=actor.user_id,
    )
    session.add(version)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="design_version.created",
        entity_type="design_version",
        entity_id=version.id,
        data={"part_id": part.id, "number": number, "model_hash": digest},
    )
    session.commit()
    return version


def approve_version(session: Session, *, version_id: UUID, actor: Actor) -> DesignVersion:
    """Approve a draft; earlier approved versions of the part retire (jobs keep their version)."""
    require_role(actor, Role.ADMIN)
    version = get_version(session, version_id)
    if version.status is DesignStatus.APPROVED:
        return version
    if version.status is DesignStatus.RETIRED:
        raise Conflict(f"version {version.number} of {version.part.name} is retired")
    for other in session.scalars(
        select(DesignVersion).where(
            DesignVersion.part_id == version.part_id,
            DesignVersion.status == DesignStatus.APPROVED,
        )
    ):
        other.status = DesignStatus.RETIRED
        audit.record(
            session,
            actor=actor,
            action="design_version.retired",
            entity_type="design_version",
            entity_id=other.id,
            data={"superseded_by": version.id},
        )
    version.status = DesignStatus.APPROVED
    version.approved_by_id = actor.user_id
    version.approved_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="design_version.approved",
        entity_type="design_version",
        entity_id=version.id,
        data={"part_id": version.part_id, "number": version.number},
    )
    session.commit()
    return version


def approved_version(session: Session, part_id: UUID) -> DesignVersion:
    version = session.scalar(
        select(DesignVersion).where(
            DesignVersion.part_id == part_id, DesignVersion.status == DesignStatus.APPROVED
        )
    )
    if version is None:
        raise Conflict("this part has no approved design version yet; it cannot be ordered")
    return version


def settings_key(settings: SliceSettings) -> tuple[str, dict[str, Any]]:
    values = dataclasses.asdict(settings)
    values.pop("copies")
    digest = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()
    return digest, values


def find_slice(
    session: Session,
    *,
    version_id: UUID,
    profile_key: str,
    material_key: str,
    copies: int,
    settings: SliceSettings,
) -> SliceRecord | None:
    digest, _ = settings_key(settings)
    return session.scalar(
        select(SliceRecord).where(
            SliceRecord.design_version_id == version_id,
            SliceRecord.profile_key == profile_key,
            SliceRecord.material_key == material_key,
            SliceRecord.copies == copies,
            SliceRecord.settings_hash == digest,
        )
    )


def load_version_mesh(store: BlobStore, version: DesignVersion) -> trimesh.Trimesh:
    report = load_mesh(
        store.get(version.model_hash),
        version.model_file_name,
        max_bytes=1 << 40,  # stored files passed the upload limit already
        unit=version.check_report.get("unit"),
    )
    mesh: trimesh.Trimesh = report.mesh
    return mesh


def ensure_slice(
    session: Session,
    store: BlobStore,
    *,
    version_id: UUID,
    profile_key: str,
    material_key: str,
    copies: int,
    settings: SliceSettings | None = None,
    mesh: trimesh.Trimesh | None = None,
) -> SliceRecord:
    """The cached slice for this key, slicing (pure, outside any lock) when missing.

    The cache key is the model's content (its hash and unit), the printer profile,
    the material, the copies and the settings: another version or part with the
    very same file reuses the G-code. Idempotent: two workers slicing the same key
    at once store the same G-code under the same hash and the unique key keeps one
    record."""
    settings = dataclasses.replace(settings or SliceSettings(), copies=copies)
    key = SliceKey(profile_key, material_key, copies, settings)
    cached = find_slice(
        session,
        version_id=version_id,
        profile_key=profile_key,
        material_key=material_key,
        copies=copies,
        settings=settings,
    )
    if cached is not None:
        return cached
    version = get_version(session, version_id)
    twin = _slice_of_same_model(session, version, key)
    if twin is not None:
        return _save_slice(session, _copy_record(twin, version_id), key)
    profile = get_profile(session, profile_key)
    material = material_spec(get_material(session, material_key))
    if mesh is None:
        mesh = load_version_mesh(store, version)
    session.rollback()  # do not hold the database while slicing (seconds of CPU)
    result = slice_mesh(mesh, profile, material, settings)
    digest, values = settings_key(settings)
    record = SliceRecord(
        design_version_id=version_id,
        profile_key=profile_key,
        material_key=material_key,
        copies=copies,
        settings_hash=digest,
        settings=values,
        gcode_hash=store.put(result.gcode.encode()),
        print_time_s=result.print_time_s,
        filament_mm=result.filament_mm,
        filament_g=result.filament_g,
        cost_eur=Decimal(str(round(result.cost_eur, 4))),
        layers=result.layers,
        warnings=list(result.warnings),
    )
    return _save_slice(session, record, key)


@dataclasses.dataclass(frozen=True, slots=True)
class SliceKey:
    profile_key: str
    material_key: str
    copies: int
    settings: SliceSettings


def _save_slice(session: Session, record: SliceRecord, key: SliceKey) -> SliceRecord:
    """Store ``record`` unless an equal one landed meanwhile (then return that one)."""

    def existing() -> SliceRecord | None:
        return find_slice(
            session,
            version_id=record.design_version_id,
            profile_key=key.profile_key,
            material_key=key.material_key,
            copies=key.copies,
            settings=key.settings,
        )

    found = existing()
    if found is not None:
        return found
    session.add(record)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()  # another worker stored the same slice first
        found = existing()
        if found is None:
            raise
        return found
    return record


def _slice_of_same_model(
    session: Session, version: DesignVersion, key: SliceKey
) -> SliceRecord | None:
    digest, _ = settings_key(key.settings)
    unit = version.check_report.get("unit")
    rows = session.execute(
        select(SliceRecord, DesignVersion.check_report)
        .join(DesignVersion, DesignVersion.id == SliceRecord.design_version_id)
        .where(
            DesignVersion.model_hash == version.model_hash,
            SliceRecord.profile_key == key.profile_key,
            SliceRecord.material_key == key.material_key,
            SliceRecord.copies == key.copies,
            SliceRecord.settings_hash == digest,
        )
    )
    # The same bytes read in another unit are another part.
    return next((record for record, report in rows if report.get("unit") == unit), None)


def _copy_record(twin: SliceRecord, version_id: UUID) -> SliceRecord:
    return SliceRecord(
        design_version_id=version_id,
        profile_key=twin.profile_key,
        material_key=twin.material_key,
        copies=twin.copies,
        settings_hash=twin.settings_hash,
        settings=twin.settings,
        gcode_hash=twin.gcode_hash,
        print_time_s=twin.print_time_s,
        filament_mm=twin.filament_mm,
        filament_g=twin.filament_g,
        cost_eur=twin.cost_eur,
        layers=twin.layers,
        warnings=twin.warnings,
    )


def _size_text(mesh: trimesh.Trimesh) -> str:
    x, y, z = (float(v) for v in mesh.extents)
    return f"{x:.1f} x {y:.1f} x {z:.1f} mm"


def _safe_name(file_name: str) -> str:
    base = file_name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c for c in base if c.isalnum() or c in "._- ")[:200].strip()
    return cleaned or "model"
