"""Sites, printers and each printer's event history."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from sqlalchemy import Enum, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.clock import utcnow
from core.db import Base

if TYPE_CHECKING:
    from catalog.models import Material, SpoolLot


class SiteKind(StrEnum):
    FABLAB = "fablab"
    SME = "sme"
    THIRD_PLACE = "third_place"
    SCHOOL = "school"
    MAKER = "maker"


class Site(Base):
    __tablename__ = "sites"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[SiteKind] = mapped_column(
        Enum(SiteKind, native_enum=False, length=16), default=SiteKind.FABLAB
    )
    address: Mapped[str] = mapped_column(String(256), default="")
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Paris")
    # Weekly hours when someone can start or remove a print, local time:
    # {"mon": [["09:00", "18:00"]], ...}; an empty mapping means always staffed.
    opening_hours: Mapped[dict[str, Any]] = mapped_column(default=dict)
    contact: Mapped[str] = mapped_column(String(256), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    printers: Mapped[list[Printer]] = relationship(back_populates="site")


class DriverKind(StrEnum):
    OCTOPRINT = "octoprint"
    SIMULATOR = "simulator"


class PrinterStatusValue(StrEnum):
    """What distrifab last knew; ``unknown`` until the first poll."""

    UNKNOWN = "unknown"
    OFFLINE = "offline"
    OPERATIONAL = "operational"
    PRINTING = "printing"
    PAUSED = "paused"
    CANCELLING = "cancelling"
    ERROR = "error"


class Printer(Base):
    __tablename__ = "printers"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    site_id: Mapped[UUID] = mapped_column(ForeignKey("sites.id"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    driver: Mapped[DriverKind] = mapped_column(Enum(DriverKind, native_enum=False, length=16))
    base_url: Mapped[str] = mapped_column(String(512))
    # Fernet token (core.crypto) of the OctoPrint API key; never returned by the API.
    api_key_encrypted: Mapped[str] = mapped_column(Text)
    profile_key: Mapped[str] = mapped_column(String(64))
    bed_x_mm: Mapped[float] = mapped_column(Float)
    bed_y_mm: Mapped[float] = mapped_column(Float)
    max_z_mm: Mapped[float] = mapped_column(Float)
    nozzle_mm: Mapped[float] = mapped_column(Float, default=0.4)
    enabled: Mapped[bool] = mapped_column(default=True)

    loaded_material_id: Mapped[UUID | None] = mapped_column(ForeignKey("materials.id"))
    loaded_spool_lot_id: Mapped[UUID | None] = mapped_column(ForeignKey("spool_lots.id"))
    loaded_colour: Mapped[str] = mapped_column(String(32), default="")
    material_remaining_g: Mapped[float | None] = mapped_column(Float)

    status: Mapped[PrinterStatusValue] = mapped_column(
        Enum(PrinterStatusValue, native_enum=False, length=16), default=PrinterStatusValue.UNKNOWN
    )
    status_text: Mapped[str] = mapped_column(String(128), default="")
    status_error: Mapped[str | None] = mapped_column(Text)
    progress_pct: Mapped[float | None] = mapped_column(Float)
    current_file: Mapped[str | None] = mapped_column(String(255))
    temperatures: Mapped[dict[str, Any]] = mapped_column(default=dict)
    last_seen_at: Mapped[datetime | None]
    last_polled_at: Mapped[datetime | None]
    missed_polls: Mapped[int] = mapped_column(Integer, default=0)
    # A finished print sits on the bed until someone takes it off: nothing new
    # may start before an operator marks it removed.
    needs_clearing: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    site: Mapped[Site] = relationship(back_populates="printers", lazy="joined")
    loaded_material: Mapped[Material | None] = relationship(lazy="joined")
    loaded_spool_lot: Mapped[SpoolLot | None] = relationship()


class PrinterEventKind(StrEnum):
    REGISTERED = "registered"
    ONLINE = "online"
    OFFLINE = "offline"
    ERROR = "error"
    PRINT_STARTED = "print_started"
    PRINT_DONE = "print_done"
    PRINT_FAILED = "print_failed"
    MATERIAL_LOADED = "material_loaded"
    CLEARED = "cleared"


class PrinterEvent(Base):
    """A printer's history (errors, comings and goings); the audit trail keeps the job side."""

    __tablename__ = "printer_events"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    printer_id: Mapped[UUID] = mapped_column(ForeignKey("printers.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    kind: Mapped[PrinterEventKind] = mapped_column(
        Enum(PrinterEventKind, native_enum=False, length=24)
    )
    message: Mapped[str] = mapped_column(Text, default="")
    job_id: Mapped[UUID | None]
