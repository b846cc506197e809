"""ISO 2859-1 single sampling, general inspection level II, normal and tightened inspection,
with the switching rules between them.

The effective plans below are Table I (lot size -> code letter) and Tables II-A
(normal) and II-B (tightened) with their arrows already followed, as resolved in
the project's domain notes; an arrow can lead to a smaller sample than the
letter's own, as the standard intends (the sample size comes from the letter the
arrow points to). Pure: no database, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

from core.errors import Invalid


class Severity(StrEnum):
    NORMAL = "normal"
    TIGHTENED = "tightened"
    # Too many lots rejected on tightened inspection: no lot is accepted by
    # sampling until a corrective action is recorded (ISO 2859-1 §9.4).
    DISCONTINUED = "discontinued"


# Upper bound of each lot-size band and its level-II code letter (Table I).
_LEVEL_II_LETTERS: tuple[tuple[int, str], ...] = (
    (8, "A"),
    (15, "B"),
    (25, "C"),
    (50, "D"),
    (90, "E"),
    (150, "F"),
    (280, "G"),
    (500, "H"),
    (1200, "J"),
    (3200, "K"),
    (10000, "L"),
    (35000, "M"),
    (150000, "N"),
    (500000, "P"),
)
_LAST_LETTER = "Q"

Plan = tuple[int, int, int]  # (sample size, accept number, reject number)

# code letter -> AQL -> plan, Table II-A (normal).
_NORMAL: dict[str, dict[float, Plan]] = {
    "A": {1.0: (13, 0, 1), 2.5: (5, 0, 1), 4.0: (3, 0, 1)},
    "B": {1.0: (13, 0, 1), 2.5: (5, 0, 1), 4.0: (3, 0, 1)},
    "C": {1.0: (13, 0, 1), 2.5: (5, 0, 1), 4.0: (3, 0, 1)},
    "D": {1.0: (13, 0, 1), 2.5: (5, 0, 1), 4.0: (13, 1, 2)},
    "E": {1.0: (13, 0, 1), 2.5: (20, 1, 2), 4.0: (13, 1, 2)},
    "F": {1.0: (13, 0, 1), 2.5: (20, 1, 2), 4.0: (20, 2, 3)},
    "G": {1.0: (50, 1, 2), 2.5: (32, 2, 3), 4.0: (32, 3, 4)},
    "H": {1.0: (50, 1, 2), 2.5: (50, 3, 4), 4.0: (50, 5, 6)},
    "J": {1.0: (80, 2, 3), 2.5: (80, 5, 6), 4.0: (80, 7, 8)},
    "K": {1.0: (125, 3, 4), 2.5: (125, 7, 8), 4.0: (125, 10, 11)},
    "L": {1.0: (200, 5, 6), 2.5: (200, 10, 11), 4.0: (200, 14, 15)},
    "M": {1.0: (315, 7, 8), 2.5: (315, 14, 15), 4.0: (315, 21, 22)},
    "N": {1.0: (500, 10, 11), 2.5: (500, 21, 22), 4.0: (315, 21, 22)},
    "P": {1.0: (800, 14, 15), 2.5: (500, 21, 22), 4.0: (315, 21, 22)},
    "Q": {1.0: (1250, 21, 22), 2.5: (500, 21, 22), 4.0: (315, 21, 22)},
}

# Table II-B (tightened): the same letters and sample sizes, acceptance numbers one
# step stricter along the series 0/1, 1/2, 2/3, 3/4, 5/6, 8/9, 12/13, 18/19; the
# arrows next to the 0/1 plans all point down (no upward arrow as in II-A).
_TIGHTENED: dict[str, dict[float, Plan]] = {
    "A": {1.0: (20, 0, 1), 2.5: (8, 0, 1), 4.0: (5, 0, 1)},
    "B": {1.0: (20, 0, 1), 2.5: (8, 0, 1), 4.0: (5, 0, 1)},
    "C": {1.0: (20, 0, 1), 2.5: (8, 0, 1), 4.0: (5, 0, 1)},
    "D": {1.0: (20, 0, 1), 2.5: (8, 0, 1), 4.0: (20, 1, 2)},
    "E": {1.0: (20, 0, 1), 2.5: (32, 1, 2), 4.0: (20, 1, 2)},
    "F": {1.0: (20, 0, 1), 2.5: (32, 1, 2), 4.0: (20, 1, 2)},
    "G": {1.0: (80, 1, 2), 2.5: (32, 1, 2), 4.0: (32, 2, 3)},
    "H": {1.0: (80, 1, 2), 2.5: (50, 2, 3), 4.0: (50, 3, 4)},
    "J": {1.0: (80, 1, 2), 2.5: (80, 3, 4), 4.0: (80, 5, 6)},
    "K": {1.0: (125, 2, 3), 2.5: (125, 5, 6), 4.0: (125, 8, 9)},
    "L": {1.0: (200, 3, 4), 2.5: (200, 8, 9), 4.0: (200, 12, 13)},
    "M": {1.0: (315, 5, 6), 2.5: (315, 12, 13), 4.0: (315, 18, 19)},
    "N": {1.0: (500, 8, 9), 2.5: (500, 18, 19), 4.0: (315, 18, 19)},
    "P": {1.0: (800, 12, 13), 2.5: (500, 18, 19), 4.0: (315, 18, 19)},
    "Q": {1.0: (1250, 18, 19), 2.5: (500, 18, 19), 4.0: (315, 18, 19)},
}
SUPPORTED_AQLS = (1.0, 2.5, 4.0)


@dataclass(frozen=True, slots=True)
class SamplingPlan:
    lot_size: int
    code_letter: str
    aql: float
    severity: Severity
    sample_size: int  # never more than the lot: past that the whole lot is inspected
    accept_number: int
    reject_number: int

    @property
    def full_inspection(self) -> bool:
        return self.sample_size >= self.lot_size


def code_letter(lot_size: int) -> str:
    if lot_size < 2:
        return "A"
    for upper, letter in _LEVEL_II_LETTERS:
        if lot_size <= upper:
            return letter
    return _LAST_LETTER


def sampling_plan(lot_size: int, aql: float, severity: Severity = Severity.NORMAL) -> SamplingPlan:
    """The plan for one lot. Raises ``Invalid`` for an empty lot or an unsupported AQL, and
    ``Invalid`` when sampling is discontinued (no plan applies)."""
    if lot_size < 1:
        raise Invalid("a lot holds at least one part")
    check_aql(aql)
    if severity is Severity.DISCONTINUED:
        raise Invalid("sampling inspection is discontinued; no plan applies")
    letter = code_letter(lot_size)
    table = _TIGHTENED if severity is Severity.TIGHTENED else _NORMAL
    n, accept, reject = table[letter][aql]
    return SamplingPlan(
        lot_size=lot_size,
        code_letter=letter,
        aql=aql,
        severity=severity,
        sample_size=min(n, lot_size),
        accept_number=accept,
        reject_number=reject,
    )


def check_aql(aql: float) -> None:
    if aql not in SUPPORTED_AQLS:
        raise Invalid(
            f"AQL {aql} is not supported; choose one of {', '.join(map(str, SUPPORTED_AQLS))}"
        )


def lot_accepted(plan: SamplingPlan, defective: int) -> bool:
    """The verdict, from the count of defective parts in the sample; never typed in."""
    if defective < 0 or defective > plan.sample_size:
        raise Invalid(
            f"the defective count must be between 0 and the sample size {plan.sample_size}"
        )
    return defective <= plan.accept_number


# --- switching rules (ISO 2859-1 §9.3, §9.4; reduced inspection is not used) -----------

NORMAL_WINDOW = 5  # "2 out of 5 or fewer consecutive lots not accepted" -> tightened
NORMAL_REJECTIONS_TO_TIGHTEN = 2
TIGHTENED_ACCEPTED_TO_NORMAL = 5  # "5 consecutive lots accepted" -> normal
TIGHTENED_REJECTIONS_TO_DISCONTINUE = 5  # cumulative, while on tightened


@dataclass(frozen=True, slots=True)
class SwitchingState:
    """Where a stream of lots (one design from one site) stands between the severities."""

    severity: Severity = Severity.NORMAL
    # Outcomes (True = accepted) of the latest lots on normal inspection, oldest first.
    recent_normal: tuple[bool, ...] = ()
    accepted_in_a_row: int = 0  # on tightened
    rejected_on_tightened: int = 0

    def after_lot(self, accepted: bool) -> SwitchingState:
        """The state after one more lot inspected at the current severity."""
        if self.severity is Severity.DISCONTINUED:
            raise Invalid("sampling inspection is discontinued; no lot can be inspected")
        if self.severity is Severity.NORMAL:
            recent = (*self.recent_normal, accepted)[-NORMAL_WINDOW:]
            if recent.count(False) >= NORMAL_REJECTIONS_TO_TIGHTEN:
                return SwitchingState(severity=Severity.TIGHTENED)
            return replace(self, recent_normal=recent)
        if accepted:
            if self.accepted_in_a_row + 1 >= TIGHTENED_ACCEPTED_TO_NORMAL:
                return SwitchingState(severity=Severity.NORMAL)
            return replace(self, accepted_in_a_row=self.accepted_in_a_row + 1)
        rejected = self.rejected_on_tightened + 1
        if rejected >= TIGHTENED_REJECTIONS_TO_DISCONTINUE:
            return SwitchingState(severity=Severity.DISCONTINUED)
        return replace(self, accepted_in_a_row=0, rejected_on_tightened=rejected)

    def after_resumption(self) -> SwitchingState:
        """Inspection resumes on tightened after a corrective action (§9.4)."""
        if self.severity is not Severity.DISCONTINUED:
            return self
        return SwitchingState(severity=Severity.TIGHTENED)


def replay(events: Iterable[bool | None]) -> SwitchingState:
    """The state after a history of lot outcomes (True accepted, False rejected) and
    resumptions (None), in the order they happened."""
    state = SwitchingState()
    for event in events:
        state = state.after_resumption() if event is None else state.after_lot(event)
    return state
