"""The mass balance of filament per material and site over a period, and the cost of quality
per need.

Every gram that left a spool is in exactly one place: in delivered parts, in
parts not delivered yet, or in the waste ledger (by kind). What came in is the
filament received and the recycled filament back. The difference is shown, never
hidden: positive, filament still on spools or lost; negative, something counted
twice (for example supports weighed without saying which job they came from).

``balance`` is pure (movements in, rows out) so that it can be checked on
generated histories; ``movements`` reads them from the database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.models import Material, SpoolLot
from core.errors import Invalid, NotFound
from core.identity import Actor
from quality.models import (
    Disposition,
    Inspection,
    InspectionJob,
    NonConformity,
    RecyclingBatch,
    RecyclingStatus,
    WasteEntry,
    WasteKind,
)
from scheduler.models import Job, JobState, PrintRun, RunOutcome

# Waste made while printing a part that was kept: its grams are inside that
# print's sliced mass, so an entry tied to a job moves them out of the parts.
BY_PRODUCTS = frozenset({WasteKind.SUPPORT_AND_BRIM, WasteKind.PURGE})


class Flow(StrEnum):
    RECEIVED = "received"
    RECYCLED_BACK = "recycled_back"
    DELIVERED = "delivered"
    IN_STOCK = "in_stock"
    WASTE = "waste"
    SENT_TO_RECYCLING = "sent_to_recycling"


@dataclass(frozen=True, slots=True)
class Movement:
    flow: Flow
    material: str
    site_id: UUID | None
    at: datetime
    mass_g: float
    kind: WasteKind | None = None  # for waste


@dataclass
class BalanceRow:
    material: str
    site_id: UUID | None  # None: filament or waste not tied to a site
    received_g: float = 0.0
    recycled_back_g: float = 0.0
    delivered_g: float = 0.0
    in_stock_g: float = 0.0
    waste_g: dict[WasteKind, float] = field(default_factory=lambda: dict.fromkeys(WasteKind, 0.0))
    sent_to_recycling_g: float = 0.0

    @property
    def wasted_g(self) -> float:
        return sum(self.waste_g.values())

    @property
    def unexplained_g(self) -> float:
        return (self.received_g + self.recycled_back_g) - (
            self.delivered_g + self.in_stock_g + self.wasted_g
        )

    def add(self, movement: Movement) -> None:
        mass = movement.mass_g
        if movement.flow is Flow.RECEIVED:
            self.received_g += mass
        elif movement.flow is Flow.RECYCLED_BACK:
            self.recycled_back_g += mass
        elif movement.flow is Flow.DELIVERED:
            self.delivered_g += mass
        elif movement.flow is Flow.IN_STOCK:
            self.in_stock_g += mass
        elif movement.flow is Flow.SENT_TO_RECYCLING:
            self.sent_to_recycling_g += mass
        else:
            assert movement.kind is not None
            self.waste_g[movement.kind] += mass

    def as_dict(self) -> dict[str, object]:
        def grams(value: float) -> float:
            return round(value, 2)

        return {
            "material": self.material,
            "site_id": str(self.site_id) if self.site_id else None,
            "received_g": grams(self.received_g),
            "recycled_back_g": grams(self.recycled_back_g),
            "delivered_parts_g": grams(self.delivered_g),
            "parts_in_stock_g": grams(self.in_stock_g),
            "waste_g": {kind.value: grams(v) for kind, v in self.waste_g.items()},
            "wasted_g": grams(self.wasted_g),
            "sent_to_recycling_g": grams(self.sent_to_recycling_g),
            "unexplained_g": grams(self.unexplained_g),
        }


@dataclass(frozen=True, slots=True)
class BalanceReport:
    since: datetime
    until: datetime
    rows: tuple[BalanceRow, ...]  # per material and site
    totals: tuple[BalanceRow, ...]  # per material, every site together


def balance(movements: Iterable[Movement], *, since: datetime, until: datetime) -> BalanceReport:
    """Sum the movements of ``[since, until)`` per material and site, and per material."""
    rows: dict[tuple[str, UUID | None], BalanceRow] = {}
    totals: dict[str, BalanceRow] = {}
    for movement in movements:
        if not since <= movement.at < until:
            continue
        key = (movement.material, movement.site_id)
        if key not in rows:
            rows[key] = BalanceRow(movement.material, movement.site_id)
        rows[key].add(movement)
        if movement.material not in totals:
            totals[movement.material] = BalanceRow(movement.material, None)
        totals[movement.material].add(movement)
    ordered = sorted(rows.values(), key=lambda r: (r.material, str(r.site_id or "")))
    return BalanceReport(
        since=since,
        until=until,
        rows=tuple(ordered),
        totals=tuple(totals[m] for m in sorted(totals)),
    )


def rejected_attempts(
    session: Session, job_ids: Iterable[UUID] | None = None
) -> set[tuple[UUID, int]]:
    """(job, attempt) pairs whose parts went to waste: a rejected lot reprinted or scrapped."""
    query = (
        select(InspectionJob.job_id, InspectionJob.attempt)
        .join(Inspection, Inspection.id == InspectionJob.inspection_id)
        .join(NonConformity, NonConformity.inspection_id == Inspection.id)
        .where(NonConformity.disposition.in_([Disposition.REPRINT.value, Disposition.SCRAP.value]))
    )
    if job_ids is not None:
        query = query.where(InspectionJob.job_id.in_(list(job_ids)))
    return {(job_id, attempt) for job_id, attempt in session.execute(query)}


def movements(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    material_key: str | None = None,
    site_ids: frozenset[UUID] | None = None,
) -> list[Movement]:
    """Every movement of filament between ``since`` and ``until`` from the records."""
    found: list[Movement] = []

    def keep(material: str, site_id: UUID | None) -> bool:
        return (material_key is None or material == material_key) and (
            site_ids is None or site_id in site_ids
        )

    for lot, key in session.execute(
        select(SpoolLot, Material.key)
        .join(Material, Material.id == SpoolLot.material_id)
        .where(SpoolLot.received_at >= since, SpoolLot.received_at < until)
    ):
        # A recycled lot is the recycler's return, counted once as recycled back.
        if not lot.recycled and keep(key, lot.site_id):
            found.append(
                Movement(Flow.RECEIVED, key, lot.site_id, lot.received_at, lot.received_mass_g)
            )
    rejected = rejected_attempts(session)
    for run, job in session.execute(
        select(PrintRun, Job)
        .join(Job, Job.id == PrintRun.job_id)
        .where(
            PrintRun.outcome == RunOutcome.DONE,
            PrintRun.ended_at >= since,
            PrintRun.ended_at < until,
        )
    ):
        if (run.job_id, run.attempt) in rejected or not keep(run.material_key, run.site_id):
            continue
        delivered = job.state is JobState.DELIVERED and run.attempt == job.attempt
        flow = Flow.DELIVERED if delivered else Flow.IN_STOCK
        assert run.ended_at is not None
        found.append(Movement(flow, run.material_key, run.site_id, run.ended_at, run.filament_g))
    found += _waste_movements(session, since=since, until=until, keep=keep)
    for batch in session.scalars(
        select(RecyclingBatch).where(
            RecyclingBatch.status == RecyclingStatus.RETURNED.value,
            RecyclingBatch.returned_at >= since,
            RecyclingBatch.returned_at < until,
        )
    ):
        if keep(batch.material_key, batch.site_id) and batch.returned_at is not None:
            found.append(
                Movement(
                    Flow.RECYCLED_BACK,
                    batch.material_key,
                    batch.site_id,
                    batch.returned_at,
                    batch.returned_mass_g or 0.0,
                )
            )
    return found


def _waste_movements(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    keep: Callable[[str, UUID | None], bool],
) -> list[Movement]:
    found: list[Movement] = []
    for entry, job_state in session.execute(
        select(WasteEntry, Job.state)
        .outerjoin(Job, Job.id == WasteEntry.job_id)
        .where(WasteEntry.recorded_at >= since, WasteEntry.recorded_at < until)
    ):
        if not keep(entry.material_key, entry.site_id):
            continue
        found.append(
            Movement(
                Flow.WASTE,
                entry.material_key,
                entry.site_id,
                entry.recorded_at,
                entry.mass_g,
                entry.kind,
            )
        )
        if entry.kind in BY_PRODUCTS and entry.job_id is not None:
            flow = Flow.DELIVERED if job_state is JobState.DELIVERED else Flow.IN_STOCK
            found.append(
                Movement(flow, entry.material_key, entry.site_id, entry.recorded_at, -entry.mass_g)
            )
    for batch in session.scalars(
        select(RecyclingBatch).where(
            RecyclingBatch.sent_at >= since,
            RecyclingBatch.sent_at < until,
        )
    ):
        assert batch.sent_at is not None
        for entry in session.scalars(
            select(WasteEntry).where(WasteEntry.recycling_batch_id == batch.id)
        ):
            if keep(entry.material_key, entry.site_id):
                found.append(
                    Movement(
                        Flow.SENT_TO_RECYCLING,
                        entry.material_key,
                        entry.site_id,
                        batch.sent_at,
                        entry.mass_g,
                    )
                )
    return found


def mass_balance(
    session: Session,
    *,
    actor: Actor,
    since: datetime,
    until: datetime,
    material_key: str | None = None,
    site_id: UUID | None = None,
) -> BalanceReport:
    """The balance as the actor may see it: an operator, its own sites only (another
    site is ``NotFound``). Raises ``Invalid`` for an empty period."""
    if until <= since:
        raise Invalid("the period ends before it starts")
    sites: frozenset[UUID] | None = None
    if site_id is not None:
        if not actor.sees_all_sites() and site_id not in actor.site_ids:
            raise NotFound(f"no site {site_id}")
        sites = frozenset({site_id})
    elif not actor.sees_all_sites():
        sites = actor.site_ids
    found = movements(session, since=since, until=until, material_key=material_key, site_ids=sites)
    return balance(found, since=since, until=until)
