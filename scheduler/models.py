"""Delivery points, needs, jobs (plates), print runs and stored plans."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from sqlalchemy import Enum, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.clock import utcnow
from core.db import Base

if TYPE_CHECKING:
    from catalog.models import DesignVersion, Part
    from printers.models import Printer


class DeliveryPoint(Base):
    """Where parts are needed: a hospital, a care home, a pharmacy."""

    __tablename__ = "delivery_points"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(32), default="hospital")
    address: Mapped[str] = mapped_column(String(256), default="")
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    contact: Mapped[str] = mapped_column(String(256), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class NeedStatus(StrEnum):
    OPEN = "open"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class Need(Base):
    __tablename__ = "needs"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    part_id: Mapped[UUID] = mapped_column(ForeignKey("parts.id"), index=True)
    # The approved version when the need was posted: later approvals never
    # change what was ordered.
    design_version_id: Mapped[UUID] = mapped_column(ForeignKey("design_versions.id"))
    material_key: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime]
    delivery_point_id: Mapped[UUID] = mapped_column(ForeignKey("delivery_points.id"), index=True)
    priority: Mapped[int] = mapped_column(Integer, default=3)  # 1 (routine) .. 5 (life-critical)
    status: Mapped[NeedStatus] = mapped_column(
        Enum(NeedStatus, native_enum=False, length=16), default=NeedStatus.OPEN
    )
    note: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]

    part: Mapped[Part] = relationship(lazy="joined")
    design_version: Mapped[DesignVersion] = relationship()
    delivery_point: Mapped[DeliveryPoint] = relationship(lazy="joined")
    jobs: Mapped[list[Job]] = relationship(back_populates="need", order_by="Job.index")


class JobState(StrEnum):
    QUEUED = "queued"
    PLANNED = "planned"
    ACCEPTED = "accepted"
    DISPATCHED = "dispatched"
    PRINTING = "printing"
    PRINTED = "printed"
    PASSED = "passed"
    DELIVERED = "delivered"
    REFUSED = "refused"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


class Job(Base):
    """One plate: ``copies`` copies of one design version, printed in one go."""

    __tablename__ = "jobs"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    need_id: Mapped[UUID] = mapped_column(ForeignKey("needs.id"), index=True)
    index: Mapped[int] = mapped_column(Integer)  # plate number within the need, from 1
    design_version_id: Mapped[UUID] = mapped_column(ForeignKey("design_versions.id"))
    material_key: Mapped[str] = mapped_column(String(32))
    copies: Mapped[int] = mapped_column(Integer)
    state: Mapped[JobState] = mapped_column(
        Enum(JobState, native_enum=False, length=16), default=JobState.QUEUED, index=True
    )
    printer_id: Mapped[UUID | None] = mapped_column(ForeignKey("printers.id"), index=True)
    site_id: Mapped[UUID | None] = mapped_column(ForeignKey("sites.id"), index=True)
    planned_start_at: Mapped[datetime | None]
    planned_end_at: Mapped[datetime | None]
    planned_delivery_at: Mapped[datetime | None]
    slice_id: Mapped[UUID | None] = mapped_column(ForeignKey("slices.id"))
    gcode_hash: Mapped[str | None] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    accepted_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id"))
    delivery_id: Mapped[UUID | None] = mapped_column(ForeignKey("deliveries.id"), index=True)
    state_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Optimistic lock: two writers that read the same version cannot both win.
    version: Mapped[int] = mapped_column(Integer, default=1)

    need: Mapped[Need] = relationship(back_populates="jobs")
    printer: Mapped[Printer | None] = relationship()

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class JobRefusal(Base):
    """An operator's refusal: the planner never proposes this printer for this job again."""

    __tablename__ = "job_refusals"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    job_id: Mapped[UUID] = mapped_column(ForeignKey("jobs.id"), index=True)
    printer_id: Mapped[UUID] = mapped_column(ForeignKey("printers.id"))
    reason: Mapped[str] = mapped_column(Text, default="")
    by_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class RunOutcome(StrEnum):
    DISPATCHED = "dispatched"
    PRINTING = "printing"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class PrintRun(Base):
    """One attempt at printing a job on one printer: what traceability points back to."""

    __tablename__ = "print_runs"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    job_id: Mapped[UUID] = mapped_column(ForeignKey("jobs.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    printer_id: Mapped[UUID] = mapped_column(ForeignKey("printers.id"), index=True)
    site_id: Mapped[UUID] = mapped_column(ForeignKey("sites.id"))
    operator_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id"))
    spool_lot_id: Mapped[UUID | None] = mapped_column(ForeignKey("spool_lots.id"))
    material_key: Mapped[str] = mapped_column(String(32))
    gcode_hash: Mapped[str] = mapped_column(String(64))
    file_name: Mapped[str] = mapped_column(String(255))
    filament_g: Mapped[float] = mapped_column(Float)
    outcome: Mapped[RunOutcome] = mapped_column(
        Enum(RunOutcome, native_enum=False, length=16), default=RunOutcome.DISPATCHED
    )
    progress_pct: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    dispatched_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    removed_at: Mapped[datetime | None]
    removed_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id"))

    __table_args__ = (UniqueConstraint("job_id", "attempt"),)


class PlanRecord(Base):
    """One run of the allocator, with what it achieved and why."""

    __tablename__ = "plans"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    trigger: Mapped[str] = mapped_column(String(64), default="")
    method: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    weighted_tardiness_s: Mapped[float] = mapped_column(Float)
    makespan_s: Mapped[float] = mapped_column(Float)
    travel_s: Mapped[float] = mapped_column(Float)
    bound: Mapped[float | None] = mapped_column(Float)
    solve_time_s: Mapped[float] = mapped_column(Float)
    jobs_planned: Mapped[int] = mapped_column(Integer)
    jobs_unassigned: Mapped[int] = mapped_column(Integer)
    jobs_moved: Mapped[int] = mapped_column(Integer, default=0)
    explanation: Mapped[dict[str, Any]] = mapped_column(default=dict)
