"""The history as scenarios: each preset shows its outcome, through the mechanism, on several seeds.

Runs are cut to 20 ms of simulated time (the presets' own duration is the default 100 ms); each
scenario's outcome was checked on seeds 1..20 at 20 ms (docs/scenarios.md), the tests use three.
"""

from __future__ import annotations

from typing import Any

import pytest

from explorer.documents import check_expectations
from explorer.plugins import Registry
from explorer.sim.build import build_simulation
from tests.conftest import make_config

SEEDS = (1, 2, 3)
#: Long enough for every scenario's workload to show what it does, and short.
RUN_20MS = "run.duration=20ms"

#: Section 6 of kernel-model.md, plus the vendor presets and large-sva (issue 4).
SCENARIOS = (
    "before-fix",
    "sva-disabled-x86",
    "v3-design",
    "linux-6.19",
    "cpa-unmarked-2026",
    "hotremove-bootmem",
    "sync-in-atomic",
    "linux-6.19-amd",
    "linux-6.19-smmuv3",
    "large-sva",
    "nft-vmalloc-storm",
    "bpf-jit-burst",
    "dimm-hot-remove",
)
KERNEL_SOURCES = {"vmalloc-huge", "cpa-collapse", "hot-remove"}


def run(registry: Registry, scenario: str, *overrides: str, trace: int = 0) -> dict[str, Any]:
    sim = build_simulation(make_config(registry, RUN_20MS, *overrides, scenario=scenario), registry)
    if trace:
        sim.enable_trace(trace)
    m = sim.run()
    assert sim.invariant_problems() == []
    m["_sim"] = sim
    return m


def violators(m: dict[str, Any]) -> set[str]:
    """Every source that any violation is attributed to."""
    return {src for v in m["violations"].values() for src, n in v["by_source"].items() if n}


def workload(m: dict[str, Any], name: str) -> dict[str, Any]:
    return next(w for w in m["_sim"].config["workload"] if w["name"] == name)


def total(m: dict[str, Any], kind: str) -> int:
    return m["violations"][kind]["total"]


def test_every_scenario_of_the_history_is_registered_with_its_story(registry: Registry) -> None:
    for name in SCENARIOS:
        sc = registry.scenarios[name]
        assert sc.description and sc.expected and sc.expect, name
        for v in sc.expect.values():
            assert v in ("zero", "nonzero") or v.split(" ", 1)[0] in ("<", "<=", ">", ">=", "=="), (name, v)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_shows_its_expected_outcome(registry: Registry, name: str, seed: int) -> None:
    """What `run --scenario` checks: every `expect` entry and `only_source`, on several seeds."""
    sc = registry.scenarios[name]
    m = run(registry, name, f"run.seed={seed}")
    for check in check_expectations(sc, m):
        assert check["ok"] is True, (name, seed, check)
    if sc.only_source:
        assert violators(m) == {sc.only_source}, (name, seed, m["violations"])
    # User page tables never take the kernel path, so they never cause a violation.
    assert "user-teardown" not in violators(m)


# --------------------------------------------------------------------------- chapter by chapter


def test_before_fix_reuses_freed_tables_from_every_kernel_source(registry: Registry) -> None:
    m = run(registry, "before-fix")
    assert m["flushes"] == 0 and total(m, "use_after_free") > 0
    assert set(m["violations"]["use_after_free"]["by_source"]) <= KERNEL_SOURCES
    # The mechanism: each example is a walk through a cached pointer into a page now holding data.
    for e in m["examples"]:
        if e["kind"] == "use_after_free":
            assert e["page_state"] == "data" and e["reused_by"] == "data"
            assert e["time_ns"] > e["unlinked_at_ns"]


