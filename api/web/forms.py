"""Posted forms: read the fields, say what is wrong next to each one, keep every value.

A refused form is rendered again with what the person typed and one message per
field (HTTP 422), so that nothing is lost. Input shape (a number, a date, a choice)
is checked here; the rules (a deadline in the future, a positive mass) stay in the
domain, whose errors are placed next to the field they concern by ``place``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from starlette.datastructures import UploadFile

from core.errors import DomainError
from core.i18n import N_, _

# Refusals of the use cases that the pages show next to a field, marked here so that
# the French catalogue carries them (the domain writes its details in English).
DOMAIN_DETAILS = (
    N_("the deadline is in the past"),
    N_("this part has no approved design version yet; it cannot be ordered"),
    N_("a delivery point needs a name"),
    N_("say why the job is refused, so the coordinator can act on it"),
    N_("the remaining mass cannot be negative"),
    N_("the weighed mass must be positive (grams)"),
    N_("a site needs a name"),
    N_("a printer needs a name"),
    N_("the printer's API key is empty"),
    N_("a password needs at least 8 characters"),
    N_("a username is 1 to 64 letters, digits, dots, dashes or underscores"),
    N_("an operator must be bound to at least one site"),
    N_("latitude goes from -90 to 90 and longitude from -180 to 180"),
    N_("wrong username or password"),
)


@dataclass
class FormInput:
    values: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # name -> (file name, bytes)
    errors: dict[str, str] = field(default_factory=dict)
    problem: str = ""  # a message about the whole form

    @property
    def ok(self) -> bool:
        return not self.errors and not self.problem

    def fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    def raw(self, name: str) -> str:
        return self.values.get(name, "").strip()

    def text(self, name: str, *, required: bool = True, max_length: int = 128) -> str:
        value = self.raw(name)
        if required and not value:
            self.fail(name, _("This field is required."))
        elif len(value) > max_length:
            self.fail(name, _("At most {count} characters.", count=max_length))
        return value

    def integer(
        self, name: str, *, minimum: int, maximum: int, required: bool = True
    ) -> int | None:
        value = self.raw(name)
        if not value:
            if required:
                self.fail(name, _("This field is required."))
            return None
        try:
            number = int(value)
        except ValueError:
            self.fail(name, _("Enter a whole number."))
            return None
        if not minimum <= number <= maximum:
            self.fail(name, _("Enter a number from {low} to {high}.", low=minimum, high=maximum))
            return None
        return number

    def number(
        self, name: str, *, minimum: float, maximum: float, required: bool = True
    ) -> float | None:
        value = self.raw(name).replace(",", ".")  # French keyboards type a decimal comma
        if not value:
            if required:
                self.fail(name, _("This field is required."))
            return None
        try:
            number = float(value)
        except ValueError:
            self.fail(name, _("Enter a number."))
            return None
        if not minimum <= number <= maximum:
            self.fail(name, _("Enter a number from {low} to {high}.", low=minimum, high=maximum))
            return None
        return number

    def choice(self, name: str, options: Iterable[str], *, required: bool = True) -> str | None:
        value = self.raw(name)
        if not value:
            if required:
                self.fail(name, _("Choose one."))
            return None
        if value not in set(options):
            self.fail(name, _("Choose one of the proposed values."))
            return None
        return value

    def uuid(self, name: str, *, required: bool = True) -> UUID | None:
        value = self.raw(name)
        if not value:
            if required:
                self.fail(name, _("Choose one."))
            return None
        try:
            return UUID(value)
        except ValueError:
            self.fail(name, _("Choose one of the proposed values."))
            return None

    def uuids(self, name: str) -> list[UUID]:
        chosen: list[UUID] = []
        for value in self.lists.get(name, []):
            try:
                chosen.append(UUID(value))
            except ValueError:
                self.fail(name, _("Choose among the proposed values."))
        return chosen

    def local_datetime(self, name: str, zone: ZoneInfo) -> datetime | None:
        """A ``datetime-local`` field read in the deployment's time zone (aware)."""
        value = self.raw(name)
        if not value:
            self.fail(name, _("This field is required."))
            return None
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            self.fail(name, _("Enter a date and time, for example 2026-12-01 18:00."))
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=zone)

    def flag(self, name: str) -> bool:
        return self.raw(name) in {"on", "true", "1", "yes"}

    def place(self, error: DomainError, fields: Mapping[str, str]) -> None:
        """Put a domain refusal next to the field its message names (first match), else
        above the form. The message is translated when the catalogue knows it."""
        message = _(error.detail)
        lowered = error.detail.lower()
        for keyword, name in fields.items():
            if keyword in lowered:
                self.fail(name, message)
                return
        self.problem = message


async def read_form(request: Request) -> FormInput:
    """The posted fields; uploaded files are read here (up to the upload limit, one byte
    more so that a larger file is recognised) so that pages stay synchronous."""
    form = await request.form()  # parsed once: the CSRF check read the same object
    limit = request.app.state.runtime.settings.max_upload_bytes
    posted = FormInput()
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            if value.filename:
                posted.files[key] = (value.filename, await value.read(limit + 1))
            await value.close()  # read whole: its temporary file is not needed any more
        else:
            posted.values.setdefault(key, value)
            posted.lists.setdefault(key, []).append(value)
    return posted


PostedForm = Annotated[FormInput, Depends(read_form)]
