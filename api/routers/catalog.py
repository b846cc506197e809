"""Materials, printer profiles, parts and their design versions."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, File, Form, Request, UploadFile, status

from api.deps import CurrentActor, DbSession, RuntimeDep
from api.schemas.common import PROBLEM_RESPONSES
from api.schemas.resources import (
    DesignVersionRead,
    MaterialRead,
    PartCreate,
    PartRead,
    ProfileRead,
)
from catalog import service
from catalog.tasks import request_slicing
from catalog.threemf import UNITS_MM
from core.errors import Invalid, TooLarge

router = APIRouter(tags=["catalogue"], responses=PROBLEM_RESPONSES)
# Every unit the checks know, so that the unit their message suggests is accepted.
UNIT_PATTERN = "^(" + "|".join(UNITS_MM) + ")$"


@router.get("/materials", response_model=list[MaterialRead])
def list_materials(session: DbSession, actor: CurrentActor) -> list[MaterialRead]:
    return [MaterialRead.model_validate(m) for m in service.find_materials(session)]


@router.get("/printer-profiles", response_model=list[ProfileRead])
def list_profiles(session: DbSession, actor: CurrentActor) -> list[ProfileRead]:
    return [ProfileRead.model_validate(p) for p in service.find_profiles(session)]


@router.get("/parts", response_model=list[PartRead])
def list_parts(session: DbSession, actor: CurrentActor) -> list[PartRead]:
    return [PartRead.model_validate(p) for p in service.find_parts(session)]


@router.post("/parts", response_model=PartRead, status_code=status.HTTP_201_CREATED)
def create_part(body: PartCreate, session: DbSession, actor: CurrentActor) -> PartRead:
    return PartRead.model_validate(service.create_part(session, actor=actor, **body.model_dump()))


@router.get("/parts/{part_id}", response_model=PartRead)
def get_part(part_id: UUID, session: DbSession, actor: CurrentActor) -> PartRead:
    return PartRead.model_validate(service.get_part(session, part_id))


@router.post(
    "/parts/{part_id}/versions",
    response_model=DesignVersionRead,
    status_code=status.HTTP_201_CREATED,
    openapi_extra={"requestBody": {"description": "STL (binary or ASCII), 3MF or OBJ, in mm"}},
)
def upload_version(
    part_id: UUID,
    request: Request,
    session: DbSession,
    actor: CurrentActor,
    runtime: RuntimeDep,
    model: Annotated[UploadFile, File(description="The model file")],
    licence: Annotated[str, Form(max_length=64)] = "",
    source: Annotated[str, Form(max_length=512)] = "",
    author: Annotated[str, Form(max_length=128)] = "",
    change_note: Annotated[str, Form(max_length=4000)] = "",
    unit: Annotated[
        str | None,
        Form(
            pattern=UNIT_PATTERN,
            description="The file's unit when it is not mm (the checks suggest one when a "
            "model looks drawn in inches, metres or microns)",
            examples=["inch"],
        ),
    ] = None,
) -> DesignVersionRead:
    """Upload a new design version (draft). The model is checked before anything is stored."""
    limit = runtime.settings.max_upload_bytes
    data = model.file.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"the file is larger than the {limit // 1_000_000} MB upload limit")
    if not data:
        raise Invalid("the uploaded file is empty")
    version = service.add_design_version(
        session,
        runtime.store,
        part_id=part_id,
        model=data,
        file_name=model.filename or "model.stl",
        actor=actor,
        max_upload_bytes=limit,
        licence=licence,
        source=source,
        author=author,
        change_note=change_note,
        unit=unit,
    )
    return DesignVersionRead.model_validate(version)


@router.post("/design-versions/{version_id}/approve", response_model=DesignVersionRead)
def approve_version(version_id: UUID, session: DbSession, actor: CurrentActor) -> DesignVersionRead:
    """Approve a draft (admins). Earlier approved versions retire; planned jobs keep theirs."""
    version = service.approve_version(session, version_id=version_id, actor=actor)
    request_slicing()
    return DesignVersionRead.model_validate(version)


@router.get("/design-versions/{version_id}", response_model=DesignVersionRead)
def get_version(version_id: UUID, session: DbSession, actor: CurrentActor) -> DesignVersionRead:
    return DesignVersionRead.model_validate(service.get_version(session, version_id))
