"""3MF packages -> vertices and triangles, without trusting the archive.

A 3MF is a zip of XML files, so an upload is bounded twice: a member's
declared compression ratio (XML compresses 5-20x; 200x only happens in
crafted archives) and the bytes actually inflated, counted while reading
(headers can lie). DTDs are refused before parsing, which rules out entity
expansion. Supports the core spec (objects, meshes, components, build items
with transforms, units) and the production extension's ``p:path``
components that PrusaSlicer and Bambu Studio write.
"""

from __future__ import annotations

import io
import zipfile
from xml.etree import ElementTree

import numpy as np
from numpy.typing import NDArray

from core.errors import Invalid, TooLarge
from core.i18n import _

UNITS_MM = {
    "mm": 1.0,
    "millimeter": 1.0,
    "cm": 10.0,
    "centimeter": 10.0,
    "m": 1000.0,
    "meter": 1000.0,
    "in": 25.4,
    "inch": 25.4,
    "ft": 304.8,
    "foot": 304.8,
    "um": 0.001,
    "micron": 0.001,
}
MAX_ZIP_MEMBERS = 10_000
MAX_ZIP_RATIO = 200.0
_3MF_NS = "{http://schemas.microsoft.com/3dmanufacturing/core/2015/02}"
_PRODUCTION_PATH = "{http://schemas.microsoft.com/3dmanufacturing/production/2015/06}path"


def _read_member(archive: zipfile.ZipFile, name: str, budget: list[int]) -> bytes:
    """Read one archive member, refusing more than the remaining uncompressed budget."""
    info = archive.getinfo(name)
    if info.compress_size and info.file_size / info.compress_size > MAX_ZIP_RATIO:
        raise TooLarge(_("The 3MF archive is compressed suspiciously well (a zip bomb?); refused."))
    chunks = []
    with archive.open(info) as stream:
        while True:
            chunk = stream.read(1 << 20)
            if not chunk:
                break
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise TooLarge(
                    _("The 3MF archive expands to too much data (a zip bomb?); refused.")
                )
            chunks.append(chunk)
    return b"".join(chunks)


def read_3mf(
    data: bytes, *, max_uncompressed: int
) -> tuple[NDArray[np.float64], NDArray[np.int64], str]:
    """Vertices, faces and unit of a 3MF package (core spec + production extension paths)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as error:
        raise Invalid(_("The 3MF file is not a valid zip archive.")) from error
    with archive:
        names = archive.namelist()
        if len(names) > MAX_ZIP_MEMBERS:
            raise TooLarge(_("The 3MF archive has too many entries ({count}).", count=len(names)))
        budget = [max_uncompressed]
        models = {n.lstrip("/"): n for n in names if n.lower().endswith(".model")}
        if not models:
            raise Invalid(_("The 3MF archive contains no 3D model."))
        main = next((n for n in models if n.lower() == "3d/3dmodel.model"), sorted(models)[0])
        reader = _ThreeMF(archive, models, budget)
        return reader.read(main)


class _ThreeMF:
    def __init__(self, archive: zipfile.ZipFile, models: dict[str, str], budget: list[int]) -> None:
        self.archive = archive
        self.models = models
        self.budget = budget
        self.parsed: dict[str, tuple[dict[str, ElementTree.Element], ElementTree.Element, str]] = {}
        self.vertices: list[NDArray[np.float64]] = []
        self.faces: list[NDArray[np.int64]] = []
        self.count = 0

    def _parse(self, path: str) -> tuple[dict[str, ElementTree.Element], ElementTree.Element, str]:
        if path not in self.parsed:
            raw = _read_member(self.archive, self.models[path], self.budget)
            if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
                # 3MF never needs a DTD; refusing it rules out entity-expansion attacks.
                raise Invalid(_("The 3MF model declares a DTD, which 3MF does not allow; refused."))
            try:
                root = ElementTree.fromstring(raw)  # noqa: S314 (DTDs refused just above)
            except ElementTree.ParseError as error:
                raise Invalid(
                    _("The 3MF model is not valid XML: {reason}", reason=str(error))
                ) from error
            objects = {o.get("id", ""): o for o in root.iter(f"{_3MF_NS}object")}
            self.parsed[path] = (objects, root, root.get("unit", "millimeter"))
        return self.parsed[path]

    def read(self, main: str) -> tuple[NDArray[np.float64], NDArray[np.int64], str]:
        _objects, root, unit = self._parse(main)
        items = list(root.iter(f"{_3MF_NS}item"))
        if not items:
            raise Invalid(_("The 3MF model has no build items to print."))
        for item in items:
            self._add(main, item.get("objectid", ""), _transform(item.get("transform")), depth=0)
        if not self.faces:
            raise Invalid(_("The 3MF model contains no triangles."))
        if unit not in UNITS_MM:
            raise Invalid(_("The 3MF model uses an unknown unit {unit}.", unit=unit))
        return np.vstack(self.vertices), np.vstack(self.faces), unit

    def _add(self, path: str, object_id: str, matrix: NDArray[np.float64], depth: int) -> None:
        if depth > 16:
            raise Invalid(_("The 3MF model nests components too deeply (a loop?)."))
        objects = self._parse(path)[0]
        found = objects.get(object_id)
        if found is None:
            raise Invalid(_("The 3MF model refers to a missing object {id}.", id=object_id))
        mesh = found.find(f"{_3MF_NS}mesh")
        if mesh is not None:
            vertices = np.array(
                [
                    [float(v.get("x", "nan")), float(v.get("y", "nan")), float(v.get("z", "nan"))]
                    for v in mesh.iter(f"{_3MF_NS}vertex")
                ],
                dtype=np.float64,
            ).reshape(-1, 3)
            faces = np.array(
                [
                    [int(t.get("v1", "-1")), int(t.get("v2", "-1")), int(t.get("v3", "-1"))]
                    for t in mesh.iter(f"{_3MF_NS}triangle")
                ],
                dtype=np.int64,
            ).reshape(-1, 3)
            if len(faces) and (faces.min() < 0 or faces.max() >= len(vertices)):
                raise Invalid(_("The 3MF model has triangles pointing at missing vertices."))
            placed = np.hstack([vertices, np.ones((len(vertices), 1))]) @ matrix
            self.vertices.append(placed[:, :3])
            self.faces.append(faces + self.count)
            self.count += len(vertices)
        for component in found.iter(f"{_3MF_NS}component"):
            target = component.get(_PRODUCTION_PATH, "").lstrip("/") or path
            if target not in self.models:
                raise Invalid(_("The 3MF model refers to a missing part file {path}.", path=target))
            inner = _transform(component.get("transform")) @ matrix
            self._add(target, component.get("objectid", ""), inner, depth + 1)


def _transform(text: str | None) -> NDArray[np.float64]:
    """3MF's 3x4 row-vector matrix as a 4x4 one (points are row vectors: p' = p M)."""
    matrix = np.eye(4)
    if text:
        values = [float(v) for v in text.split()]
        if len(values) != 12:
            raise Invalid(_("The 3MF model has a malformed transform."))
        matrix[:, :3] = np.array(values).reshape(4, 3)
    return matrix
