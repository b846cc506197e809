#!/usr/bin/env python3
"""Fetch the web pages' front-end packages from the npm registry into api/static/vendor.

The exact versions and their integrity hashes are recorded in
``api/static/vendor/package.json`` and ``package-lock.json``; the copied files and
their licences are committed, so that serving distrifab needs neither npm nor a
network (sites may be offline). ``MANIFEST.json`` records the SHA-256 of every
copied file; ``--check`` verifies the committed files against it without npm.

    python scripts/vendor_assets.py            # npm ci in a temporary folder, copy, write MANIFEST
    python scripts/vendor_assets.py --lock     # refresh package-lock.json after editing package.json
    python scripts/vendor_assets.py --check    # committed files match MANIFEST.json (no network)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

VENDOR = Path(__file__).resolve().parents[1] / "api" / "static" / "vendor"
NPM_FLAGS = ["--ignore-scripts", "--no-audit", "--no-fund"]

# package -> (folder under vendor/, [(file in the package, name in the folder)]).
# Only what the pages load, plus every licence file the package ships.
FILES: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "htmx.org": ("htmx", [("dist/htmx.min.js", "htmx.min.js"), ("LICENSE", "LICENSE")]),
    "leaflet": (
        "leaflet",
        [
            ("dist/leaflet.js", "leaflet.js"),
            ("dist/leaflet.css", "leaflet.css"),
            ("dist/images/layers.png", "images/layers.png"),
            ("dist/images/layers-2x.png", "images/layers-2x.png"),
            ("dist/images/marker-icon.png", "images/marker-icon.png"),
            ("dist/images/marker-icon-2x.png", "images/marker-icon-2x.png"),
            ("dist/images/marker-shadow.png", "images/marker-shadow.png"),
            ("LICENSE", "LICENSE"),
        ],
    ),
    # The UMD build bundles @kurkle/color, whose licence travels with it.
    "chart.js": (
        "chartjs",
        [("dist/chart.umd.min.js", "chart.umd.min.js"), ("LICENSE.md", "LICENSE.md")],
    ),
    "@kurkle/color": ("chartjs", [("LICENSE.md", "LICENSE-kurkle-color.md")]),
    # Used by the browser tests' accessibility check only; never loaded by a page.
    "axe-core": (
        "axe-core",
        [
            ("axe.min.js", "axe.min.js"),
            ("LICENSE", "LICENSE"),
            ("LICENSE-3RD-PARTY.txt", "LICENSE-3RD-PARTY.txt"),
        ],
    ),
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def npm(*args: str, cwd: Path) -> None:
    npm_bin = shutil.which("npm")
    if npm_bin is None:
        sys.exit("npm is needed to fetch the packages (the committed copies need nothing)")
    subprocess.run([npm_bin, *args, *NPM_FLAGS], cwd=cwd, check=True)  # noqa: S603


def refresh_lock() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copy(VENDOR / "package.json", work)
        npm("install", "--package-lock-only", cwd=work)
        shutil.copy(work / "package-lock.json", VENDOR)
    print(f"wrote {VENDOR / 'package-lock.json'}")


def fetch() -> None:
    lock = json.loads((VENDOR / "package-lock.json").read_text())
    manifest: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copy(VENDOR / "package.json", work)
        shutil.copy(VENDOR / "package-lock.json", work)
        # npm ci installs exactly the lock file and checks every tarball's integrity.
        npm("ci", cwd=work)
        for package, (folder, files) in FILES.items():
            entry = lock["packages"][f"node_modules/{package}"]
            source_root = work / "node_modules" / package
            target_root = VENDOR / folder
            copied: dict[str, str] = {}
            for source, target in files:
                destination = target_root / target
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source_root / source, destination)
                copied[f"{folder}/{target}"] = sha256(destination)
            manifest[package] = {
                "version": entry["version"],
                "license": entry.get("license", ""),
                "integrity": entry["integrity"],
                "files": copied,
            }
    (VENDOR / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    print(f"vendored {len(manifest)} packages into {VENDOR}")


def check() -> list[str]:
    """Problems with the committed copies: missing or changed files."""
    manifest = json.loads((VENDOR / "MANIFEST.json").read_text())
    lock = json.loads((VENDOR / "package-lock.json").read_text())
    problems: list[str] = []
    for package, entry in manifest.items():
        locked = lock["packages"].get(f"node_modules/{package}", {})
        if locked.get("version") != entry["version"]:
            problems.append(
                f"{package}: vendored {entry['version']}, locked {locked.get('version')}"
            )
        for name, digest in entry["files"].items():
            path = VENDOR / name
            if not path.is_file():
                problems.append(f"{name}: missing")
            elif sha256(path) != digest:
                problems.append(f"{name}: differs from the vendored copy")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--lock", action="store_true", help="refresh package-lock.json")
    group.add_argument("--check", action="store_true", help="verify the committed copies")
    options = parser.parse_args()
    if options.lock:
        refresh_lock()
    elif options.check:
        problems = check()
        for problem in problems:
            print(problem, file=sys.stderr)
        sys.exit(1 if problems else 0)
    else:
        fetch()


if __name__ == "__main__":
    main()