def test_v3_design_is_unsafe_although_every_free_is_followed_by_a_flush(registry: Registry) -> None:
    m = run(registry, "v3-design", trace=1_000_000)
    assert total(m, "use_after_free") > 0
    lines = m["_sim"].kernel.tracer
    frees = [t for t, what, f in lines if what == "free" and f["source"] in KERNEL_SOURCES]
    flushes = [t for t, what, _ in lines if what == "flush_start"]
    assert frees and flushes
    # Every kernel free has a flush starting at or after it ...
    assert all(any(fl >= t for fl in flushes) for t in frees)
    # ... yet the free came first: the page was back in the allocator before any IOMMU heard of it,
    # right after the unlink and the CPU TLB flush (vmalloc's flush_tlb_kernel_range(), CPA's
    # flush_tlb_all()).
    cpu_flush = workload(m, "vmalloc-huge")["cpu_flush"]
    assert m["latency_ns_by_source"]["vmalloc-huge"]["max"] == cpu_flush
    assert m["latency_ns_by_source"]["cpa-collapse"]["max"] == workload(m, "cpa-collapse")["tlb_flush_all"]
    assert m["flushes"] == m["worker_runs"] > 0
    # Every use-after-free walk happened in the window: after the free, and before the end of the
    # first flush that started after it (that flush drops the stale entry from every cache).
    ends = [t for t, what, _ in lines if what == "flush_end"]
    spans = list(zip(flushes, ends, strict=False))  # flushes are serialised by iommu_sva_lock
    uafs = [e for e in m["examples"] if e["kind"] == "use_after_free"]
    assert uafs
    for e in uafs:
        assert e["page_state"] == "data"
        next_end = min((end for start, end in spans if start >= e["unlinked_at_ns"]), default=None)
        assert next_end is None or e["unlinked_at_ns"] <= e["time_ns"] <= next_end


def test_linux_6_19_is_safe_even_against_the_worst_device(registry: Registry) -> None:
    adversarial = ("iommu.probe_target=adversarial", "iommu.probe_rate=200000/s")
    queued = 0
    for seed in SEEDS:
        m = run(registry, "linux-6.19", *adversarial, f"run.seed={seed}")
        assert total(m, "use_after_free") == total(m, "stale_walk_free") == 0
        queued += m["stale_walk_queued"]["total"]
        assert 0 < m["flushes"] <= m["worker_runs"]
        assert m["flushes"] < m["kernel_tables_freed"]
        assert not violators(m)
    # Probes do reach unlinked tables, but only while they are still queued: harmless.
    assert queued > 0


def test_cpa_unmarked_2026_leaks_only_through_cpa(registry: Registry) -> None:
    m = run(registry, "cpa-unmarked-2026")
    assert total(m, "use_after_free") > 0 and violators(m) == {"cpa-collapse"}
    # The marked sources were active and went through the 6.19 path safely.
    assert m["freed_by_source"]["by_source"]["vmalloc-huge"] > 0 and m["flushes"] > 0
    # Unmarked CPA tables never reach the strategy, so they never wait: freed the moment they are
    # unlinked. The same scenario with the tables marked is safe.
    fixed = run(registry, "cpa-unmarked-2026", "workload.cpa-collapse.unmarked=0")
    assert not violators(fixed)


def test_hotremove_bootmem_leaks_only_through_hot_remove(registry: Registry) -> None:
    m = run(registry, "hotremove-bootmem")
    assert total(m, "use_after_free") > 0 and violators(m) == {"hot-remove"}
    hot = m["freed_by_source"]["by_source"]["hot-remove"]
    assert m["bypassed_pagetable_free"]["by_source"] == {"hot-remove": hot}  # every burst is bootmem
    assert m["unlinked_by_source"]["by_source"]["hot-remove"] >= 2048  # bursts of thousands
    assert m["starved"]["total"] == 0  # enough kernel slots for the bursts
    # Tables from the page allocator (not bootmem) go through pagetable_free() and are safe.
    fixed = run(registry, "hotremove-bootmem", "workload.hot-remove.bootmem_fraction=0")
    assert not violators(fixed)


