"""Shared plumbing of the scheduling benchmarks: one run per subprocess (so
that peak memory is per run), machine load noted with every result."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.provenance import code_version

RESULTS = Path(__file__).parent / "results"
BENCH_DATA = Path(__file__).resolve().parents[2] / "shared" / "bench-data"


def machine() -> dict[str, Any]:
    from importlib.metadata import version

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "ortools": version("ortools"),
        "loadavg_start": list(os.getloadavg()),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def run_child(module: str, args: dict[str, Any]) -> dict[str, Any]:
    """Run ``python -m module --child JSON`` and return the JSON it prints."""
    out = subprocess.run(
        [sys.executable, "-m", module, "--child", json.dumps(args)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
    )
    if out.returncode != 0:
        raise RuntimeError(f"{module} child failed: {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["loadavg_1m_after"] = os.getloadavg()[0]
    return result


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def save(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload.setdefault("machine", {})["loadavg_end"] = list(os.getloadavg())
    payload["code"] = code_version()
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")
    return path


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns}
    lines = [" | ".join(c.ljust(widths[c]) for c in columns)]
    lines.append("-|-".join("-" * widths[c] for c in columns))
    lines.extend(" | ".join(_fmt(r.get(c)).ljust(widths[c]) for c in columns) for r in rows)
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"
    return "-" if value is None else str(value)
