"""Single-machine total weighted tardiness (OR-Library wt40): dispatching
rules, the greedy baseline and allocate(auto), against the proven optima.

    .venv/bin/python -m bench.scheduling_wt           # 125 instances, 10 s each
    .venv/bin/python -m bench.scheduling_wt --quick   # 10 instances, 1 s each

"sum ratio" = sum of values / sum of optima - 1 (the target: <= 0.3 % at
10 s); "ATC best-k" = the best of ATC with k in {0.5, 1, 1.5, 2, 3, 4, 6}.
No lower bound is reported: CP-SAT's bound on weighted tardiness is useless.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

from bench.scheduling_common import BENCH_DATA, machine, peak_rss_mb, save, table

K_SET = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)


def main() -> None:
    from scheduler.allocator import allocate
    from scheduler.formats import count_orlib_wt, read_orlib_wt
    from scheduler.greedy import atcs_schedule, edd_order, list_schedule
    from scheduler.instances.compiled import compile_problem
    from scheduler.validate import check_plan

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--limit", type=float, default=10.0)
    opts = parser.parse_args()
    text = (BENCH_DATA / "orlib-wt" / "wt40.txt").read_text(encoding="utf-8")
    optima = [int(v) for v in (BENCH_DATA / "orlib-wt" / "wtopt40.txt").read_text().split()]
    count = count_orlib_wt(text)
    indices = list(range(1, count + 1))
    limit = opts.limit
    if opts.quick:
        indices, limit = indices[::12][:10], 1.0
    info = machine()
    rows: list[dict[str, Any]] = []
    for k in indices:
        problem = read_orlib_wt(text, k)
        inst = compile_problem(problem)
        edd = list_schedule(inst, edd_order(inst)).tardiness
        atc = {kk: atcs_schedule(inst, kk).tardiness for kk in K_SET}
        greedy = allocate(problem, method="greedy")
        started = time.perf_counter()
        plan = allocate(problem, time_limit_s=limit, seed=0, workers=2)
        wall = time.perf_counter() - started
        row = {
            "instance": k,
            "optimum": optima[k - 1],
            "edd": edd,
            "atc_k2": atc[2.0],
            "atc_best_k": min(atc.values()),
            "greedy": greedy.weighted_tardiness_s,
            "auto": plan.weighted_tardiness_s,
            "wall_s": round(wall, 2),
            "valid": not check_plan(problem, plan),
            "loadavg_1m": os.getloadavg()[0],
        }
        rows.append(row)
        print(table([row], list(row)), flush=True)
    total = sum(r["optimum"] for r in rows)
    summary = []
    for column in ("edd", "atc_k2", "atc_best_k", "greedy", "auto"):
        positive = [r for r in rows if r["optimum"] > 0]
        summary.append(
            {
                "method": column,
                "sum_ratio_pct": round(100 * (sum(r[column] for r in rows) / total - 1), 3),
                "mean_rel_dev_pct": round(
                    100 * statistics.mean(r[column] / r["optimum"] - 1 for r in positive), 3
                ),
                "optimal_hits": sum(1 for r in rows if r[column] <= r["optimum"]),
            }
        )
    never_worse = all(r["auto"] <= r["atc_best_k"] for r in rows)
    print()
    print(table(summary, list(summary[0])))
    print(
        f"instances {len(rows)}, limit {limit} s, auto never worse than ATC best-k: {never_worse}"
    )
    path = save(
        "scheduling_wt40" + ("_quick" if opts.quick else ""),
        {
            "machine": info,
            "limit_s": limit,
            "summary": summary,
            "auto_never_worse_than_atc_best_k": never_worse,
            "all_valid": all(r["valid"] for r in rows),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "runs": rows,
        },
    )
    print(f"saved {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
