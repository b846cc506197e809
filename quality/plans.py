"""Quality plans: the checks to make on a design version's parts, the standard they refer to,
and the AQL the lots are sampled at. Plans are revised, never edited."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.models import DesignVersion
from core import audit
from core.errors import Invalid, NotFound
from core.identity import Actor, Role, ensure_can_act, require_role
from quality.models import QualityPlan
from quality.sampling import check_aql

DEFAULT_AQL = 2.5
MAX_CHECKS = 50


class CheckKind(StrEnum):
    DIMENSIONAL = "dimensional"  # a measured value against nominal ± tolerance
    VISUAL = "visual"  # pass/fail by eye (no burrs, no sharp edges)
    FUNCTIONAL = "functional"  # pass/fail by trying (the visor sheet clips hold)
    MARKING = "marking"  # the expected marking is present and legible
    IFU = "ifu"  # the instructions for use shipped are the expected version


@dataclass(frozen=True, slots=True)
class Check:
    key: str
    kind: CheckKind
    label: str
    reference: str = ""  # the clause or note of the standard it comes from, as written there
    nominal_mm: float | None = None
    tolerance_mm: float | None = None
    expected: str = ""  # the marking text or the instructions-for-use version

    def as_dict(self) -> dict[str, Any]:
        value: dict[str, Any] = {"key": self.key, "kind": self.kind.value, "label": self.label}
        if self.reference:
            value["reference"] = self.reference
        if self.kind is CheckKind.DIMENSIONAL:
            value["nominal_mm"] = self.nominal_mm
            value["tolerance_mm"] = self.tolerance_mm
        if self.expected:
            value["expected"] = self.expected
        return value

    def conforms(self, *, value: float | None, ok: bool | None, text: str | None) -> bool:
        """Whether one sampled part passes this check; raises ``Invalid`` when the result
        given is not the kind this check needs."""
        if self.kind is CheckKind.DIMENSIONAL:
            if value is None or not math.isfinite(value):
                raise Invalid(f"check {self.key} needs a measured value in mm")
            assert self.nominal_mm is not None
            assert self.tolerance_mm is not None
            # A hair of slack so that 181.0 ± 0.5 accepts 181.5 whatever the binary float.
            return abs(value - self.nominal_mm) <= self.tolerance_mm + 1e-9
        if self.kind is CheckKind.IFU:
            if text is None:
                raise Invalid(f"check {self.key} needs the version found on the instructions")
            return text.strip() == self.expected
        if ok is None:
            raise Invalid(f"check {self.key} needs ok: true or false")
        return ok


def parse_checks(raw: list[dict[str, Any]]) -> list[Check]:
    """Validate a plan's checks; raises ``Invalid`` naming the first bad one."""
    if len(raw) > MAX_CHECKS:
        raise Invalid(f"a plan holds at most {MAX_CHECKS} checks")
    checks: list[Check] = []
    seen: set[str] = set()
    for index, item in enumerate(raw, start=1):
        key = str(item.get("key", "")).strip()
        if not key or len(key) > 64:
            raise Invalid(f"check {index} needs a key of 1 to 64 characters")
        if key in seen:
            raise Invalid(f"the check key {key} appears twice")
        seen.add(key)
        try:
            kind = CheckKind(str(item.get("kind")))
        except ValueError:
            kinds = ", ".join(k.value for k in CheckKind)
            raise Invalid(f"check {key}: the kind must be one of {kinds}") from None
        nominal = _number(item.get("nominal_mm"))
        tolerance = _number(item.get("tolerance_mm"))
        expected = str(item.get("expected") or "").strip()
        if kind is CheckKind.DIMENSIONAL and (
            nominal is None or tolerance is None or tolerance < 0
        ):
            raise Invalid(
                f"check {key}: a dimensional check needs nominal_mm and a tolerance_mm ≥ 0"
            )
        if kind in (CheckKind.MARKING, CheckKind.IFU) and not expected:
            raise Invalid(f"check {key}: say what is expected (the marking or the IFU version)")
        checks.append(
            Check(
                key=key,
                kind=kind,
                label=str(item.get("label") or key)[:256],
                reference=str(item.get("reference") or "")[:256],
                nominal_mm=nominal if kind is CheckKind.DIMENSIONAL else None,
                tolerance_mm=tolerance if kind is CheckKind.DIMENSIONAL else None,
                expected=expected[:256],
            )
        )
    return checks


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(f"{value!r} is not a number")
    return float(value)


def plan_checks(plan: QualityPlan | None) -> list[Check]:
    return parse_checks(list(plan.checks)) if plan is not None else []


def current_plan(session: Session, design_version_id: UUID) -> QualityPlan | None:
    """The latest revision of the design version's plan, or None when it has none."""
    return session.scalar(
        select(QualityPlan)
        .where(QualityPlan.design_version_id == design_version_id)
        .order_by(QualityPlan.revision.desc())
        .limit(1)
    )


def find_plans(session: Session, design_version_id: UUID) -> list[QualityPlan]:
    """Every revision, oldest first."""
    return list(
        session.scalars(
            select(QualityPlan)
            .where(QualityPlan.design_version_id == design_version_id)
            .order_by(QualityPlan.revision)
        )
    )


def get_plan(session: Session, plan_id: UUID) -> QualityPlan:
    plan = session.get(QualityPlan, plan_id)
    if plan is None:
        raise NotFound(f"no quality plan {plan_id}")
    return plan


def revise_plan(
    session: Session,
    *,
    design_version_id: UUID,
    actor: Actor,
    standard: str,
    checks: list[dict[str, Any]],
    aql: float = DEFAULT_AQL,
    standard_note: str = "",
) -> QualityPlan:
    """Write a new revision of the design version's plan (the first one is revision 1).

    Coordinators and admins only. Submitting exactly the current revision's content
    again returns it unchanged (a retried request writes nothing)."""
    require_role(actor, Role.COORDINATOR)
    ensure_can_act(actor)
    version = session.scalar(
        select(DesignVersion)
        .where(DesignVersion.id == design_version_id)
        .with_for_update(of=DesignVersion)
    )
    if version is None:
        raise NotFound(f"no design version {design_version_id}")
    check_aql(aql)
    parsed = [c.as_dict() for c in parse_checks(checks)]
    standard = standard.strip()
    if not standard:
        raise Invalid("name the standard the checks refer to (for example EN 166:2001)")
    latest = current_plan(session, design_version_id)
    if (
        latest is not None
        and latest.standard == standard
        and latest.standard_note == standard_note
        and latest.aql == aql
        and list(latest.checks) == parsed
    ):
        return latest
    revision = (
        session.scalar(
            select(func.max(QualityPlan.revision)).where(
                QualityPlan.design_version_id == design_version_id
            )
        )
        or 0
    ) + 1
    plan = QualityPlan(
        design_version_id=design_version_id,
        revision=revision,
        standard=standard,
        standard_note=standard_note,
        aql=aql,
        inspection_level="II",
        checks=parsed,
        created_by_id=actor.user_id,
    )
    session.add(plan)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="quality_plan.revised",
        entity_type="quality_plan",
        entity_id=plan.id,
        data={
            "design_version_id": design_version_id,
            "revision": revision,
            "standard": standard,
            "aql": aql,
            "checks": parsed,
        },
    )
    session.commit()
    return plan
