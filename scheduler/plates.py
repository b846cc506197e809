"""How many copies go on each plate of a need: pure arithmetic over the fleet's beds."""

from __future__ import annotations

from collections.abc import Mapping


def split_into_plates(quantity: int, fleet: Mapping[int, int]) -> list[int]:
    """Copies per plate for ``quantity`` copies on a fleet given as {copies that fit one
    bed: printers with such a bed}.

    Each bed size takes a share of the copies in proportion to what its printers hold at
    once (printers x copies per bed), in full plates of its own size; what is left goes to
    the smallest size, whose plates fit every bed, the last of them smaller. One bed size:
    plates of that size. A plate never holds more than the largest bed takes, and the
    copies always add up to ``quantity``.
    """
    if quantity <= 0:
        return []
    sizes = {n: count for n, count in fleet.items() if n > 0 and count > 0} or {1: 1}
    smallest = min(sizes)
    held = sum(n * count for n, count in sizes.items())
    plates: list[int] = []
    left = quantity
    for n in sorted(sizes, reverse=True):
        if n == smallest:
            break
        full_plates = (quantity * n * sizes[n] // held) // n
        plates.extend([n] * full_plates)
        left -= n * full_plates
    plates.extend([smallest] * (left // smallest))
    if left % smallest:
        plates.append(left % smallest)
    return plates
