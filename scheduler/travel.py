"""Travel time from a site to a delivery point.

Great-circle distance times a road factor at a mean speed when no road graph is
known; shortest paths in a networkx road graph when the adapter has one. Pure:
the graph is passed in, nothing is downloaded.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping

import networkx as nx

from scheduler.types import DeliveryPointSpec, SiteSpec

EARTH_RADIUS_KM = 6371.0088  # IUGG mean radius


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance in km between two WGS84 points (degrees)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def estimated_travel_s(km: float, *, speed_kmh: float, road_factor: float) -> int:
    """Seconds to drive ``km`` of straight-line distance (rounded up)."""
    if speed_kmh <= 0:
        raise ValueError("speed_kmh must be positive")
    return math.ceil(km * road_factor / speed_kmh * 3600.0)


def great_circle_travel_s(
    site: SiteSpec, point: DeliveryPointSpec, *, speed_kmh: float, road_factor: float
) -> int:
    km = great_circle_km(site.lat, site.lon, point.lat, point.lon)
    return estimated_travel_s(km, speed_kmh=speed_kmh, road_factor=road_factor)


def _nearest_node(
    graph: nx.Graph, lat: float, lon: float, positions: Mapping[Hashable, tuple[float, float]]
) -> tuple[Hashable, float]:
    best: Hashable = None
    best_km = math.inf
    for node, (nlat, nlon) in positions.items():
        km = great_circle_km(lat, lon, nlat, nlon)
        if km < best_km:
            best, best_km = node, km
    return best, best_km


def road_travel_s(
    graph: nx.Graph,
    sites: Iterable[SiteSpec],
    points: Iterable[DeliveryPointSpec],
    *,
    speed_kmh: float = 40.0,
    road_factor: float = 1.3,
) -> dict[tuple[str, str], int]:
    """Travel seconds for every (site id, delivery point id) pair over a road graph.

    Nodes carry ``lat`` and ``lon``; an edge costs its ``travel_s`` attribute
    when present, else ``length_km`` at ``speed_kmh``, else its great-circle
    length times ``road_factor``. Each place joins its nearest node by a
    straight leg (times ``road_factor``). Pairs the graph cannot connect fall
    back to great-circle estimates, so the result is always complete and can
    be given as ``Problem.travel_s``.
    """
    site_list = list(sites)
    point_list = list(points)
    positions: dict[Hashable, tuple[float, float]] = {
        node: (float(attrs["lat"]), float(attrs["lon"]))
        for node, attrs in graph.nodes(data=True)
        if "lat" in attrs and "lon" in attrs
    }
    result: dict[tuple[str, str], int] = {}
    if not positions:
        for site in site_list:
            for point in point_list:
                result[(site.id, point.id)] = great_circle_travel_s(
                    site, point, speed_kmh=speed_kmh, road_factor=road_factor
                )
        return result

    def edge_s(u: Hashable, v: Hashable, attrs: Mapping[str, float]) -> float:
        if "travel_s" in attrs:
            return float(attrs["travel_s"])
        if "length_km" in attrs:
            return float(attrs["length_km"]) / speed_kmh * 3600.0
        (alat, alon), (blat, blon) = positions[u], positions[v]
        km = great_circle_km(alat, alon, blat, blon)
        return km * road_factor / speed_kmh * 3600.0

    point_nodes = {p.id: _nearest_node(graph, p.lat, p.lon, positions) for p in point_list}
    for site in site_list:
        node, access_km = _nearest_node(graph, site.lat, site.lon, positions)
        lengths: Mapping[Hashable, float] = nx.single_source_dijkstra_path_length(
            graph, node, weight=edge_s
        )
        for point in point_list:
            pnode, egress_km = point_nodes[point.id]
            if pnode in lengths:
                legs_s = (access_km + egress_km) * road_factor / speed_kmh * 3600.0
                result[(site.id, point.id)] = math.ceil(lengths[pnode] + legs_s)
            else:
                result[(site.id, point.id)] = great_circle_travel_s(
                    site, point, speed_kmh=speed_kmh, road_factor=road_factor
                )
    return result


def problem_travel_s(
    travel_s: Mapping[tuple[str, str], int],
    site: SiteSpec,
    point: DeliveryPointSpec | None,
    *,
    speed_kmh: float,
    road_factor: float,
) -> int:
    """The rule the allocator and the plan checker share: a given pair wins,
    else a great-circle estimate; no delivery point means no travel."""
    if point is None:
        return 0
    given = travel_s.get((site.id, point.id))
    if given is not None:
        return int(given)
    return great_circle_travel_s(site, point, speed_kmh=speed_kmh, road_factor=road_factor)
