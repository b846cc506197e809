"""The waste ledger, recycling batches and the mass balance."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, status
from pydantic import AwareDatetime

from api.deps import CurrentActor, DbSession
from api.schemas.common import PROBLEM_RESPONSES
from api.schemas.quality import (
    BalanceRead,
    BalanceRowRead,
    RecyclingBatchCreate,
    RecyclingBatchRead,
    RecyclingEntries,
    RecyclingReturn,
    RecyclingSend,
    WasteCreate,
    WasteRead,
)
from quality import balance, recycling, waste
from quality.models import RecyclingStatus, WasteKind

router = APIRouter(tags=["waste and recycling"], responses=PROBLEM_RESPONSES)


@router.get("/waste", response_model=list[WasteRead])
def list_waste(
    session: DbSession,
    actor: CurrentActor,
    site_id: UUID | None = None,
    material_key: Annotated[str | None, Query(max_length=32)] = None,
    kind: WasteKind | None = None,
    since: Annotated[AwareDatetime | None, Query()] = None,
    until: Annotated[AwareDatetime | None, Query()] = None,
    unbatched: bool | None = None,
) -> list[WasteRead]:
    """Ledger entries, newest first (an operator: its own sites')."""
    return [
        WasteRead.model_validate(w)
        for w in waste.find_waste(
            session,
            actor=actor,
            site_id=site_id,
            material_key=material_key,
            kind=kind,
            since=since,
            until=until,
            unbatched=unbatched,
        )
    ]


@router.post("/waste", response_model=WasteRead, status_code=status.HTTP_201_CREATED)
def record_waste(body: WasteCreate, session: DbSession, actor: CurrentActor) -> WasteRead:
    """Weighed waste (supports, purge, spool ends) entered by an operator of the site."""
    return WasteRead.model_validate(waste.record_waste(session, actor=actor, **body.model_dump()))


@router.get("/recycling-batches", response_model=list[RecyclingBatchRead])
def list_batches(
    session: DbSession,
    actor: CurrentActor,
    material_key: Annotated[str | None, Query(max_length=32)] = None,
    status_filter: Annotated[RecyclingStatus | None, Query(alias="status")] = None,
) -> list[RecyclingBatchRead]:
    return [
        RecyclingBatchRead.model_validate(b)
        for b in recycling.find_batches(
            session, actor=actor, material_key=material_key, status=status_filter
        )
    ]


@router.post(
    "/recycling-batches", response_model=RecyclingBatchRead, status_code=status.HTTP_201_CREATED
)
def create_batch(
    body: RecyclingBatchCreate, session: DbSession, actor: CurrentActor
) -> RecyclingBatchRead:
    """Open a batch of ONE material (at a site, or network-wide for coordinators)."""
    return RecyclingBatchRead.model_validate(
        recycling.create_batch(session, actor=actor, **body.model_dump())
    )


@router.get("/recycling-batches/{batch_id}", response_model=RecyclingBatchRead)
def get_batch(batch_id: UUID, session: DbSession, actor: CurrentActor) -> RecyclingBatchRead:
    return RecyclingBatchRead.model_validate(recycling.get_batch(session, batch_id, actor=actor))


@router.get("/recycling-batches/{batch_id}/entries", response_model=list[WasteRead])
def list_batch_entries(batch_id: UUID, session: DbSession, actor: CurrentActor) -> list[WasteRead]:
    recycling.get_batch(session, batch_id, actor=actor)
    return [WasteRead.model_validate(w) for w in recycling.batch_entries(session, batch_id)]


@router.post("/recycling-batches/{batch_id}/entries", response_model=RecyclingBatchRead)
def add_entries(
    batch_id: UUID, body: RecyclingEntries, session: DbSession, actor: CurrentActor
) -> RecyclingBatchRead:
    """Put ledger entries of the batch's material into it (materials are never mixed)."""
    return RecyclingBatchRead.model_validate(
        recycling.add_entries(session, batch_id=batch_id, entry_ids=body.entry_ids, actor=actor)
    )


@router.post("/recycling-batches/{batch_id}/sent", response_model=RecyclingBatchRead)
def send_batch(
    batch_id: UUID, body: RecyclingSend, session: DbSession, actor: CurrentActor
) -> RecyclingBatchRead:
    return RecyclingBatchRead.model_validate(
        recycling.send_batch(session, batch_id=batch_id, actor=actor, **body.model_dump())
    )


@router.post("/recycling-batches/{batch_id}/return", response_model=RecyclingBatchRead)
def record_return(
    batch_id: UUID, body: RecyclingReturn, session: DbSession, actor: CurrentActor
) -> RecyclingBatchRead:
    """Recycled filament back from the recycler (as a recycled spool lot with a lot code)."""
    return RecyclingBatchRead.model_validate(
        recycling.record_return(session, batch_id=batch_id, actor=actor, **body.model_dump())
    )


@router.get("/mass-balance", response_model=BalanceRead)
def mass_balance(
    session: DbSession,
    actor: CurrentActor,
    since: Annotated[AwareDatetime, Query()],
    until: Annotated[AwareDatetime, Query()],
    material_key: Annotated[str | None, Query(max_length=32)] = None,
    site_id: UUID | None = None,
) -> BalanceRead:
    """Filament received, in delivered parts, in stock, wasted by kind, sent to recycling and
    recycled back, per material and site; the unexplained difference is shown."""
    report = balance.mass_balance(
        session, actor=actor, since=since, until=until, material_key=material_key, site_id=site_id
    )
    return BalanceRead(
        since=report.since,
        until=report.until,
        rows=[BalanceRowRead.model_validate(r.as_dict()) for r in report.rows],
        totals=[BalanceRowRead.model_validate(r.as_dict()) for r in report.totals],
    )
