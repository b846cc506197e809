"""Materials, spool lots, printer profiles, parts, design versions and cached slices."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import Enum, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.clock import utcnow
from core.db import Base


class Material(Base):
    """A material family as the planner sees it (PLA, PETG, ABS); lots carry brand and colour."""

    __tablename__ = "materials"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    key: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    density_g_cm3: Mapped[float] = mapped_column(Float)
    price_eur_per_kg: Mapped[Decimal]
    nozzle_temp_c: Mapped[int] = mapped_column(Integer)
    bed_temp_c: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the full MaterialSpec


class SpoolLot(Base):
    """Filament received from a supplier (or back from the recycler), traced into every print."""

    __tablename__ = "spool_lots"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    material_id: Mapped[UUID] = mapped_column(ForeignKey("materials.id"), index=True)
    lot_code: Mapped[str] = mapped_column(String(64))
    supplier: Mapped[str] = mapped_column(String(128), default="")
    colour: Mapped[str] = mapped_column(String(32), default="")
    received_mass_g: Mapped[float] = mapped_column(Float)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    site_id: Mapped[UUID | None] = mapped_column(ForeignKey("sites.id"), index=True)
    recycled: Mapped[bool] = mapped_column(default=False)

    material: Mapped[Material] = relationship(lazy="joined")

    __table_args__ = (UniqueConstraint("material_id", "lot_code"),)


class PrinterProfileRecord(Base):
    """A printer model's slicing profile; seeded from catalog/data, editable by admins."""

    __tablename__ = "printer_profiles"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the full PrinterProfile


class Part(Base):
    __tablename__ = "parts"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(64), default="")
    default_material_key: Mapped[str] = mapped_column(String(32), default="PLA")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    versions: Mapped[list[DesignVersion]] = relationship(
        back_populates="part", order_by="DesignVersion.number"
    )


class DesignStatus(StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"
    RETIRED = "retired"


class DesignVersion(Base):
    __tablename__ = "design_versions"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    part_id: Mapped[UUID] = mapped_column(ForeignKey("parts.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    model_hash: Mapped[str] = mapped_column(String(64))
    model_file_name: Mapped[str] = mapped_column(String(255))
    licence: Mapped[str] = mapped_column(String(64), default="")
    source: Mapped[str] = mapped_column(String(512), default="")
    author: Mapped[str] = mapped_column(String(128), default="")
    change_note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[DesignStatus] = mapped_column(
        Enum(DesignStatus, native_enum=False, length=16), default=DesignStatus.DRAFT
    )
    size_x_mm: Mapped[float] = mapped_column(Float)
    size_y_mm: Mapped[float] = mapped_column(Float)
    size_z_mm: Mapped[float] = mapped_column(Float)
    volume_mm3: Mapped[float] = mapped_column(Float)
    check_report: Mapped[dict[str, Any]] = mapped_column(default=dict)  # repairs and warnings
    created_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    approved_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[datetime | None]

    part: Mapped[Part] = relationship(back_populates="versions", lazy="joined")

    __table_args__ = (UniqueConstraint("part_id", "number"),)


class SliceRecord(Base):
    """A slice of one design version for one profile, material, settings and copy count.

    Slices are immutable and cached by that key: a job keeps pointing at the
    G-code it was planned with even when a newer version is approved."""

    __tablename__ = "slices"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    design_version_id: Mapped[UUID] = mapped_column(ForeignKey("design_versions.id"), index=True)
    profile_key: Mapped[str] = mapped_column(String(64))
    material_key: Mapped[str] = mapped_column(String(32))
    copies: Mapped[int] = mapped_column(Integer)
    settings_hash: Mapped[str] = mapped_column(String(64))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    gcode_hash: Mapped[str] = mapped_column(String(64))
    print_time_s: Mapped[float] = mapped_column(Float)
    filament_mm: Mapped[float] = mapped_column(Float)
    filament_g: Mapped[float] = mapped_column(Float)
    cost_eur: Mapped[Decimal]
    layers: Mapped[int] = mapped_column(Integer)
    warnings: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint(
            "design_version_id", "profile_key", "material_key", "copies", "settings_hash"
        ),
    )
