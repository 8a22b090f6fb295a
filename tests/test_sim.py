"""The simulated kernel against the semantics of kernel-model.md, numbers derived by reasoning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explorer.plugins import Registry, load_registry
from explorer.sim.build import Simulation, build_simulation
from tests.conftest import make_config, simulate


def with_workloads(
    registry: Registry, names: list[str], *overrides: str, scenario: str | None = None
) -> dict[str, Any]:
    cfg = make_config(registry, *overrides, scenario=scenario)
    cfg["workload"] = [w for w in cfg["workload"] if w["name"] in names]
    return cfg


def run_cfg(registry: Registry, cfg: dict[str, Any]) -> dict[str, Any]:
    return build_simulation(cfg, registry).run()


# Settings under which a device sees nearly every kernel table before it is unlinked: few slots,
# a fast probing device, a fast-reusing allocator.
HOT = (
    "run.duration=20ms",
    "kernel.kernel_slots=32",
    "iommu.probe_rate=2000000/s",
    "kernel.background_alloc_rate=2000000/s",
)


# --------------------------------------------------------------------------- the history


def test_before_fix_shows_use_after_free(registry: Registry) -> None:
    m = simulate(registry, *HOT, scenario="before-fix")
    assert m["violations"]["use_after_free"]["total"] > 0
    assert m["flushes"] == 0


def test_linux_6_19_is_safe_and_batches(registry: Registry) -> None:
    m = simulate(registry, *HOT, scenario="linux-6.19")
    assert m["violations"]["use_after_free"]["total"] == 0
    assert m["violations"]["stale_walk_free"]["total"] == 0
    assert 0 < m["flushes"] < m["kernel_tables_freed"]
    # Probes do reach queued tables: harmless, counted.
    assert m["stale_walk_queued"]["total"] > 0


def test_use_after_free_is_attributed_and_reproducible(registry: Registry) -> None:
    m = simulate(registry, *HOT, scenario="before-fix")
    ex = [e for e in m["examples"] if e["kind"] == "use_after_free"]
    assert ex, "each use-after-free comes with the table, slot, entry and who freed/reused it"
    e = ex[0]
    assert e["source"] in m["violations"]["use_after_free"]["by_source"]
    assert e["page_state"] in ("data", "table")
    assert e["reused_by"] in ("data", "kernel", "user-teardown")
    assert e["unlinked_at_ns"] < e["time_ns"]
    assert sum(m["violations"]["use_after_free"]["by_source"].values()) == m["violations"]["use_after_free"]["total"]


# --------------------------------------------------------------------------- strategies


def test_sync_flushes_once_per_kernel_table(registry: Registry) -> None:
    cfg = with_workloads(registry, ["vmalloc-huge", "user-teardown"], "strategy.name=sync")
    m = run_cfg(registry, cfg)
    assert m["kernel_tables_freed"] > 0
    assert m["flushes"] == m["kernel_tables_freed"]
    assert m["worker_runs"] == 0
    assert m["violations"]["sleep_in_atomic"]["total"] == 0


def test_deferred_flushes_once_per_worker_run(registry: Registry) -> None:
    m = simulate(registry, "strategy.name=deferred", "workload.vmalloc-huge.rate=50000/s")
    assert m["flushes"] == m["worker_runs"]
    assert m["worker_runs"] < m["kernel_tables_freed"]  # at this rate, batches hold several tables


def test_deferred_costs_follow_from_the_generic_model(registry: Registry) -> None:
    cfg = with_workloads(registry, ["vmalloc-huge"], "strategy.name=deferred")
    m = run_cfg(registry, cfg)
    ip = cfg["iommu"]["params"]
    # Each mm is bound on one IOMMU (iommus_per_mm = 1): the 16 mms split 8 + 8 over the 2 IOMMUs.
    assert cfg["iommu"]["iommus_per_mm"] == 1 and cfg["iommu"]["sva_mms"] % cfg["iommu"]["count"] == 0
    bound = cfg["iommu"]["sva_mms"] // cfg["iommu"]["count"]
    per_iommu = bound * ip["invalidate_per_mm"] + ip["completion_wait"]
    flush = cfg["iommu"]["count"] * per_iommu
    # One worker: flushes never overlap, so each takes exactly the model's time.
    assert m["flush_ns"]["min"] == m["flush_ns"]["max"] == flush
    assert m["flush_ns"]["mean"] == flush
    assert m["flush_time_ns"] == flush * m["flushes"]
    # The caller only takes the spinlock once.
    assert m["caller_ns"]["max"] == cfg["kernel"]["spinlock_ns"]
    # No table can be freed before the kworker started and the flush completed.
    assert m["latency_ns"]["p50"] >= cfg["kernel"]["workqueue_delay"] + flush


@pytest.mark.parametrize("batch", [4, 7])
def test_batched_with_huge_age_flushes_per_full_batch(registry: Registry, batch: int) -> None:
    m = simulate(registry, "strategy.name=batched", f"strategy.params.batch={batch}", "strategy.params.max_age=1000s")
    freed = m["kernel_tables_freed"]
    assert freed > 2 * batch
    assert m["flushes"] in (freed // batch, freed // batch + 1)
    # What did not fill a batch is never freed: it is reported as leaked, not lost.
    assert m["violations"]["leaked"]["total"] == m["kernel_tables_unlinked"] - freed
    assert m["violations"]["leaked"]["total"] < batch


def test_batched_age_bound_frees_everything(registry: Registry) -> None:
    m = simulate(registry, "strategy.name=batched", "strategy.params.batch=100000", "strategy.params.max_age=2ms")
    assert m["violations"]["leaked"]["total"] == 0
    assert m["kernel_tables_freed"] == m["kernel_tables_unlinked"]
    assert m["latency_ns"]["max"] >= 2_000_000  # waited for the timer
    assert m["flushes"] >= 1


def test_user_tables_never_enter_a_strategy(registry: Registry, test_registry: Registry) -> None:
    cfg = with_workloads(test_registry, ["user-teardown"], "strategy.name=test-never-frees")
    m = run_cfg(test_registry, cfg)
    assert m["user_tables_freed"] > 0
    assert m["strategy_calls"] == 0
    assert m["violations"]["leaked"]["total"] == 0
    assert m["tables_pending"] == 0


def test_async_option_off_frees_kernel_tables_at_once(test_registry: Registry) -> None:
    cfg = with_workloads(
        test_registry, ["vmalloc-huge"], "strategy.name=test-never-frees", "kernel.async_kernel_pgtable_free=n"
    )
    m = run_cfg(test_registry, cfg)
    assert m["strategy_calls"] == 0
    assert m["kernel_tables_freed"] == m["kernel_tables_unlinked"] > 0
    # Freed right after the CPU TLB flush that precedes pagetable_free().
    flush = cfg["workload"][0]["cpu_flush"]
    assert m["latency_ns"]["min"] == m["latency_ns"]["max"] == flush
    assert m["flushes"] == 0


def test_async_auto_follows_kconfig(registry: Registry) -> None:
    assert simulate(registry, "run.duration=5ms")["async_kernel_pgtable_free"] is True
    assert simulate(registry, "run.duration=5ms", "kernel.iommu_sva=false")["async_kernel_pgtable_free"] is False
    assert simulate(registry, "run.duration=5ms", "kernel.arch=arm64")["async_kernel_pgtable_free"] is False


def test_iommu_sva_off_means_no_flush_work(registry: Registry) -> None:
    m = simulate(registry, "kernel.iommu_sva=false", "kernel.async_kernel_pgtable_free=y")
    assert m["sva_present"] is False
    assert m["flushes"] == 0  # iommu_sva_invalidate_kva_range returns at once
    assert m["worker_runs"] > 0
    assert m["kernel_tables_freed"] == m["kernel_tables_unlinked"]


def test_arm64_walks_never_reach_kernel_tables(registry: Registry) -> None:
    m = simulate(registry, *HOT, "kernel.arch=arm64", "strategy.name=sync-unsafe")
    assert m["violations"]["use_after_free"]["total"] == 0
    assert m["stale_walk_queued"]["total"] == 0
    assert m["flushes"] == 0


# --------------------------------------------------------------------------- the checker


def test_sync_in_atomic_context_is_a_violation_deferred_is_not(registry: Registry) -> None:
    cfg = with_workloads(registry, ["vmalloc-huge"], "strategy.name=sync", "workload.vmalloc-huge.atomic=true")
    m = run_cfg(registry, cfg)
    assert m["kernel_tables_freed"] > 0
    assert m["violations"]["sleep_in_atomic"]["total"] == m["kernel_tables_freed"]
    assert m["violations"]["sleep_in_atomic"]["by_source"] == {"vmalloc-huge": m["kernel_tables_freed"]}
    cfg["strategy"] = {"name": "deferred", "params": {}}
    assert run_cfg(registry, cfg)["violations"]["sleep_in_atomic"]["total"] == 0


def test_cpa_collapse_is_process_context_and_flushes_the_tlb_before_the_free(registry: Registry) -> None:
    # cpa_collapse_large_pages() collects the tables, calls flush_tlb_all(), then frees them, in
    # process context: the inline flush of sync takes its mutex without a complaint, and each table
    # is freed exactly tlb_flush_all after its unlink (a burst of 1: no other table in between).
    cfg = with_workloads(registry, ["cpa-collapse"], "strategy.name=sync-unsafe", "workload.cpa-collapse.rate=5000/s")
    m = run_cfg(registry, cfg)
    tlb = cfg["workload"][0]["tlb_flush_all"]
    assert m["kernel_tables_freed"] > 0
    assert m["latency_ns"]["min"] == m["latency_ns"]["max"] == tlb
    cfg["strategy"] = {"name": "sync", "params": {}}
    assert run_cfg(registry, cfg)["violations"]["sleep_in_atomic"]["total"] == 0


def test_freeing_tables_queued_after_the_flush_started_is_caught(test_registry: Registry) -> None:
    # The flush drops cached entries the instant it starts and then takes 100us per PASID, so
    # tables are queued while it runs, after a device re-cached pointers to them.
    settings_ = (
        *HOT,
        "iommu.model=test-fixed-cost",
        "iommu.params.per_pasid=100us",
        "iommu.sva_mms=4",
        "workload.vmalloc-huge.rate=20000/s",
    )
    good = simulate(test_registry, *settings_, "strategy.name=deferred")
    assert good["violations"]["use_after_free"]["total"] == 0
    assert good["violations"]["stale_walk_free"]["total"] == 0
    bad = simulate(test_registry, *settings_, "strategy.name=test-buggy-late-free")
    assert bad["violations"]["use_after_free"]["total"] + bad["violations"]["stale_walk_free"]["total"] > 0


def test_a_strategy_that_never_frees_leaks(test_registry: Registry) -> None:
    m = simulate(test_registry, "strategy.name=test-never-frees")
    unl = m["kernel_tables_unlinked"]
    assert unl > 0
    assert m["violations"]["leaked"]["total"] == unl
    assert m["violations"]["leaked"]["by_source"] == {
        k: v for k, v in m["unlinked_by_source"]["by_source"].items() if k != "user-teardown"
    }


def _write(tmp_path: Path, name: str, text: str) -> Path:
    d = tmp_path / "plugins"
    d.mkdir(exist_ok=True)
    (d / name).write_text(text)
    return d


def test_double_free_is_caught_and_never_reaches_the_allocator(tmp_path: Path) -> None:
    d = _write(
        tmp_path,
        "twice.py",
        "from explorer.api import FreeStrategy, hookimpl\n"
        "class Twice(FreeStrategy):\n"
        "    name = 'twice'\n"
        "    def pagetable_free_kernel(self, k, pt):\n"
        "        k.free_now(pt)\n"
        "        k.free_now(pt)\n"
        "@hookimpl\n"
        "def register_strategies(register):\n"
        "    register(Twice)\n",
    )
    reg = load_registry([d], entry_points=False)
    sim = build_simulation(make_config(reg, "strategy.name=twice", "run.duration=20ms"), reg)
    m = sim.run()
    assert m["kernel_tables_freed"] > 0
    assert m["violations"]["double_free"]["total"] == m["kernel_tables_freed"]
    assert sim.invariant_problems() == []


def test_freed_while_linked_is_caught(tmp_path: Path) -> None:
    d = _write(
        tmp_path,
        "nounlink.py",
        "from explorer.api import WorkloadSource, hookimpl, workload_params\n"
        "class NoUnlink(WorkloadSource):\n"
        "    name = 'no-unlink'\n"
        "    params = workload_params('1000/s')\n"
        "    def process(self, w):\n"
        "        while True:\n"
        "            yield w.interarrival(self.params['rate'])\n"
        "            yield from w.free_kernel_tables(1, cpu=0, atomic=False, unlink=False)\n"
        "@hookimpl\n"
        "def register_workloads(register):\n"
        "    register(NoUnlink)\n",
    )
    reg = load_registry([d], entry_points=False)
    cfg = make_config(reg, "strategy.name=sync-unsafe", "run.duration=20ms")
    cfg["workload"] = [{"name": "no-unlink", "rate": 1000.0, "burst": 1, "cpus": "all"}]
    sim = build_simulation(cfg, reg)
    m = sim.run()
    assert m["kernel_tables_freed"] > 0
    assert m["violations"]["freed_while_linked"]["total"] == m["kernel_tables_freed"]
    assert m["violations"]["freed_while_linked"]["by_source"] == {"no-unlink": m["kernel_tables_freed"]}
    assert sim.invariant_problems() == []


def test_bootmem_tables_bypass_the_strategy(registry: Registry) -> None:
    cfg = with_workloads(
        registry, ["hot-remove"], "workload.hot-remove.bootmem_fraction=1", "workload.hot-remove.rate=500/s"
    )
    m = run_cfg(registry, cfg)
    assert m["kernel_tables_freed"] > 0
    assert m["strategy_calls"] == 0
    assert m["bypassed_pagetable_free"]["total"] == m["kernel_tables_freed"]


# --------------------------------------------------------------------------- determinism and invariants


def test_identical_workload_across_strategies(registry: Registry) -> None:
    base = ("run.duration=30ms",)
    a = simulate(registry, *base, "strategy.name=deferred")
    b = simulate(registry, *base, "strategy.name=sync-unsafe")
    c = simulate(registry, *base, "strategy.name=sync")
    assert a["unlinked_by_source"] == b["unlinked_by_source"] == c["unlinked_by_source"]


def test_same_seed_same_numbers_other_seed_other_numbers(registry: Registry) -> None:
    a = simulate(registry, "run.seed=7", "run.duration=30ms")
    b = simulate(registry, "run.seed=7", "run.duration=30ms")
    c = simulate(registry, "run.seed=8", "run.duration=30ms")
    assert a == b
    assert a["unlinked_by_source"] != c["unlinked_by_source"]


def test_stepping_gives_the_same_result_as_one_run(registry: Registry) -> None:
    cfg = make_config(registry, "run.duration=20ms", "strategy.name=batched", "strategy.params.batch=5")
    whole = build_simulation(cfg, registry).run()
    sim = build_simulation(cfg, registry)
    t = 0
    while not sim.finished:
        t += 333_333
        sim.advance(t)
        sim.snapshot()
    assert sim.metrics() == whole


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    strategy=st.sampled_from(["deferred", "sync", "sync-unsafe", "batched"]),
    seed=st.integers(0, 10_000),
    rate=st.sampled_from(["1000/s", "20000/s"]),
    burst=st.integers(1, 8),
    step=st.integers(50_000, 2_000_000),
    cpus=st.integers(1, 4),
)
def test_conservation_holds_at_every_step(
    registry: Registry, strategy: str, seed: int, rate: str, burst: int, step: int, cpus: int
) -> None:
    cfg = make_config(
        registry,
        f"strategy.name={strategy}",
        f"run.seed={seed}",
        "run.duration=8ms",
        f"kernel.cpus={cpus}",
        f"workload.vmalloc-huge.rate={rate}",
        f"workload.vmalloc-huge.burst={burst}",
        "workload.hot-remove.rate=300/s",
        "kernel.pages=2048",
        "kernel.kernel_slots=128",
    )
    sim: Simulation = build_simulation(cfg, registry)
    t = 0
    while not sim.finished:
        t += step
        sim.advance(t)
        assert sim.invariant_problems() == []
    m = sim.metrics()
    assert m["violations"]["double_free"]["total"] == 0
    unlinked = sum(m["unlinked_by_source"]["by_source"].values())
    freed = sum(m["freed_by_source"]["by_source"].values())
    assert unlinked == freed + m["tables_pending"]
    assert m["violations"]["leaked"]["total"] == m["tables_pending"]
