"""Configs that exercise every path of the simulator, for determinism checks.

Shared by ``tests/test_determinism.py`` (two runs agree, invariants hold) and by
``python -m tests.benchmarks.golden`` (a performance change leaves every figure bit-identical).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from explorer.config import default_config
from explorer.plugins import Registry, load_registry
from explorer.sim.build import Simulation

RUNTIME_PLUGINS = Path(__file__).resolve().parent.parent / "plugins" / "runtime"

_registry: Registry | None = None


def registry() -> Registry:
    """Built-in plugins plus the sample plugins of ``tests/plugins/runtime`` (no entry points)."""
    global _registry
    if _registry is None:
        _registry = load_registry([RUNTIME_PLUGINS], entry_points=False)
    return _registry


def config(ms: float = 100, seed: int = 1, **overrides: Any) -> dict[str, Any]:
    """The default config with ``run.duration`` in ms, a seed and ``section__key=value`` overrides.

    ``strategy=`` names the strategy; ``iommu__params__x`` and ``workload__N__x`` reach nested keys.
    """
    cfg = copy.deepcopy(default_config(registry()))
    cfg["run"]["duration"] = int(ms * 1_000_000)
    cfg["run"]["seed"] = seed
    for key, value in overrides.items():
        if key == "strategy":
            cfg["strategy"] = {"name": value, "params": {}}
            continue
        node: Any = cfg
        parts = key.split("__")
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        last = parts[-1]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return cfg


STRATEGIES = ("deferred", "sync", "sync-unsafe", "batched")


def cases() -> dict[str, dict[str, Any]]:
    """Name -> config. Short runs (tens of ms simulated) so the whole set runs in seconds."""
    out: dict[str, dict[str, Any]] = {}
    for s in STRATEGIES:
        for target in ("uniform", "adversarial"):
            for seed in (1, 7):
                out[f"{s}-{target}-{seed}"] = config(60, seed, strategy=s, iommu__probe_target=target)
    out["default-300ms"] = config(300, 3)
    out["batched-small"] = config(
        80, 2, strategy="batched", strategy__params__batch=8, strategy__params__max_age=300_000,
        iommu__probe_target="adversarial",
    )
    out["holes"] = config(
        80, 4, strategy="deferred", workload__1__unmarked=1.0, workload__2__bootmem_fraction=0.5,
        workload__2__rate=200.0, iommu__probe_target="adversarial", iommu__probe_mms=3,
    )
    out["set-assoc"] = config(
        60, 5, strategy="sync-unsafe", iommu__params__cache_entries=32, iommu__params__cache_ways=4,
        iommu__sva_mms=64, iommu__pasids_per_mm=2, iommu__walk_rate=200_000.0,
    )
    out["small-machine"] = config(
        60, 6, strategy="sync-unsafe", kernel__cpus=2, kernel__pages=2048, kernel__kernel_slots=64,
        kernel__background_alloc_rate=1_000_000.0,
    )
    out["zero-delays"] = config(
        40, 8, strategy="deferred", kernel__workqueue_delay=0, kernel__slot_refill=0,
        kernel__spinlock_ns=0, kernel__free_page_ns=0, iommu__params__completion_wait=0,
    )
    out["no-background"] = config(40, 9, strategy="sync-unsafe", kernel__background_alloc_rate=0.0)
    out["arm64"] = config(40, 10, strategy="deferred", kernel__arch="arm64")
    out["no-iommu"] = config(40, 11, strategy="deferred", iommu__model="none", iommu__params={})
    out["async-off"] = config(40, 12, strategy="deferred", kernel__async_kernel_pgtable_free="n")
    out["many-cpus"] = config(40, 13, strategy="batched", kernel__cpus=64, workload__0__cpus="3-9")
    out["test-buggy"] = config(
        40, 14, strategy="test-buggy-late-free", iommu__model="test-fixed-cost", iommu__sva_mms=1000,
        iommu__walk_rate=0.0, iommu__probe_rate=200_000.0, iommu__probe_target="adversarial",
        iommu__params={"pte_entries": 4096, "effective": 0.5},
    )
    out["never-frees"] = config(20, 15, strategy="test-never-frees")
    # The vendor models: command queues, stalls, three cache levels, kernel-only invalidation scopes.
    out["vtd-sync"] = config(40, 18, strategy="sync", iommu__model="intel-vtd", iommu__params={},
                             iommu__sva_mms=64, iommu__probe_target="adversarial")
    out["amd-deferred"] = config(40, 19, strategy="deferred", iommu__model="amd-vi", iommu__params={},
                                 iommu__count=3, iommu__probe_target="adversarial")
    out["smmuv3-arm64"] = config(40, 20, strategy="sync-unsafe", kernel__arch="arm64",
                                 iommu__model="arm-smmuv3", iommu__params={})
    # Events so dense that they keep landing on the same nanosecond: every tie rule is exercised.
    # Events about every nanosecond (rates of 1e9/s), so they keep landing on the same nanosecond:
    # every tie rule of the engine and its lane is exercised.
    out["tie-storm"] = config(
        0.03, 17, strategy="deferred", kernel__background_alloc_rate=1e9, kernel__pages=4096,
        kernel__workqueue_delay=3, kernel__spinlock_ns=1, kernel__free_page_ns=1, kernel__slot_refill=5,
        iommu__probe_rate=3e8, iommu__walk_rate=1e8, iommu__params__invalidate_per_mm=1,
        iommu__params__completion_wait=1, iommu__params__cache_entries=2, iommu__probe_target="adversarial",
        run__drain=20_000,
        workload=[{"name": "test-steady", "rate": 1e8, "burst": 2}, {"name": "user-teardown", "rate": 5e7},
                  {"name": "cpa-collapse", "rate": 3e7, "unmarked": 1.0, "tlb_flush_all": 1}],
    )
    # Issue 11: the kworker waiting for its CPU, PUD teardowns (groups), unmarked shares, the SVA
    # binding topology, bind/unbind traffic on the lock, v3's one-shot items per kernel TLB flush.
    out["storm-preempt"] = config(
        40, 21, strategy="deferred", kernel__preemption="none", kernel__workqueue_delay=1000, kernel__kernel_slots=2048,
        kernel__pages=16384, workload__0__pud_fraction=0.3, workload__0__pud_ptes=32,
        workload__1__unmarked=0.5, workload__2__rate=200.0, workload__2__burst=128,
        iommu__count=3, iommu__iommus_per_mm=2, iommu__bind_rate=5000.0, iommu__probe_target="adversarial",
    )
    out["v3-tlb"] = config(
        40, 22, strategy="v3-flush-deferred", strategy__params__kzalloc_fail_every=5,
        kernel__preemption="full", iommu__probe_target="adversarial",
        workload=[{"name": "vmalloc-huge", "rate": 5000.0}, {"name": "kernel-tlb-flush", "rate": 2000.0},
                  {"name": "cpa-collapse", "rate": 500.0, "burst": 3}],
    )
    out["steady-atomic"] = config(
        40, 16, strategy="sync", workload=[{"name": "test-steady", "rate": 20_000.0, "burst": 3, "atomic": True}],
    )
    return out


def outcome(cfg: dict[str, Any], *, stepped: bool = False) -> dict[str, Any]:
    """Everything observable about one run: metrics, invariants, and (stepped) snapshots and trace.

    ``stepped`` advances in many small uneven steps, as the TUI does, taking a snapshot at each
    tenth of the run; the final metrics must be the same as for one ``run()``.
    """
    sim = Simulation(cfg, registry())
    out: dict[str, Any] = {}
    if stepped:
        sim.enable_trace(200)
        snaps = []
        step = max(1, sim.end_ns // 997)
        marks = [sim.end_ns * i // 10 for i in range(1, 10)]
        while not sim.finished:
            sim.advance(sim.now + step)
            if marks and sim.now >= marks[0]:
                marks.pop(0)
                snap = sim.snapshot()
                snaps.append(snap)
        out["snapshots"] = snaps
        out["trace"] = sim.trace_lines()
        out["metrics"] = sim.metrics()
    else:
        out["metrics"] = sim.run()
    out["invariants"] = sim.invariant_problems()
    return out


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=repr)
