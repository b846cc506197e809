"""Request and response bodies of the v1 API."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.schemas.common import ReadModel
from core.identity import Role
from printers.models import DriverKind, PrinterStatusValue, SiteKind
from scheduler.models import JobState, NeedStatus

# --- auth and users -----------------------------------------------------------


class TokenRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"username": "claire", "password": "visiere-2020"}]},
    )
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    name: str = Field(default="", max_length=64, description="A label for this token")


class TokenRead(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105  # the OAuth word, not a secret
    expires_at: datetime


class UserCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "username": "marc",
                    "password": "imprimante-autreches",
                    "role": "operator",
                    "site_ids": ["5b0e4e4e-8a55-4c7e-9a7b-0c6e1c1f6b1a"],
                    "language": "fr",
                }
            ]
        },
    )
    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    password: str = Field(min_length=8, max_length=256)
    role: Role
    display_name: str = Field(default="", max_length=128)
    language: str | None = Field(default=None, pattern=r"^(fr|en)$")
    site_ids: list[UUID] = Field(default_factory=list)


class UserRead(ReadModel):
    id: UUID
    username: str
    display_name: str
    role: Role
    language: str | None
    active: bool
    site_ids: list[UUID] = Field(default_factory=list)


# --- sites, printers ----------------------------------------------------------


class SiteCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "L'Hermitage",
                    "kind": "third_place",
                    "address": "Autrêches, Oise",
                    "lat": 49.44528,
                    "lon": 3.125,
                    "opening_hours": {"mon": [["09:00", "18:00"]], "sat": [["10:00", "16:00"]]},
                }
            ]
        },
    )
    name: str = Field(min_length=1, max_length=128)
    kind: SiteKind = SiteKind.FABLAB
    address: str = Field(default="", max_length=256)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    timezone: str = Field(default="Europe/Paris", max_length=64)
    opening_hours: dict[str, list[list[str]]] = Field(
        default_factory=dict, description="Local weekly hours; empty means always staffed"
    )
    contact: str = Field(default="", max_length=256)


class SiteRead(ReadModel):
    id: UUID
    name: str
    kind: SiteKind
    address: str
    lat: float
    lon: float
    timezone: str
    opening_hours: dict[str, Any]
    contact: str


class PrinterCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "site_id": "5b0e4e4e-8a55-4c7e-9a7b-0c6e1c1f6b1a",
                    "name": "MK3S-1",
                    "driver": "octoprint",
                    "base_url": "http://192.168.1.20",
                    "api_key": "A1B2C3D4E5F6",
                    "profile_key": "prusa-mk3s",
                }
            ]
        },
    )
    site_id: UUID
    name: str = Field(min_length=1, max_length=128)
    driver: DriverKind = DriverKind.OCTOPRINT
    base_url: str = Field(min_length=8, max_length=512, pattern=r"^https?://")
    api_key: str = Field(
        min_length=1, max_length=256, description="Stored encrypted, never returned"
    )
    profile_key: str = Field(min_length=1, max_length=64)


class PrinterRead(ReadModel):
    """A printer as distrifab last saw it. The API key is never part of it."""

    id: UUID
    site_id: UUID
    name: str
    driver: DriverKind
    base_url: str
    profile_key: str
    enabled: bool
    status: PrinterStatusValue
    status_text: str
    status_error: str | None
    progress_pct: float | None
    current_file: str | None
    last_seen_at: datetime | None
    needs_clearing: bool
    loaded_material_key: str | None = None
    loaded_colour: str
    material_remaining_g: float | None


class MaterialLoad(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"material_key": "PETG", "colour": "clear", "remaining_g": 1000}]
        },
    )
    material_key: str = Field(min_length=1, max_length=32)
    colour: str = Field(default="", max_length=32)
    remaining_g: float = Field(ge=0, le=100_000)
    spool_lot_id: UUID | None = None


# --- catalogue -----------------------------------------------------------------


class MaterialRead(ReadModel):
    key: str
    name: str
    density_g_cm3: float
    price_eur_per_kg: Decimal
    nozzle_temp_c: int
    bed_temp_c: int


class ProfileRead(ReadModel):
    key: str
    name: str
    spec: dict[str, Any]


class PartCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Serre-tête de visière",
                    "description": "Headband of a face shield, EN 166 visor holder",
                    "category": "face-shield",
                    "default_material_key": "PETG",
                }
            ]
        },
    )
    name: str = Field(min_length=1, max_length=128)
    description: str = Field(default="", max_length=4000)
    category: str = Field(default="", max_length=64)
    default_material_key: str = Field(default="PLA", max_length=32)


class DesignVersionRead(ReadModel):
    id: UUID
    part_id: UUID
    number: int
    model_hash: str
    model_file_name: str
    licence: str
    source: str
    author: str
    change_note: str
    status: str
    size_x_mm: float
    size_y_mm: float
    size_z_mm: float
    volume_mm3: float
    check_report: dict[str, Any]
    approved_at: datetime | None


class PartRead(ReadModel):
    id: UUID
    name: str
    description: str
    category: str
    default_material_key: str
    versions: list[DesignVersionRead] = Field(default_factory=list)


# --- needs, jobs, plans ------------------------------------------------------


class DeliveryPointCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "CH Compiègne-Noyon",
                    "kind": "hospital",
                    "address": "8 avenue Henri Adnot, 60200 Compiègne",
                    "lat": 49.415,
                    "lon": 2.82306,
                }
            ]
        },
    )
    name: str = Field(min_length=1, max_length=128)
    kind: str = Field(default="hospital", max_length=32)
    address: str = Field(default="", max_length=256)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    contact: str = Field(default="", max_length=256)


class DeliveryPointRead(ReadModel):
    id: UUID
    name: str
    kind: str
    address: str
    lat: float
    lon: float


class NeedCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "part_id": "1f7c1c1e-2b1e-4c55-8f0e-7d5b3a7c9e10",
                    "quantity": 120,
                    "due_at": "2026-12-01T18:00:00+01:00",
                    "delivery_point_id": "0e3f5a9c-4d2b-4a8e-9c1f-2b7d6e5a4c3b",
                    "priority": 5,
                }
            ]
        },
    )
    part_id: UUID
    quantity: int = Field(ge=1, le=100_000)
    due_at: AwareDatetime
    delivery_point_id: UUID
    priority: int = Field(default=3, ge=1, le=5, description="1 routine ... 5 life-critical")
    material_key: str | None = Field(default=None, max_length=32)
    note: str = Field(default="", max_length=4000)


class NeedUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"due_at": "2026-12-03T12:00:00+01:00", "priority": 4}]},
    )
    due_at: AwareDatetime | None = None
    priority: int | None = Field(default=None, ge=1, le=5)


class NeedProgressRead(BaseModel):
    quantity: int
    delivered: int
    passed: int
    printed: int
    in_progress: int
    planned: int
    queued: int
    forecast_delivery_at: datetime | None
    late: bool


class NeedRead(ReadModel):
    id: UUID
    part_id: UUID
    design_version_id: UUID
    material_key: str
    quantity: int
    due_at: datetime
    delivery_point_id: UUID
    priority: int
    status: NeedStatus
    note: str
    created_at: datetime
    delivered_at: datetime | None
    progress: NeedProgressRead | None = None


class JobRead(ReadModel):
    id: UUID
    need_id: UUID
    index: int
    design_version_id: UUID
    material_key: str
    copies: int
    state: JobState
    printer_id: UUID | None
    site_id: UUID | None
    planned_start_at: datetime | None
    planned_end_at: datetime | None
    planned_delivery_at: datetime | None
    gcode_hash: str | None
    attempt: int
    state_changed_at: datetime
    progress_pct: float | None = Field(default=None, description="Progress of the print in flight")


class CancelRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "warping on the first layers"}]}
    )
    reason: str = Field(min_length=1, max_length=1000)


class RefuseRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "printer under maintenance until Friday"}]},
    )
    reason: str = Field(min_length=1, max_length=1000)


class PlanRead(ReadModel):
    id: UUID
    created_at: datetime
    trigger: str
    method: str
    status: str
    weighted_tardiness_s: float
    makespan_s: float
    travel_s: float
    bound: float | None
    solve_time_s: float
    jobs_planned: int
    jobs_unassigned: int
    jobs_moved: int
    explanation: dict[str, Any]
