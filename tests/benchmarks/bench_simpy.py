"""1. Against SimPy: the reference model gives the same answers, and how much slower it is."""

from __future__ import annotations

import math
import statistics
from typing import Any

from tests.benchmarks.cases import config, registry
from tests.benchmarks.common import Figure, alternate, median, na
from tests.benchmarks.simpy_model import Model, explorer_figures

#: The figures that must agree (the check); the rest of the metrics the SimPy script does not keep.
COMPARED = ("flushes", "worker_runs", "kernel_tables_freed", "user_tables_freed", "use_after_free",
            "stale_walk_free", "sleep_in_atomic", "leaked", "stale_walk_queued", "cache_hits", "cache_misses")


def _explorer(cfg: dict[str, Any]) -> dict[str, Any]:
    from explorer.sim.build import Simulation

    return explorer_figures(Simulation(cfg, registry()).run())


def check(seeds: int = 20, ms: float = 100, **overrides: Any) -> dict[str, Any]:
    """Run both on ``seeds`` seeds: how many agree exactly, and whether they agree in distribution.

    Equal in distribution: for every figure the two means over the seeds differ by less than three
    standard errors of the difference (or both are constant and equal).
    """
    same = 0
    ours: dict[str, list[float]] = {k: [] for k in COMPARED}
    theirs: dict[str, list[float]] = {k: [] for k in COMPARED}
    differing: list[dict[str, Any]] = []
    for seed in range(1, seeds + 1):
        cfg = config(ms, seed, **overrides)
        a = _explorer(cfg)
        b = Model(cfg).run()
        if all(a[k] == b[k] for k in COMPARED):
            same += 1
        else:
            differing.append({"seed": seed, **{k: (a[k], b[k]) for k in COMPARED if a[k] != b[k]}})
        for k in COMPARED:
            ours[k].append(a[k])
            theirs[k].append(b[k])
    distribution_ok = True
    worst = ""
    for k in COMPARED:
        ma, mb = statistics.fmean(ours[k]), statistics.fmean(theirs[k])
        se = math.sqrt(statistics.pvariance(ours[k]) / seeds + statistics.pvariance(theirs[k]) / seeds)
        if (se == 0 and ma != mb) or (se > 0 and abs(ma - mb) > 3 * se):
            distribution_ok = False
            worst = f"{k}: mean {ma:.1f} vs {mb:.1f}"
    return {"seeds": seeds, "identical": same, "equal_in_distribution": distribution_ok, "differing": differing[:5],
            "worst": worst, "totals": {k: sum(ours[k]) for k in ("flushes", "kernel_tables_freed",
                                                                  "use_after_free", "sleep_in_atomic")}}


def run(quick: bool = False) -> list[Figure]:
    figures: list[Figure] = []
    try:
        import simpy  # noqa: F401
    except ImportError:
        reason = na("SimPy is not installed: pip install -e '.[bench]'")
        return [Figure("simpy_ratio", "SimPy / explorer wall time, default scenario", reason, target=">= 3"),
                Figure("simpy_check", "SimPy model agrees with the explorer", reason)]

    # The check: the default scenario (deferred, no violations) and the kernel before the fix with the
    # adversarial device (use-after-free by the hundred), each on 20 seeds.
    seeds = 5 if quick else 20
    default = check(seeds)
    unsafe = check(seeds, strategy="sync-unsafe", iommu__probe_target="adversarial")
    # sleep in atomic from an atomic caller (vmalloc-huge with atomic = true; CPA is process context)
    sync = check(max(3, seeds // 4), strategy="sync", workload__0__atomic=True)
    # the storms: full preemption, PUD teardowns (groups with one TLB flush), unmarked shares
    storm = check(max(3, seeds // 4), kernel__preemption="full", kernel__kernel_slots=2048,
                  workload__0__pud_fraction=0.2, workload__0__pud_ptes=64, workload__1__unmarked=0.5,
                  workload__1__burst=4, workload__2__burst=256, iommu__probe_target="adversarial")
    parts = []
    ok = True
    for name, res in (("default", default), ("sync-unsafe+adversarial", unsafe), ("sync", sync),
                      ("storm", storm)):
        parts.append(f"{name} {res['identical']}/{res['seeds']} identical")
        ok = ok and (res["identical"] == res["seeds"] or res["equal_in_distribution"])
    verdict = ("identical for every seed" if all(r["identical"] == r["seeds"] for r in (default, unsafe, sync, storm))
               else "equal in distribution" if ok else "DIFFERENT")
    figures.append(Figure("simpy_check", "SimPy model agrees (flushes, frees, violations)", verdict,
                          note="; ".join(parts),
                          extra={"simpy_check_detail": {"default": default, "sync_unsafe_adversarial": unsafe,
                                                        "sync": sync, "storm": storm}}))

    # The ratio: 1 s of simulated time of the default scenario, alternating the two sides.
    ms = 300 if quick else 1000
    cfg = config(ms, 1)
    rounds = 2 if quick else 3
    t = alternate(lambda: _explorer(cfg), lambda: Model(cfg).run(), rounds)
    ex, sp = median(t["a_wall"]), median(t["b_wall"])
    ratio = sp / ex
    cpu_ratio = median(t["b_cpu"]) / median(t["a_cpu"])
    figures.append(Figure("simpy_ratio", "SimPy / explorer wall time, default scenario", round(ratio, 2), "x",
                          ">= 3", note=f"{ms / 1000:g} s simulated: explorer {ex:.2f} s, SimPy {sp:.2f} s "
                          f"(CPU-time ratio {cpu_ratio:.2f})",
                          extra={"explorer_s": round(ex, 3), "simpy_s": round(sp, 3),
                                 "simpy_cpu_ratio": round(cpu_ratio, 2)}))
    return figures
