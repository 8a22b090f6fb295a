"""3. Scale: wall time and peak RSS against run length; wall time against CPUs and SVA-bound mms."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.benchmarks.cases import config, registry
from tests.benchmarks.common import Figure, run_python

# A whole process: build and run the default scenario for DURATION ms, report wall time and peak RSS.
_RUN = r"""
import json, resource, sys, time
from tests.benchmarks.cases import config, registry
from explorer.sim.build import Simulation
cfg = config(float(sys.argv[1]), 1)
reg = registry()
t = time.perf_counter()
m = Simulation(cfg, reg).run()
wall = time.perf_counter() - t
print(json.dumps({"wall_s": wall, "events": m["events"],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _one(ms: float) -> dict[str, Any]:
    return json.loads(run_python(_RUN, str(ms)).strip().splitlines()[-1])


def _timed(**overrides: Any) -> float:
    from explorer.sim.build import Simulation

    best = float("inf")
    for _ in range(2):
        cfg = config(200, 1, **overrides)
        t = time.perf_counter()
        Simulation(cfg, registry()).run()
        best = min(best, time.perf_counter() - t)
    return best


def run(quick: bool = False) -> list[Figure]:
    base_ms = 100  # the default duration
    lengths = (1, 10, 100) if not quick else (1, 10, 30)
    res = {n: _one(base_ms * n) for n in lengths}
    top = lengths[-1]
    growth = res[top]["peak_rss_mb"] / res[1]["peak_rss_mb"] - 1
    rows = ", ".join(f"{n}x: {r['wall_s']:.2f} s {r['peak_rss_mb']:.1f} MB" for n, r in res.items())
    figures = [
        Figure("rss_growth_100x", f"peak RSS growth, {top}x vs 1x the duration", round(growth, 4), "",
               "<= 0.1", note=rows,
               extra={"scale_by_duration": {f"{n}x": {k: round(v, 3) for k, v in r.items()} for n, r in res.items()},
                      "events_per_s_100x": round(res[top]["events"] / res[top]["wall_s"])}),
    ]
    cpus = {n: round(_timed(kernel__cpus=n), 3) for n in ((2, 8, 32) if quick else (2, 8, 32, 128))}
    mms = {n: round(_timed(iommu__sva_mms=n), 3) for n in ((16, 256) if quick else (16, 256, 4096))}
    figures.append(Figure("wall_vs_cpus", "wall time of 200 ms simulated vs kernel.cpus",
                          " ".join(f"{n}:{t:.2f}s" for n, t in cpus.items()), extra={"wall_by_cpus": cpus}))
    figures.append(Figure("wall_vs_sva_mms", "wall time of 200 ms simulated vs iommu.sva_mms",
                          " ".join(f"{n}:{t:.2f}s" for n, t in mms.items()), extra={"wall_by_sva_mms": mms}))
    return figures
