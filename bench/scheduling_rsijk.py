"""R|Sijk|Cmax (Vallada and Ruiz 2011): greedy baseline vs allocate(auto).

Reads the public instances of ../shared/bench-data/rsijk and the best-known
values (best = min of the 2011 upper bound and later fix-and-optimise/SLS
results); RPD = 100 (Cmax - best) / best. Also generates instances of the same
kind with the published generator's distributions (processing times U[1,99],
setups U[1,9] or U[1,124]) to check that nothing is tuned to the eight files;
those have no best-known value, so they are compared with the greedy and the
makespan lower bound.

    .venv/bin/python -m bench.scheduling_rsijk            # 10 s and 60 s per instance
    .venv/bin/python -m bench.scheduling_rsijk --quick    # 2 instances, 2 s
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import sys
import time
from typing import Any

from bench.scheduling_common import BENCH_DATA, machine, peak_rss_mb, run_child, save, table


def generated_rsijk(n: int, m: int, setup_max: int, seed: int) -> str:
    """An instance in the rsijk file format, drawn like Vallada-Ruiz's."""
    rng = random.Random(seed)
    lines = [f"{n} {m} {seed}", str(m)]
    for _ in range(n):
        lines.append(" ".join(f"{k} {rng.randint(1, 99)}" for k in range(m)))
    lines.append("SSD")
    for k in range(m):
        lines.append(f"M{k}")
        for a in range(n):
            lines.append(
                " ".join("0" if a == b else str(rng.randint(1, setup_max)) for b in range(n))
            )
    return "\n".join(lines) + "\n"


def child(args: dict[str, Any]) -> dict[str, Any]:
    from scheduler.allocator import allocate
    from scheduler.formats import read_rsijk
    from scheduler.validate import check_plan

    if args.get("generated"):
        n, m, smax, seed = args["generated"]
        text = generated_rsijk(n, m, smax, seed)
    else:
        text = (BENCH_DATA / "rsijk" / f"{args['instance']}.txt").read_text(encoding="utf-8")
    problem = read_rsijk(text)
    started = time.perf_counter()
    greedy = allocate(problem, method="greedy")
    greedy_s = time.perf_counter() - started
    started = time.perf_counter()
    plan = allocate(problem, time_limit_s=args["limit"], seed=args.get("seed", 0), workers=2)
    wall = time.perf_counter() - started
    return {
        "greedy": greedy.makespan_s,
        "greedy_s": round(greedy_s, 4),
        "cmax": plan.makespan_s,
        "bound": plan.bound,
        "status": str(plan.status),
        "method": plan.method,
        "wall_s": round(wall, 2),
        "valid": not check_plan(problem, plan),
        "rss_mb": round(peak_rss_mb(), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child")
    parser.add_argument("--limits", default="10,60")
    parser.add_argument("--generated", type=int, default=4, help="generated instances per size")
    parser.add_argument(
        "--tag", help="save as scheduling_rsijk_TAG.json (a repeat, not the main run)"
    )
    opts = parser.parse_args()
    if opts.child:
        print(json.dumps(child(json.loads(opts.child))))
        return
    with (BENCH_DATA / "rsijk" / "best-known.csv").open(encoding="utf-8") as handle:
        best = {r["instance"]: int(r["best"]) for r in csv.DictReader(handle)}
    names = sorted(best, key=lambda s: (int(s.split("_")[1]), s))
    limits = [float(x) for x in opts.limits.split(",")]
    if opts.quick:
        names, limits = ["I_50_10_S_1-9_1", "I_50_20_S_1-124_1"], [2.0]
    info = machine()
    rows: list[dict[str, Any]] = []
    for name in names:
        for limit in limits:
            r = run_child("bench.scheduling_rsijk", {"instance": name, "limit": limit})
            r.update(instance=name, limit_s=limit, best=best[name])
            r["rpd"] = round(100 * (r["cmax"] - best[name]) / best[name], 2)
            r["greedy_rpd"] = round(100 * (r["greedy"] - best[name]) / best[name], 2)
            rows.append(r)
            print(table([r], COLUMNS), flush=True)
    summary = []
    for n in (50, 100):
        for limit in limits:
            sel = [r for r in rows if r["limit_s"] == limit and r["instance"].startswith(f"I_{n}_")]
            if sel:
                summary.append(
                    {
                        "jobs": n,
                        "limit_s": limit,
                        "mean_rpd": round(statistics.mean(r["rpd"] for r in sel), 2),
                        "mean_greedy_rpd": round(statistics.mean(r["greedy_rpd"] for r in sel), 2),
                        "never_worse_than_greedy": all(r["cmax"] <= r["greedy"] for r in sel),
                        "all_valid": all(r["valid"] for r in sel),
                    }
                )
    generated = []
    if not opts.quick:
        for n, m in ((50, 10), (100, 20)):
            for smax in (9, 124):
                for seed in range(opts.generated):
                    r = run_child(
                        "bench.scheduling_rsijk",
                        {"generated": [n, m, smax, 1000 + seed], "limit": 10.0},
                    )
                    r.update(instance=f"gen_{n}_{m}_S1-{smax}_{seed}", limit_s=10.0)
                    r["vs_greedy_pct"] = round(100 * (r["cmax"] / r["greedy"] - 1), 2)
                    generated.append(r)
                    print(table([r], GEN_COLUMNS), flush=True)
    print()
    print(table(rows, COLUMNS))
    print()
    print(table(summary, list(summary[0])))
    if generated:
        print()
        print(table(generated, GEN_COLUMNS))
    name = "scheduling_rsijk" + ("_quick" if opts.quick else "")
    if opts.tag:
        name += f"_{opts.tag}"
    path = save(
        name,
        {"machine": info, "runs": rows, "summary": summary, "generated": generated},
    )
    print(f"saved {path}", file=sys.stderr)


COLUMNS = [
    "instance",
    "limit_s",
    "best",
    "greedy",
    "greedy_rpd",
    "cmax",
    "rpd",
    "bound",
    "status",
    "wall_s",
    "valid",
    "rss_mb",
    "loadavg_1m_after",
]
GEN_COLUMNS = ["instance", "greedy", "cmax", "vs_greedy_pct", "bound", "wall_s", "valid", "rss_mb"]

if __name__ == "__main__":
    main()