def test_sync_in_atomic_sleeps_only_in_the_assumed_atomic_caller(registry: Registry) -> None:
    m = run(registry, "sync-in-atomic")
    assert violators(m) == {"vmalloc-huge#1"}
    # One sleep in atomic context per kernel table that caller frees (each takes the mutex) ...
    assert m["violations"]["sleep_in_atomic"]["by_source"]["vmalloc-huge#1"] == m["freed_by_source"]["by_source"][
        "vmalloc-huge#1"
    ]
    # ... and none from CPA collapse, which runs in process context and did free tables.
    assert m["freed_by_source"]["by_source"]["cpa-collapse"] > 0
    assert total(m, "use_after_free") == 0
    # One flush per table, in the caller: no worker.
    assert m["flushes"] == m["kernel_tables_freed"] and m["worker_runs"] == 0


def test_linux_6_19_amd_costs_three_commands_per_mm_and_pasid(registry: Registry) -> None:
    m = run(registry, "linux-6.19-amd")
    assert not violators(m)
    cfg = m["_sim"].config["iommu"]
    # each mm is bound on iommus_per_mm IOMMUs (0: all of them), and each binding is flushed once
    per_flush = cfg["sva_mms"] * cfg["pasids_per_mm"] * min(cfg["iommus_per_mm"] or cfg["count"], cfg["count"])
    assert m["iommu_commands"] == {
        k: m["flushes"] * per_flush for k in ("COMPLETION_WAIT", "INVALIDATE_IOMMU_PAGES", "INVALIDATE_IOTLB_PAGES")
    }


def test_linux_6_19_smmuv3_frees_at_once_and_is_safe(registry: Registry) -> None:
    m = run(registry, "linux-6.19-smmuv3")
    assert not m["async_kernel_pgtable_free"]
    assert m["flushes"] == m["strategy_calls"] == 0 and m["iommu_commands"] == {}
    # Freed right after the CPU TLB flush that follows the unlink: nothing waits for a worker.
    assert m["latency_ns_by_source"]["cpa-collapse"]["max"] == workload(m, "cpa-collapse")["tlb_flush_all"]
    assert m["latency_ns_by_source"]["vmalloc-huge"]["max"] == workload(m, "vmalloc-huge")["cpu_flush"]
    assert m["kernel_tables_freed"] > 0 and m["worker_runs"] == 0
    # The devices probe as hard as in before-fix, but EPD1 keeps kernel tables out of their caches.
    assert all(u["probes"] > 0 and u["kernel_entries"] == 0 for u in m["iommus"])
    assert not violators(m) and m["stale_walk_queued"]["total"] == 0


def test_large_sva_makes_each_flush_expensive_and_batches_grow(registry: Registry) -> None:
    large = run(registry, "large-sva")
    small = run(registry, "large-sva", "iommu.sva_mms=16")
    assert not violators(large) and not violators(small)
    assert large["flush_ns"]["p50"] == 64 * small["flush_ns"]["p50"]  # 1024 / 16 mms, linear fan-out
    assert large["flush_ns"]["p50"] > 1_000_000  # milliseconds per batch
    # Tables keep arriving during the long flush: fewer, bigger batches, and a longer wait.
    assert large["flushes"] < small["flushes"]
    assert large["latency_ns"]["p50"] > small["latency_ns"]["p50"]
    assert large["queue"]["peak"] > small["queue"]["peak"]


@pytest.mark.parametrize("vendor", ("intel-vtd", "amd-vi", "arm-smmuv3"))
def test_large_sva_compares_vendors(registry: Registry, vendor: str) -> None:
    m = run(registry, "large-sva", f"iommu.model={vendor}")
    assert not violators(m) and m["flushes"] > 0
    assert m["flush_ns"]["p50"] > 1_000_000


def test_docs_describe_every_scenario(registry: Registry) -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "scenarios.md").read_text()
    for name in registry.scenarios:
        assert f"\n## {name}\n" in doc and f"| `{name}` |" in doc, name
