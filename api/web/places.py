"""Turning a typed address into coordinates without a network.

Sites may be offline, so no geocoding service is called. A typed address is
matched against the places distrifab already knows (sites and delivery points,
by name or address) and a small gazetteer of Oise communes; the coordinate of a
commune is its town centre, which is close enough to plan travel between fablabs
and hospitals (a few km). Anything else is placed by a click on the map or typed
as "latitude, longitude".
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy.orm import Session

from printers import service as printers
from scheduler import service as scheduler

# Commune centres from the Wikipedia infoboxes (shared/notes/domain.md §4).
COMMUNES: dict[str, tuple[float, float]] = {
    "compiegne": (49.41500, 2.82306),
    "attichy": (49.41306, 3.04833),
    "autreches": (49.44528, 3.12500),
    "pierrefonds": (49.35167, 2.98139),
    "noyon": (49.58167, 2.99972),
    "creil": (49.25833, 2.48333),
    "senlis": (49.20806, 2.58750),
    "amiens": (49.87583, 2.25556),
    "venette": (49.41700, 2.79400),
}

_COORDINATES = re.compile(r"^\s*(-?\d{1,2}(?:[.,]\d+)?)\s*[,; ]\s*(-?\d{1,3}(?:[.,]\d+)?)\s*$")


@dataclass(frozen=True, slots=True)
class Located:
    lat: float
    lon: float
    source: str  # what matched: a known place's name or a commune


def _plain(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", " ", folded.lower()).strip()


def locate(session: Session, address: str) -> Located | None:
    """Coordinates for ``address``: typed "lat, lon", a known site or delivery point, then
    a commune named in it. None when nothing matches."""
    typed = _COORDINATES.match(address)
    if typed:
        lat, lon = (float(v.replace(",", ".")) for v in typed.groups())
        if -90 <= lat <= 90 and -180 <= lon <= 180:
            return Located(lat, lon, f"{lat:.5f}, {lon:.5f}")
    wanted = _plain(address)
    if not wanted:
        return None
    known = [(p.name, p.address, p.lat, p.lon) for p in scheduler.find_delivery_points(session)]
    known += [(s.name, s.address, s.lat, s.lon) for s in printers.find_sites(session)]
    for name, place_address, lat, lon in known:
        if wanted in {_plain(name), _plain(place_address)}:
            return Located(lat, lon, name)
    words = f" {wanted} "
    for commune, (lat, lon) in COMMUNES.items():
        if f" {commune} " in words:
            return Located(lat, lon, commune.capitalize())
    return None
