"""Request and response bodies of the quality, traceability, waste and audit routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.schemas.common import ReadModel
from quality.models import Disposition, RecyclingStatus, Verdict, WasteKind

IdempotencyKey = Field(
    default=None,
    min_length=8,
    max_length=64,
    pattern=r"^[A-Za-z0-9._:-]+$",
    description="Chosen by the client; the same key sent again returns the first result",
)

# --- quality plans ---------------------------------------------------------------


class CheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1, max_length=64)
    kind: Literal["dimensional", "visual", "functional", "marking", "ifu"]
    label: str = Field(default="", max_length=256)
    reference: str = Field(default="", max_length=256, description="Clause or note it comes from")
    nominal_mm: float | None = Field(default=None, ge=0, le=10_000)
    tolerance_mm: float | None = Field(default=None, ge=0, le=1_000)
    expected: str = Field(default="", max_length=256, description="Marking text or IFU version")


class QualityPlanCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "standard": "EN 166:2001",
                    "standard_note": "Non-certified visor, French adapted procedure (April 2020)",
                    "aql": 2.5,
                    "checks": [
                        {
                            "key": "width",
                            "kind": "dimensional",
                            "label": "Headband inner width",
                            "nominal_mm": 181.0,
                            "tolerance_mm": 1.0,
                        },
                        {"key": "edges", "kind": "visual", "label": "No sharp edge or burr"},
                        {"key": "ifu", "kind": "ifu", "label": "IFU", "expected": "IFU-visor v3"},
                    ],
                }
            ]
        },
    )
    standard: str = Field(min_length=1, max_length=128)
    standard_note: str = Field(default="", max_length=4000)
    aql: float = Field(default=2.5, description="1.0, 2.5 or 4.0")
    checks: list[CheckIn] = Field(default_factory=list, max_length=50)


class QualityPlanRead(ReadModel):
    id: UUID
    design_version_id: UUID
    revision: int
    standard: str
    standard_note: str
    aql: float
    inspection_level: str
    checks: list[dict[str, Any]]
    created_at: datetime


class SampleItemRead(BaseModel):
    sample: int
    job_id: UUID
    copy_number: int = Field(alias="copy", description="Which copy on the plate")


class InspectionPlanRead(BaseModel):
    """What to draw and check before measuring (ISO 2859-1, level II)."""

    job_ids: list[UUID]
    site_id: UUID
    design_version_id: UUID
    lot_size: int
    code_letter: str
    aql: float
    severity: str
    sample_size: int
    accept_number: int
    reject_number: int
    full_inspection: bool
    quality_plan_id: UUID | None
    plan_revision: int | None
    standard: str
    standard_note: str
    checks: list[dict[str, Any]]
    sample: list[SampleItemRead]


# --- inspections -------------------------------------------------------------------


class MeasurementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sample: int = Field(ge=1, le=100_000)
    check: str = Field(min_length=1, max_length=64)
    value: float | None = Field(default=None, ge=-100_000, le=100_000)
    ok: bool | None = None
    text: str | None = Field(default=None, max_length=256)
    note: str = Field(default="", max_length=1000)


class InspectionCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "defective_count": 0,
                    "measurements": [
                        {"sample": 1, "check": "width_mm", "value": 181.2},
                        {"sample": 1, "check": "edges", "ok": True},
                    ],
                }
            ]
        },
    )
    defective_count: int | None = Field(
        default=None, ge=0, le=100_000, description="Needed only when the plan has no checks"
    )
    measurements: list[MeasurementIn] = Field(default_factory=list, max_length=20_000)
    note: str = Field(default="", max_length=4000)
    cause: str = Field(
        default="", max_length=4000, description="For a rejected lot: what went wrong"
    )
    disposition: Disposition = Field(
        default=Disposition.REPRINT, description="What happens to the lot if it is rejected"
    )
    idempotency_key: str | None = IdempotencyKey


class LotInspectionCreate(InspectionCreate):
    model_config = ConfigDict(extra="forbid")
    job_ids: list[UUID] = Field(min_length=1, max_length=500)


class InspectionRead(ReadModel):
    id: UUID
    job_id: UUID
    attempt: int
    site_id: UUID | None
    design_version_id: UUID | None
    quality_plan_id: UUID | None
    severity: str
    aql: float
    lot_size: int
    code_letter: str
    sample_size: int
    accept_number: int
    reject_number: int
    defective_count: int
    sample: list[dict[str, Any]]
    measurements: list[dict[str, Any]]
    verdict: Verdict
    inspected_at: datetime
    inspector_id: UUID | None
    note: str


class SamplingResume(BaseModel):
    model_config = ConfigDict(extra="forbid")
    design_version_id: UUID
    site_id: UUID
    corrective_action: str = Field(min_length=3, max_length=4000)


class SamplingResumptionRead(ReadModel):
    id: UUID
    design_version_id: UUID
    site_id: UUID
    corrective_action: str
    resumed_at: datetime


# --- non-conformities --------------------------------------------------------------


class NonConformityRead(ReadModel):
    id: UUID
    inspection_id: UUID
    job_id: UUID
    quantity: int
    cause: str
    disposition: str
    disposition_at: datetime | None
    approved_by_id: UUID | None
    approved_at: datetime | None
    status: str
    opened_at: datetime
    closed_at: datetime | None
    closure_note: str


class DispositionCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"disposition": "reprint"}]}
    )
    disposition: Literal["reprint", "scrap", "use_as_is"]
    note: str = Field(default="", max_length=4000)


class ConcessionApproval(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(default="", max_length=4000)


class Closure(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(min_length=3, max_length=4000, description="What was verified or corrected")


# --- deliveries and certificates -------------------------------------------------


class DeliveryCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"recipient": "Pharmacie centrale"}]}
    )
    recipient: str = Field(default="", max_length=128)
    job_ids: list[UUID] | None = Field(
        default=None, min_length=1, max_length=2000, description="Default: every passed plate"
    )
    delivered_at: AwareDatetime | None = None
    idempotency_key: str | None = IdempotencyKey


class DeliveryRead(ReadModel):
    id: UUID
    need_id: UUID
    delivery_point_id: UUID
    quantity: int
    recipient: str
    delivered_at: datetime


class CertificateRead(ReadModel):
    id: UUID
    delivery_id: UUID
    number: str
    issued_at: datetime
    sha256: str


class CertificateCheck(BaseModel):
    ok: bool
    number: str
    sha256: str
    problems: list[str]
    differences: list[str]
    document_sha256: str | None = None


# --- waste and recycling -----------------------------------------------------------


class WasteCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "site_id": "5b0e4e4e-8a55-4c7e-9a7b-0c6e1c1f6b1a",
                    "material_key": "PLA",
                    "mass_g": 85.5,
                    "kind": "support_and_brim",
                }
            ]
        },
    )
    site_id: UUID
    material_key: str = Field(min_length=1, max_length=32)
    mass_g: float = Field(gt=0, lt=1_000_000)
    kind: WasteKind
    printer_id: UUID | None = None
    job_id: UUID | None = None
    note: str = Field(default="", max_length=1000)
    idempotency_key: str | None = IdempotencyKey


class WasteRead(ReadModel):
    id: UUID
    material_key: str
    mass_g: float
    kind: WasteKind
    estimated: bool
    job_id: UUID | None
    printer_id: UUID | None
    site_id: UUID | None
    recycling_batch_id: UUID | None
    recorded_at: datetime
    note: str


class RecyclingBatchCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"material_key": "PLA", "destination": "Cycle 2"}]},
    )
    material_key: str = Field(min_length=1, max_length=32)
    destination: str = Field(default="Cycle 2", min_length=1, max_length=128)
    site_id: UUID | None = Field(default=None, description="None: a network-wide batch")
    carrier: str = Field(default="", max_length=128)
    waste_code: str = Field(default="07 02 13", pattern=r"^\d{2} \d{2} \d{2}\*?$")
    treatment_code: str = Field(default="R3", pattern=r"^[RD]\d{1,2}$")
    note: str = Field(default="", max_length=4000)


class RecyclingEntries(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entry_ids: list[UUID] = Field(min_length=1, max_length=5000)


class RecyclingSend(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sent_at: AwareDatetime | None = None
    carrier: str | None = Field(default=None, max_length=128)
    slip_number: str = Field(default="", max_length=64)


class RecyclingReturn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"returned_mass_g": 8200, "lot_code": "C2-PLA-0042"}]},
    )
    returned_mass_g: float = Field(ge=0, lt=100_000_000)
    returned_at: AwareDatetime | None = None
    lot_code: str | None = Field(default=None, min_length=1, max_length=64)


class RecyclingBatchRead(ReadModel):
    id: UUID
    material_key: str
    destination: str
    site_id: UUID | None
    status: RecyclingStatus
    total_mass_g: float
    waste_code: str
    treatment_code: str
    carrier: str
    slip_number: str
    sent_at: datetime | None
    returned_mass_g: float | None
    returned_at: datetime | None
    returned_spool_lot_id: UUID | None
    created_at: datetime


# --- balance and cost of quality ---------------------------------------------------


class BalanceRowRead(BaseModel):
    material: str
    site_id: UUID | None
    received_g: float
    recycled_back_g: float
    delivered_parts_g: float
    parts_in_stock_g: float
    waste_g: dict[str, float]
    wasted_g: float
    sent_to_recycling_g: float
    unexplained_g: float


class BalanceRead(BaseModel):
    since: datetime
    until: datetime
    rows: list[BalanceRowRead]
    totals: list[BalanceRowRead]


class CostOfQualityRead(BaseModel):
    need_id: UUID
    material: str
    quantity: int
    plates: int
    print_attempts: int
    reprints: int
    failed_prints: int
    lots_inspected: int
    lots_rejected: int
    concessions: int
    parts_sampled: int
    scrap_g: float
    scrap_failed_print_g: float
    scrap_rejected_part_g: float
    scrap_material_eur: str
    wasted_attempts_eur: str
    printer_time_lost_s: float


# --- audit ---------------------------------------------------------------------------


class AuditEntryRead(ReadModel):
    seq: int
    at: datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    data: dict[str, Any]
    hash: str
    prev_hash: str


class ChainProblemRead(BaseModel):
    seq: int | None
    kind: str
    detail: str


class ChainReportRead(BaseModel):
    ok: bool
    entries: int
    problems: list[ChainProblemRead]
