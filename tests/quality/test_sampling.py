"""ISO 2859-1 level II single sampling, normal and tightened, checked against the printed
master tables (arrows and all) for every lot size; and the switching rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import Invalid
from quality.sampling import (
    Severity,
    SwitchingState,
    lot_accepted,
    replay,
    sampling_plan,
)

# Table I, general inspection level II: lower bound of each lot-size band -> letter.
TABLE_I = [
    (2, "A"), (9, "B"), (16, "C"), (26, "D"), (51, "E"), (91, "F"), (151, "G"), (281, "H"),
    (501, "J"), (1201, "K"), (3201, "L"), (10001, "M"), (35001, "N"), (150001, "P"),
    (500001, "Q"),
]  # fmt: skip
SAMPLE_SIZE = {
    "A": 2, "B": 3, "C": 5, "D": 8, "E": 13, "F": 20, "G": 32, "H": 50, "J": 80, "K": 125,
    "L": 200, "M": 315, "N": 500, "P": 800, "Q": 1250,
}  # fmt: skip
LETTERS = list(SAMPLE_SIZE)
AQLS = (1.0, 2.5, 4.0)
D, U = "down", "up"
# The cells as printed, columns AQL 1.0 / 2.5 / 4.0: (Ac, Re) or an arrow.
TABLE_II_A = {
    "A": (D, D, D), "B": (D, D, (0, 1)), "C": (D, (0, 1), U), "D": (D, U, D),
    "E": ((0, 1), D, (1, 2)), "F": (U, (1, 2), (2, 3)), "G": (D, (2, 3), (3, 4)),
    "H": ((1, 2), (3, 4), (5, 6)), "J": ((2, 3), (5, 6), (7, 8)),
    "K": ((3, 4), (7, 8), (10, 11)), "L": ((5, 6), (10, 11), (14, 15)),
    "M": ((7, 8), (14, 15), (21, 22)), "N": ((10, 11), (21, 22), U),
    "P": ((14, 15), U, U), "Q": ((21, 22), U, U),
}  # fmt: skip
TABLE_II_B = {
    "A": (D, D, D), "B": (D, D, D), "C": (D, D, (0, 1)), "D": (D, (0, 1), D),
    "E": (D, D, D), "F": ((0, 1), D, (1, 2)), "G": (D, (1, 2), (2, 3)),
    "H": (D, (2, 3), (3, 4)), "J": ((1, 2), (3, 4), (5, 6)), "K": ((2, 3), (5, 6), (8, 9)),
    "L": ((3, 4), (8, 9), (12, 13)), "M": ((5, 6), (12, 13), (18, 19)),
    "N": ((8, 9), (18, 19), U), "P": ((12, 13), U, U), "Q": ((18, 19), U, U),
}  # fmt: skip


def letter_for(lot_size: int) -> str:
    letter = "A"
    for lower, code in TABLE_I:
        if lot_size >= lower:
            letter = code
    return letter


def oracle(lot_size: int, aql: float, severity: Severity) -> tuple[str, int, int, int]:
    """Follow the arrows of the printed table: the sample size is the one of the letter
    where the arrow ends."""
    table = TABLE_II_B if severity is Severity.TIGHTENED else TABLE_II_A
    column = AQLS.index(aql)
    letter = letter_for(lot_size)
    row = LETTERS.index(letter)
    cell = table[LETTERS[row]][column]
    while not isinstance(cell, tuple):
        row += 1 if cell == D else -1
        cell = table[LETTERS[row]][column]
    accept, reject = cell
    return letter, min(SAMPLE_SIZE[LETTERS[row]], lot_size), accept, reject


lot_sizes = st.one_of(
    st.integers(min_value=1, max_value=3300),
    st.integers(min_value=1, max_value=800_000),
    st.sampled_from([lower for lower, _ in TABLE_I] + [lower - 1 for lower, _ in TABLE_I[1:]]),
)


@settings(max_examples=600, deadline=None)
@given(
    lot_size=lot_sizes,
    aql=st.sampled_from(AQLS),
    severity=st.sampled_from([Severity.NORMAL, Severity.TIGHTENED]),
    data=st.data(),
)
def test_verdict_matches_the_iso_table_for_every_lot_size(
    lot_size: int, aql: float, severity: Severity, data: st.DataObject
) -> None:
    letter, n, accept, reject = oracle(lot_size, aql, severity)
    plan = sampling_plan(lot_size, aql, severity)
    assert (plan.code_letter, plan.sample_size, plan.accept_number, plan.reject_number) == (
        letter,
        n,
        accept,
        reject,
    )
    assert plan.reject_number == plan.accept_number + 1  # single sampling leaves no gap
    defective = data.draw(st.integers(min_value=0, max_value=n))
    assert lot_accepted(plan, defective) is (defective <= accept)


def test_every_lot_size_band_and_aql_exhaustively() -> None:
    for lower, _letter in TABLE_I:
        for lot_size in {lower, lower + 1}:
            for aql in AQLS:
                for severity in (Severity.NORMAL, Severity.TIGHTENED):
                    plan = sampling_plan(lot_size, aql, severity)
                    expected = oracle(lot_size, aql, severity)
                    assert (
                        plan.code_letter,
                        plan.sample_size,
                        plan.accept_number,
                        plan.reject_number,
                    ) == expected


def test_known_plans() -> None:
    # The brief's check: lot 91-150, level II -> F, n=20, AQL 2.5 -> Ac 1, Re 2.
    plan = sampling_plan(120, 2.5)
    assert (plan.code_letter, plan.sample_size, plan.accept_number) == ("F", 20, 1)
    tightened = sampling_plan(120, 2.5, Severity.TIGHTENED)
    assert (tightened.sample_size, tightened.accept_number) == (32, 1)
    # An arrow up leads to a smaller sample than the letter's own (F at AQL 1.0 -> E).
    assert sampling_plan(100, 1.0).sample_size == 13
    small = sampling_plan(4, 2.5)
    assert small.full_inspection
    assert small.sample_size == 4


def test_lot_accepted_rejects_impossible_counts() -> None:
    plan = sampling_plan(10, 2.5)
    with pytest.raises(Invalid):
        lot_accepted(plan, plan.sample_size + 1)
    with pytest.raises(Invalid):
        lot_accepted(plan, -1)
    with pytest.raises(Invalid):
        sampling_plan(10, 0.65)
    with pytest.raises(Invalid):
        sampling_plan(0, 2.5)


def test_two_rejections_in_five_lots_tighten() -> None:
    assert replay([True, False, True, True, True]).severity is Severity.NORMAL
    assert replay([False, True, True, True, False]).severity is Severity.TIGHTENED
    # Six lots apart: the window of five never holds both.
    assert replay([False, True, True, True, True, False]).severity is Severity.NORMAL


def test_five_accepted_on_tightened_restore_normal() -> None:
    tightened = [False, False]
    assert replay([*tightened, True, True, True, True]).severity is Severity.TIGHTENED
    assert replay([*tightened, True, True, True, True, True]).severity is Severity.NORMAL
    # A rejection restarts the count of accepted lots.
    assert replay([*tightened, True, True, False, True, True, True]).severity is Severity.TIGHTENED


def test_five_rejections_on_tightened_discontinue_until_resumed() -> None:
    # Two to tighten, then five rejected (not in a row) on tightened.
    events: list[bool | None] = [False, False, False, True, False, True, False, False, False]
    state = replay(events)
    assert state.severity is Severity.DISCONTINUED
    with pytest.raises(Invalid):
        state.after_lot(True)
    assert replay([*events, None]).severity is Severity.TIGHTENED


def reference(events: list[bool]) -> Severity:
    """The rules written out plainly, as a second implementation to compare with."""
    severity = Severity.NORMAL
    normal_history: list[bool] = []
    tightened_history: list[bool] = []
    for accepted in events:
        if severity is Severity.DISCONTINUED:
            break
        if severity is Severity.NORMAL:
            normal_history.append(accepted)
            if normal_history[-5:].count(False) >= 2:
                severity, normal_history, tightened_history = Severity.TIGHTENED, [], []
        else:
            tightened_history.append(accepted)
            run = 0
            for outcome in reversed(tightened_history):
                if not outcome:
                    break
                run += 1
            if run >= 5:
                severity, normal_history, tightened_history = Severity.NORMAL, [], []
            elif tightened_history.count(False) >= 5:
                severity = Severity.DISCONTINUED
    return severity


@settings(max_examples=300, deadline=None)
@given(st.lists(st.booleans(), max_size=60))
def test_switching_agrees_with_a_plain_reference(events: list[bool]) -> None:
    state = SwitchingState()
    for accepted in events:
        if state.severity is Severity.DISCONTINUED:
            break
        state = state.after_lot(accepted)
    assert state.severity is reference(events)
