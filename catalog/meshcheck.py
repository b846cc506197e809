"""Uploaded model bytes -> a checked mesh in millimetres, with what was repaired and why.

Formats: STL (binary and ASCII), OBJ (through trimesh) and 3MF (threemf.py:
trimesh needs lxml for it, and reading it ourselves lets us bound the zip).
Every refusal is one clear sentence (``Invalid`` / ``TooLarge``); every
change made to the mesh is listed in ``MeshReport.repairs``; doubts that do
not stop printing are in ``warnings``. Units are never guessed silently: a
part that looks like inches or metres is refused with both readings, and
the caller asks again with ``unit=``.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import trimesh
from numpy.typing import NDArray
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from catalog.plate import copies_that_fit
from catalog.threemf import UNITS_MM, read_3mf
from catalog.types import PrinterProfile, SliceSettings
from core.errors import Invalid, TooLarge
from core.i18n import _

# Crisis parts measure from about 10 mm (clips) to a bed's size, and nothing
# printable is thinner than a couple of layers. Outside this in mm the file
# was most likely saved in another unit: a 150 x 15 x 1.6 mm ear saver saved
# in inches reads 5.9 x 0.59 x 0.063 "mm".
SMALLEST_PLAUSIBLE_MM = 10.0
THINNEST_PLAUSIBLE_MM = 0.3
LARGEST_PLAUSIBLE_MM = 2000.0
MAX_FACES = 5_000_000  # about 250 MB of trimesh arrays; larger models are not crisis parts


@dataclass(frozen=True, slots=True)
class MeshReport:
    mesh: trimesh.Trimesh  # millimetres
    repairs: tuple[str, ...]
    warnings: tuple[str, ...]
    size_mm: tuple[float, float, float]
    volume_cm3: float
    faces: int
    bodies: int
    watertight: bool
    unit: str  # the unit the file was read in


def load_mesh(
    data: bytes, file_name: str, *, max_bytes: int = 50_000_000, unit: str | None = None
) -> MeshReport:
    """Parse, check and repair an uploaded model.

    ``unit`` ("mm", "cm", "m", "in", ...) overrides the file's unit; without
    it a part whose size is implausible in mm is refused (``Invalid``) with
    the sizes it would have in inches and in metres. Raises ``TooLarge`` for
    uploads over ``max_bytes`` (or archives expanding past 10x that).
    """
    if len(data) > max_bytes:
        raise TooLarge(
            _(
                "The file is {size} MB; the limit is {limit} MB.",
                size=f"{len(data) / 1e6:.1f}",
                limit=f"{max_bytes / 1e6:g}",
            ),
            size=len(data),
        )
    if not data.strip():
        raise Invalid(_("The file {name} is empty.", name=file_name))
    if unit is not None and unit.lower() not in UNITS_MM:
        raise Invalid(
            _("Unknown unit {unit}; use one of: {known}.", unit=unit, known=", ".join(UNITS_MM))
        )
    extension = file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
    declared = "mm"
    if extension == "3mf":
        vertices, faces, declared = read_3mf(data, max_uncompressed=10 * max_bytes)
        mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
    elif extension in ("stl", "obj"):
        mesh = _load_with_trimesh(data, extension, file_name)
    else:
        raise Invalid(
            _(
                "{name}: unsupported file type; upload an STL, 3MF or OBJ model.",
                name=file_name,
            )
        )
    repairs: list[str] = []
    warnings: list[str] = []
    chosen = unit.lower() if unit else declared
    scale = UNITS_MM[chosen]
    if scale != 1.0:
        mesh.apply_transform(np.diag([scale, scale, scale, 1.0]))
        source = _("declared in the file") if unit is None else _("as requested")
        repairs.append(
            _(
                "Converted from {unit} to mm (x{scale:g}), {source}.",
                unit=chosen,
                scale=scale,
                source=source,
            )
        )
    mesh = _clean(mesh, file_name, repairs, warnings)
    if unit is None:
        _check_units(mesh, file_name)
    extents = mesh.extents
    bodies = int(mesh.body_count)
    return MeshReport(
        mesh=mesh,
        repairs=tuple(repairs),
        warnings=tuple(warnings),
        size_mm=(float(extents[0]), float(extents[1]), float(extents[2])),
        volume_cm3=float(abs(mesh.volume)) / 1000.0 if mesh.is_watertight else 0.0,
        faces=len(mesh.faces),
        bodies=bodies,
        watertight=bool(mesh.is_watertight),
        unit=chosen,
    )


def fits_profiles(
    mesh: trimesh.Trimesh,
    profiles: dict[str, PrinterProfile] | Iterable[PrinterProfile],
    settings: SliceSettings | None = None,
) -> list[str]:
    """Keys of the profiles whose build volume holds one copy (skirt included)."""
    chosen = settings or SliceSettings()
    items = profiles.values() if isinstance(profiles, dict) else profiles
    return [p.key for p in items if copies_that_fit(mesh, p, chosen) > 0]


def ensure_fits(
    mesh: trimesh.Trimesh, profile: PrinterProfile, profiles: dict[str, PrinterProfile]
) -> None:
    """Raise ``TooLarge`` naming the printers that can print the part if ``profile`` cannot."""
    if copies_that_fit(mesh, profile, SliceSettings()) > 0:
        return
    others = fits_profiles(mesh, profiles)
    size = " x ".join(f"{v:.1f}" for v in mesh.extents)
    if others:
        message = _(
            "The part ({size} mm) is larger than the {printer}'s build volume; it fits: {fits}.",
            size=size,
            printer=profile.name,
            fits=", ".join(others),
        )
    else:
        message = _(
            "The part ({size} mm) is larger than the build volume of every printer profile.",
            size=size,
        )
    raise TooLarge(message, printer=profile.key, fits=others)


def _load_with_trimesh(data: bytes, extension: str, file_name: str) -> trimesh.Trimesh:
    try:
        loaded = trimesh.load(io.BytesIO(data), file_type=extension, force="mesh", process=False)
    except Exception as error:  # trimesh raises many types for corrupt files
        raise Invalid(
            _(
                "{name} could not be read as {kind}: {reason}",
                name=file_name,
                kind=extension.upper(),
                reason=str(error)[:200],
            )
        ) from error
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise Invalid(_("{name} contains no triangles: it is not a 3D mesh.", name=file_name))
    return loaded


def _clean(
    mesh: trimesh.Trimesh, file_name: str, repairs: list[str], warnings: list[str]
) -> trimesh.Trimesh:
    if len(mesh.faces) > MAX_FACES:
        raise TooLarge(
            _(
                "{name} has {count} triangles; the limit is {limit}.",
                name=file_name,
                count=len(mesh.faces),
                limit=MAX_FACES,
            )
        )
    if not np.isfinite(mesh.vertices).all():
        raise Invalid(
            _("{name} has vertices with invalid coordinates (NaN or infinite).", name=file_name)
        )
    mesh.merge_vertices()
    valid = mesh.nondegenerate_faces()
    if not valid.all():
        mesh.update_faces(valid)
        repairs.append(
            _("Removed {count} degenerate (zero-area) triangles.", count=int((~valid).sum()))
        )
    unique = mesh.unique_faces()
    if unique.sum() < len(mesh.faces):
        duplicates = len(mesh.faces) - int(unique.sum())
        mesh.update_faces(unique)
        repairs.append(_("Removed {count} duplicate triangles.", count=duplicates))
    mesh.remove_unreferenced_vertices()
    if len(mesh.faces) == 0:
        raise Invalid(_("{name} has no usable triangles: it is not a 3D mesh.", name=file_name))
    if not mesh.is_watertight:
        holes, edges = _fill_holes(mesh)
        if holes:
            repairs.append(
                _(
                    "Closed {holes} holes in the surface ({edges} open edges); check the part's shape.",
                    holes=holes,
                    edges=edges,
                )
            )
    if not mesh.is_winding_consistent:
        trimesh.repair.fix_winding(mesh)  # type: ignore[no-untyped-call]  # trimesh: no annotations
        repairs.append(_("Made the triangle orientation consistent."))
    if mesh.is_watertight and mesh.volume < 0:
        mesh.invert()
        repairs.append(_("The normals pointed inwards (inside-out mesh); they were flipped."))
    mesh = _merge_overlapping_bodies(mesh, repairs)
    if not mesh.is_watertight:
        open_edges = len(_edges_used_once(np.asarray(mesh.faces)))
        warnings.append(
            _(
                "The mesh is not watertight ({count} open or shared edges could not be repaired); "
                "the slicer closes open outlines layer by layer, check the preview.",
                count=max(open_edges, 1),
            )
        )
    return mesh


def _merge_overlapping_bodies(mesh: trimesh.Trimesh, repairs: list[str]) -> trimesh.Trimesh:
    """One solid out of closed bodies that overlap (CAD exports often leave a pin or a
    boss as its own shell inside the part): filled even-odd, layer by layer, the
    overlap would print as a hole. Cavities (inward shells) are left alone."""
    if not mesh.is_watertight or mesh.body_count < 2:
        return mesh
    bodies = mesh.split(only_watertight=True)
    if len(bodies) < 2 or any(body.volume <= 0 for body in bodies):
        return mesh
    low = np.array([body.bounds[0] for body in bodies])
    high = np.array([body.bounds[1] for body in bodies])
    touching = np.all(
        (low[:, None, :] < high[None, :, :]) & (low[None, :, :] < high[:, None, :]), axis=2
    )
    np.fill_diagonal(touching, False)
    if not touching.any():
        return mesh
    merged = trimesh.boolean.union(list(bodies), engine="manifold")
    total = float(sum(body.volume for body in bodies))
    if not isinstance(merged, trimesh.Trimesh) or not merged.is_watertight:
        return mesh
    if merged.volume >= total * (1 - 1e-6):
        return mesh  # boxes overlapped but the solids did not
    repairs.append(
        _(
            "Merged {count} overlapping bodies into one solid ({overlap} cm3 were counted twice).",
            count=len(bodies),
            overlap=f"{(total - merged.volume) / 1000:.2f}",
        )
    )
    return merged


def _edges_used_once(faces: NDArray[np.int64]) -> NDArray[np.int64]:
    """Indices (into the faces' directed edges, 3 per face) of edges no other face shares."""
    directed = faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    undirected = np.sort(directed, axis=1)
    _unique, inverse, counts = np.unique(
        undirected, axis=0, return_inverse=True, return_counts=True
    )
    return np.flatnonzero(counts[inverse.ravel()] == 1)


def _fill_holes(mesh: trimesh.Trimesh) -> tuple[int, int]:
    """Close each loop of boundary edges with a fan around its centroid.

    Returns (holes closed, boundary edges). Works on any hole shape; holes
    that are not star-shaped from their centroid get folded fans, which
    still slice to the right area (even-odd), hence the warning to check.
    """
    directed = np.asarray(mesh.faces)[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    once = _edges_used_once(np.asarray(mesh.faces))
    if len(once) == 0:
        return 0, 0
    boundary = directed[once]
    vertex_count = len(mesh.vertices)
    graph = coo_matrix(
        (np.ones(len(boundary)), (boundary[:, 0], boundary[:, 1])),
        shape=(vertex_count, vertex_count),
    )
    _count, labels = connected_components(graph, directed=False)
    loop_of_edge = labels[boundary[:, 0]]
    loops, loop_index = np.unique(loop_of_edge, return_inverse=True)
    loop_vertices = np.unique(boundary.ravel())
    centroids = np.zeros((len(loops), 3))
    weights = np.zeros(len(loops))
    owner = np.searchsorted(loops, labels[loop_vertices])
    np.add.at(centroids, owner, mesh.vertices[loop_vertices])
    np.add.at(weights, owner, 1.0)
    centroids /= weights[:, None]
    new_ids = vertex_count + loop_index
    # The existing face runs the edge a -> b, so the patch must run b -> a.
    patch = np.column_stack([boundary[:, 1], boundary[:, 0], new_ids])
    mesh.vertices = np.vstack([mesh.vertices, centroids])
    mesh.faces = np.vstack([mesh.faces, patch])
    return len(loops), len(boundary)


def _check_units(mesh: trimesh.Trimesh, file_name: str) -> None:
    largest = float(np.max(mesh.extents))
    thinnest = float(np.min(mesh.extents))
    if (
        SMALLEST_PLAUSIBLE_MM <= largest <= LARGEST_PLAUSIBLE_MM
        and thinnest >= THINNEST_PLAUSIBLE_MM
    ):
        return
    size = " x ".join(f"{v:g}" for v in np.round(mesh.extents, 3))
    if largest <= LARGEST_PLAUSIBLE_MM:
        inches = " x ".join(f"{v:.1f}" for v in mesh.extents * 25.4)
        metres = " x ".join(f"{v:.1f}" for v in mesh.extents * 1000.0)
        message = _(
            "{name} is only {size} mm: it was probably saved in inches ({inches} mm) or in "
            "metres ({metres} mm). Choose the unit and upload again (unit=in, m or mm).",
            name=file_name,
            size=size,
            inches=inches,
            metres=metres,
        )
    else:
        message = _(
            "{name} is {size} mm, larger than any printer: it was probably saved in microns "
            "or tenths of mm. Choose the unit and upload again (unit=um, mm, ...).",
            name=file_name,
            size=size,
        )
    raise Invalid(message, size_mm=[float(v) for v in mesh.extents])
