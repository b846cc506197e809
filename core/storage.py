"""Files (model files, G-code) stored once under the SHA-256 of their content."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from core.errors import Invalid, NotFound


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, digest: str) -> Path:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise Invalid(f"not a content hash: {digest!r}")
        return self.root / digest[:2] / digest[2:4] / digest

    def put(self, data: bytes) -> str:
        """Store ``data``; idempotent, and a crash never leaves a partial file under the hash."""
        digest = content_hash(data)
        target = self.path_for(digest)
        if target.exists():
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def get(self, digest: str) -> bytes:
        path = self.path_for(digest)
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"no stored file with hash {digest}") from exc

    def exists(self, digest: str) -> bool:
        return self.path_for(digest).exists()
