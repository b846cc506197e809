"""Quality plans, inspections, non-conformities, deliveries and certificates, waste and recycling."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import (
    Enum,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.db import Base


class QualityPlan(Base):
    """What to check on a design version's parts, against which standard, with which sampling.

    Plans are revised, never edited: an inspection points at the exact revision
    it applied, so an auditor reads the checks as they were on the day."""

    __tablename__ = "quality_plans"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    design_version_id: Mapped[UUID] = mapped_column(ForeignKey("design_versions.id"), index=True)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    standard: Mapped[str] = mapped_column(String(128), default="")
    # Free text for what the standard reference alone does not say, e.g. the
    # French adapted procedure of April 2020 for non-certified visors.
    standard_note: Mapped[str] = mapped_column(Text, default="")
    aql: Mapped[float] = mapped_column(Float, default=2.5)
    inspection_level: Mapped[str] = mapped_column(String(8), default="II")
    # [{"key": "width", "kind": "dimensional", "label": ..., "nominal_mm": .., "tolerance_mm": ..}, ...]
    checks: Mapped[list[Any]] = mapped_column(default=list)
    created_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint(
            "design_version_id", "revision", name="uq_quality_plans_design_version_revision"
        ),
    )


class Verdict(StrEnum):
    PASSED = "passed"
    REJECTED = "rejected"


class Inspection(Base):
    """The inspection of one lot: one plate, or several plates of one design from one site."""

    __tablename__ = "inspections"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    # The lot's first plate, kept for lookups; every plate is in inspection_jobs.
    job_id: Mapped[UUID] = mapped_column(ForeignKey("jobs.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    quality_plan_id: Mapped[UUID | None] = mapped_column(ForeignKey("quality_plans.id"))
    design_version_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("design_versions.id"), index=True
    )
    site_id: Mapped[UUID | None] = mapped_column(ForeignKey("sites.id"), index=True)
    severity: Mapped[str] = mapped_column(String(16), default="normal")
    aql: Mapped[float] = mapped_column(Float, default=2.5)
    lot_size: Mapped[int] = mapped_column(Integer)
    code_letter: Mapped[str] = mapped_column(String(2))
    sample_size: Mapped[int] = mapped_column(Integer)
    accept_number: Mapped[int] = mapped_column(Integer)
    reject_number: Mapped[int] = mapped_column(Integer)
    defective_count: Mapped[int] = mapped_column(Integer)
    # The parts drawn: [{"sample": 1, "job_id": "...", "copy": 3}, ...]
    sample: Mapped[list[Any]] = mapped_column(default=list)
    # [{"sample": 1, "check": "width", "value": 181.2, "ok": true}, ...]
    measurements: Mapped[list[Any]] = mapped_column(default=list)
    verdict: Mapped[Verdict] = mapped_column(Enum(Verdict, native_enum=False, length=16))
    inspector_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id"))
    inspected_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    note: Mapped[str] = mapped_column(Text, default="")
    # A client's retry of the same submission finds this and gets the same inspection.
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True)


class InspectionJob(Base):
    """A plate (job attempt) inspected as part of a lot; a plate attempt is inspected once."""

    __tablename__ = "inspection_jobs"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    inspection_id: Mapped[UUID] = mapped_column(ForeignKey("inspections.id"), index=True)
    job_id: Mapped[UUID] = mapped_column(ForeignKey("jobs.id"))
    attempt: Mapped[int] = mapped_column(Integer)
    copies: Mapped[int] = mapped_column(Integer)
    print_run_id: Mapped[UUID | None] = mapped_column(ForeignKey("print_runs.id"))

    __table_args__ = (UniqueConstraint("job_id", "attempt"),)


class SamplingResumption(Base):
    """Sampling of a design at a site restarts after discontinuation (ISO 2859-1 §9.4)
    only once a corrective action is recorded by a coordinator."""

    __tablename__ = "sampling_resumptions"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    design_version_id: Mapped[UUID] = mapped_column(ForeignKey("design_versions.id"), index=True)
    site_id: Mapped[UUID] = mapped_column(ForeignKey("sites.id"))
    corrective_action: Mapped[str] = mapped_column(Text)
    resumed_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id"))
    resumed_at: Mapped[datetime] = mapped_column(default=utcnow)


class Disposition(StrEnum):
    PENDING = "pending"
    REPRINT = "reprint"
    SCRAP = "scrap"
    USE_AS_IS = "use_as_is"


class NonConformity(Base):
    __tablename__ = "non_conformities"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    inspection_id: Mapped[UUID] = mapped_column(ForeignKey("inspections.id"), index=True)
    job_id: Mapped[UUID] = mapped_column(ForeignKey("jobs.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer, default=0)
    cause: Mapped[str] = mapped_column(Text, default="")
    disposition: Mapped[str] = mapped_column(String(32), default=Disposition.PENDING.value)
    disposition_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id"))
    disposition_at: Mapped[datetime | None]
    # "use as is" is a concession: someone other than the inspector signs it.
    approved_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="open")
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]
    closed_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id"))
    closure_note: Mapped[str] = mapped_column(Text, default="")


class Delivery(Base):
    """A batch handed over at a delivery point: the unit a certificate of conformity covers."""

    __tablename__ = "deliveries"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    need_id: Mapped[UUID] = mapped_column(ForeignKey("needs.id"), index=True)
    delivery_point_id: Mapped[UUID] = mapped_column(ForeignKey("delivery_points.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    recipient: Mapped[str] = mapped_column(String(128), default="")
    delivered_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    delivered_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id"))
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True)


class Certificate(Base):
    """A certificate of conformity, frozen when the batch is delivered.

    ``content_json`` is the canonical JSON the PDF is rendered from; ``sha256``
    is its hash, printed on the PDF and written in the audit trail."""

    __tablename__ = "certificates"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    delivery_id: Mapped[UUID] = mapped_column(ForeignKey("deliveries.id"), unique=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    issued_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id"))
    content_json: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))


class WasteKind(StrEnum):
    FAILED_PRINT = "failed_print"
    REJECTED_PART = "rejected_part"
    SUPPORT_AND_BRIM = "support_and_brim"
    PURGE = "purge"
    SPOOL_END = "spool_end"


class RecyclingStatus(StrEnum):
    OPEN = "open"
    SENT = "sent"
    RETURNED = "returned"


class RecyclingBatch(Base):
    """Waste of ONE material sent to a recycler; never mixed (PLA, PETG, ABS kept apart)."""

    __tablename__ = "recycling_batches"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    material_key: Mapped[str] = mapped_column(String(32))
    destination: Mapped[str] = mapped_column(String(128))
    site_id: Mapped[UUID | None] = mapped_column(ForeignKey("sites.id"))
    status: Mapped[str] = mapped_column(String(16), default=RecyclingStatus.OPEN.value)
    total_mass_g: Mapped[float] = mapped_column(Float, default=0.0)
    # The French outgoing-waste register (arrêté du 31 mai 2021) asks for the
    # waste code, the treatment code, the carrier and the tracking slip.
    waste_code: Mapped[str] = mapped_column(String(16), default="07 02 13")
    treatment_code: Mapped[str] = mapped_column(String(8), default="R3")
    carrier: Mapped[str] = mapped_column(String(128), default="")
    slip_number: Mapped[str] = mapped_column(String(64), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id"))
    sent_at: Mapped[datetime | None]
    returned_mass_g: Mapped[float | None] = mapped_column(Float)
    returned_at: Mapped[datetime | None]
    # Recycled filament comes back as a spool lot, traced into later prints.
    returned_spool_lot_id: Mapped[UUID | None] = mapped_column(ForeignKey("spool_lots.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    # Target of the waste entries' (batch, material) key: the database itself
    # refuses a PETG entry in a PLA batch, whatever the code does.
    __table_args__ = (
        UniqueConstraint("id", "material_key", name="uq_recycling_batches_id_material"),
    )


class WasteEntry(Base):
    __tablename__ = "waste_entries"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    material_key: Mapped[str] = mapped_column(String(32), index=True)
    mass_g: Mapped[float] = mapped_column(Float)
    kind: Mapped[WasteKind] = mapped_column(Enum(WasteKind, native_enum=False, length=24))
    # From progress x sliced grams (failed prints) or sliced grams (rejected lots), not weighed.
    estimated: Mapped[bool] = mapped_column(default=False)
    job_id: Mapped[UUID | None] = mapped_column(ForeignKey("jobs.id"), index=True)
    print_run_id: Mapped[UUID | None] = mapped_column(ForeignKey("print_runs.id"), unique=True)
    inspection_id: Mapped[UUID | None] = mapped_column(ForeignKey("inspections.id"), index=True)
    printer_id: Mapped[UUID | None] = mapped_column(ForeignKey("printers.id"))
    site_id: Mapped[UUID | None] = mapped_column(ForeignKey("sites.id"), index=True)
    spool_lot_id: Mapped[UUID | None] = mapped_column(ForeignKey("spool_lots.id"))
    recycling_batch_id: Mapped[UUID | None] = mapped_column(index=True)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    recorded_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(Text, default="")
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True)

    __table_args__ = (
        ForeignKeyConstraint(
            ["recycling_batch_id", "material_key"],
            ["recycling_batches.id", "recycling_batches.material_key"],
            name="fk_waste_entries_batch_material",
        ),
    )
