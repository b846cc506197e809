"""Plates per printer model: every copy on exactly one plate, each plate on a bed that holds it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from scheduler.plates import split_into_plates

fleets = st.dictionaries(st.integers(1, 12), st.integers(1, 40), min_size=1, max_size=4)


@given(st.integers(1, 5000), fleets)
def test_copies_add_up_and_every_plate_fits_a_bed(quantity: int, fleet: dict[int, int]) -> None:
    plates = split_into_plates(quantity, fleet)
    assert sum(plates) == quantity
    assert all(1 <= p <= max(fleet) for p in plates)
    # Only the smallest bed's share has a short plate: at most one plate is not full.
    assert sum(1 for p in plates if p not in fleet) <= 1


@given(st.integers(1, 5000), st.integers(1, 12), st.integers(1, 40))
def test_one_bed_size_gives_full_plates_and_a_smaller_last(
    quantity: int, size: int, printers: int
) -> None:
    plates = split_into_plates(quantity, {size: printers})
    assert plates[:-1] == [size] * (len(plates) - 1)
    assert 1 <= plates[-1] <= size


def test_larger_beds_get_larger_plates_in_proportion() -> None:
    # 5 printers taking 4 headbands, 2 taking 2: 100 copies on 30 plates, not 50 of 2.
    plates = split_into_plates(100, {4: 5, 2: 2})
    assert sorted(plates, reverse=True) == [4] * 20 + [2] * 10
    assert split_into_plates(7, {2: 3}) == [2, 2, 2, 1]
    assert split_into_plates(0, {4: 1}) == []
