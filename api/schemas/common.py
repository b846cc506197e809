"""Shared schema pieces."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Problem(BaseModel):
    """RFC 9457 problem details, as every error is answered."""

    type: str
    title: str
    status: int
    detail: str
    instance: str


PROBLEM_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": Problem, "content": {"application/problem+json": {}}, "description": text}
    for status, text in (
        (400, "Malformed request"),
        (401, "No valid API token"),
        (403, "The role or site does not allow it"),
        (404, "Not found (or not visible to this user)"),
        (409, "Not possible in the current state"),
        (422, "Invalid input, field by field"),
    )
}
