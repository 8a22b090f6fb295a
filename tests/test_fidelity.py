"""The kernel details of issue 11 (kernel-model.md sections 2-4), each derived by reasoning.

Workqueue: a running item runs again at once on its own CPU; an idle one is queued on the calling
CPU; the deferred worker frees newest first, one page at a time; without full preemption a kworker
waits for the task on its CPU to leave it.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from explorer.plugins import Registry
from explorer.sim.build import Simulation, build_simulation
from tests.conftest import make_config


def only(registry: Registry, names: list[str], *overrides: str) -> dict[str, Any]:
    cfg = make_config(registry, *overrides)
    cfg["workload"] = [w for w in cfg["workload"] if w["name"] in names]
    return cfg


def traced(registry: Registry, cfg: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[int, str, dict[str, Any]]]]:
    sim = build_simulation(cfg, registry)
    assert isinstance(sim, Simulation)
    sim.kernel.tracer = deque()  # unbounded: every record of the run
    m = sim.run()
    return m, list(sim.kernel.tracer)


# --------------------------------------------------------------------------- the workqueue


def test_deferred_worker_frees_newest_first_each_page_when_its_own_free_ends(registry: Registry) -> None:
    cfg = only(registry, ["vmalloc-huge"], "strategy.name=deferred", "run.duration=20ms",
               "workload.vmalloc-huge.rate=200000/s")
    m, trace = traced(registry, cfg)
    free_ns = cfg["kernel"]["free_page_ns"]
    queued: list[int] = []  # pfns handed to the strategy since the last splice
    batch: list[int] = []
    seen_batches = 0
    last_free = None
    for t, event, f in trace:
        if event == "pagetable_free_kernel":
            queued.append(f["pfn"])
        elif event == "flush_start" and f["source"] == "kworker":
            batch, queued = queued, []
            last_free = None
        elif event == "flush_end" and f["cpu"] is not None and batch:
            last_free = t
        elif event == "free" and batch:
            # list_add() at the head + a forward walk: the newest table comes out first ...
            assert f["pfn"] == batch.pop()
            # ... and reaches the allocator when its own __pagetable_free() ends, not at the end
            assert last_free is not None and t == last_free + free_ns
            last_free = t
            if not batch:
                seen_batches += 1
    assert seen_batches > 10
    assert m["kernel_tables_freed"] == m["kernel_tables_unlinked"]


def test_worker_runs_on_the_scheduling_cpu_and_frees_there(registry: Registry) -> None:
    cfg = only(registry, ["vmalloc-huge"], "strategy.name=deferred", "run.duration=20ms",
               "workload.vmalloc-huge.rate=100000/s")
    _, trace = traced(registry, cfg)
    worker_cpu = None
    idle_cpu = None  # the CPU whose schedule_work() found the item idle
    running = False
    checked = 0
    for _t, event, f in trace:
        if event == "schedule_work" and f["queued"] and not running:
            idle_cpu = f["cpu"]
        elif event == "worker_start":
            running = True
            worker_cpu = f["cpu"]
            if idle_cpu is not None:
                assert worker_cpu == idle_cpu  # system_wq is per-CPU
                checked += 1
            idle_cpu = None
        elif event == "worker_end":
            running = False
        elif event == "free" and f["source"] == "vmalloc-huge" and running:
            assert f["cpu"] == worker_cpu  # the page goes on the free list of the worker's CPU
    assert checked > 10


def test_a_running_worker_reruns_at_once_without_a_second_delay(registry: Registry) -> None:
    cfg = only(registry, ["vmalloc-huge"], "strategy.name=deferred", "run.duration=20ms",
               "workload.vmalloc-huge.rate=200000/s", "kernel.workqueue_delay=1ms")
    m, trace = traced(registry, cfg)
    ends = [t for t, e, _ in trace if e == "worker_end"]
    starts = [t for t, e, _ in trace if e == "worker_start"]
    # A run that found a table queued while it ran is followed by the next the instant it ends; one
    # that found none leaves the item idle, and the next schedule_work() pays the 1ms wake-up again.
    # Nothing in between: never a re-run one delay after the end (the old model's rule).
    delay = cfg["kernel"]["workqueue_delay"]
    assert starts[0] >= delay
    gaps = [s - e for s, e in zip(starts[1:], ends, strict=False)]
    assert all(g == 0 or g >= delay for g in gaps)
    # At 200000 tables/s nearly every run has a table arriving during it.
    assert sum(1 for g in gaps if g == 0) > 0.9 * len(gaps)
    assert m["worker_runs"] == len(starts)


# --------------------------------------------------------------------------- preemption


def _storm(registry: Registry, preemption: str) -> dict[str, Any]:
    # Hot-remove alone: bursts of 256 tables, 1us of CPU each (cpu_flush), on one task each; the
    # kworker is woken 1us after the first table is queued.
    cfg = only(registry, ["hot-remove"], "strategy.name=deferred", "run.duration=200ms",
               "kernel.workqueue_delay=1us", f"kernel.preemption={preemption}",
               "workload.hot-remove.burst=256", "workload.hot-remove.rate=50/s")
    return build_simulation(cfg, registry).run()


def test_without_full_preemption_a_storm_is_one_batch() -> None:
    from explorer.plugins import load_registry

    registry = load_registry(entry_points=False)
    none = _storm(registry, "none")
    bursts = none["kernel_tables_unlinked"] // 256
    assert bursts > 3 and none["kernel_tables_unlinked"] == 256 * bursts
    # The kworker cannot run before the remove_pagetable() task leaves its CPU: one flush per burst,
    # a batch of all 256 tables.
    assert none["flushes"] == none["worker_runs"] == bursts
    # voluntary: the deferred free path has no might_sleep() point, so the same.
    assert _storm(registry, "voluntary")["flushes"] == bursts
    # Full preemption: the kworker preempts the task 1us after the first table and flushes what is
    # queued by then; that flush (2 IOMMUs x (8 bound mms x 1us + 2us) = 20us) and its frees
    # (200ns a table) outlast the rest of the burst (256 x 50ns of spinlock = 12.8us, then 10us of
    # flush_tlb_all after the last table), so the re-run takes all the rest: exactly two batches.
    full = _storm(registry, "full")
    assert full["kernel_tables_unlinked"] == none["kernel_tables_unlinked"]
    assert full["flushes"] == full["worker_runs"] == 2 * bursts


# --------------------------------------------------------------------------- the free paths


def test_one_pud_teardown_frees_the_pmd_table_and_all_512_pte_tables(registry: Registry) -> None:
    # pud_free_pmd_page(): every PMD entry and the PUD entry cleared, one flush_tlb_kernel_range(),
    # then 512 PTE tables and the PMD table freed: 513 tables from one call of the free path.
    cfg = only(registry, ["vmalloc-huge"], "strategy.name=sync-unsafe", "run.duration=20ms",
               "kernel.kernel_slots=2048", "kernel.slot_refill=0", "workload.vmalloc-huge.pud_fraction=1",
               "workload.vmalloc-huge.rate=500/s")
    m, trace = traced(registry, cfg)
    events = m["kernel_tables_unlinked"] // 513
    assert events >= 1 and m["kernel_tables_unlinked"] == 513 * events
    assert m["kernel_tables_freed"] == 513 * events and m["starved"]["total"] == 0
    frees = [(f["pfn"], t) for t, e, f in trace if e == "free"]
    levels = {f["pfn"]: f["level"] for _, e, f in trace if e == "unlink"}
    first = frees[:513]
    # the PTE tables first, the PMD table last, all after the one CPU TLB flush
    assert [levels[p] for p, _ in first] == [1] * 512 + [2]
    unlinks = [t for t, e, _ in trace if e == "unlink"][:513]
    assert first[0][1] == max(unlinks) + cfg["workload"][0]["cpu_flush"]


def test_unmarked_share_sends_that_share_past_the_strategy(registry: Registry) -> None:
    # Tables without the kernel mark skip pagetable_free_kernel(): only the marked share reaches
    # the strategy. unmarked = 1 (the code's value for CPA's split tables): none does.
    def calls(share: float) -> tuple[int, int]:
        cfg = only(registry, ["cpa-collapse"], "strategy.name=deferred", "run.duration=50ms",
                   "workload.cpa-collapse.rate=5000/s", f"workload.cpa-collapse.unmarked={share}")
        m = build_simulation(cfg, registry).run()
        return m["strategy_calls"], m["kernel_tables_freed"]

    assert calls(1.0)[0] == 0
    none_calls, none_freed = calls(0.0)
    assert none_calls == none_freed > 100
    half_calls, half_freed = calls(0.5)
    assert 0.4 * half_freed < half_calls < 0.6 * half_freed


# --------------------------------------------------------------------------- SVA binding


def test_a_flush_costs_only_the_mms_bound_on_each_iommu(registry: Registry) -> None:
    # 6 mms over 3 IOMMUs, each mm on 2 of them (mm i on i, i+1): 4 bindings per IOMMU; the
    # generic model's flush on one IOMMU is bound x 1us + 2us, so a whole flush is 3 x 6us = 18us.
    # Every mm on every IOMMU (0) would be 3 x (6 x 1us + 2us) = 24us.
    def flush_ns(per_mm: int) -> int:
        cfg = only(registry, ["vmalloc-huge"], "strategy.name=sync", "run.duration=5ms", "iommu.count=3",
                   "iommu.sva_mms=6", f"iommu.iommus_per_mm={per_mm}")
        m = build_simulation(cfg, registry).run()
        assert m["flush_ns"]["min"] == m["flush_ns"]["max"]
        return m["flush_ns"]["max"]

    assert flush_ns(2) == 18_000
    assert flush_ns(0) == flush_ns(3) == 24_000
    # one mm on 4 IOMMUs, bound on one: the other three have no SVA device and are never flushed
    cfg = only(registry, ["vmalloc-huge"], "strategy.name=deferred", "run.duration=5ms", "iommu.count=4",
               "iommu.sva_mms=1")
    m = build_simulation(cfg, registry).run()
    assert [u["invalidations"] > 0 for u in m["iommus"]] == [True, False, False, False]
    assert [u["probes"] > 0 for u in m["iommus"]] == [True, False, False, False]


def test_bind_and_unbind_wait_for_iommu_sva_lock_as_long_as_flushes_hold_it(registry: Registry) -> None:
    # Without flushes nothing else takes the lock but the (short, rare) binds themselves.
    cfg = only(registry, ["vmalloc-huge"], "strategy.name=sync-unsafe", "run.duration=20ms",
               "iommu.bind_rate=20000/s", "iommu.bind_hold=0ns")
    m = build_simulation(cfg, registry).run()
    assert m["sva_bind"]["calls"] > 300 and m["sva_bind"]["wait_ns"]["max"] == 0
    # large-sva: each flush holds the lock for about a millisecond. Poisson arrivals see time
    # averages: the share of binds that find the lock held is the share of time it is held.
    cfg = make_config(registry, "run.duration=20ms", "iommu.bind_rate=20000/s", "iommu.bind_hold=0ns",
                      scenario="large-sva")
    m = build_simulation(cfg, registry).run()
    busy = m["flush_time_ns"] / m["sim_time_ns"]
    share = m["sva_bind"]["contended"] / m["sva_bind"]["calls"]
    assert busy > 0.3 and abs(share - busy) < 0.1
    assert m["sva_bind"]["wait_ns"]["max"] <= m["flush_ns"]["max"]


# --------------------------------------------------------------------------- the history


def test_v3_allocates_one_work_item_per_kernel_tlb_flush_and_never_coalesces(registry: Registry) -> None:
    # Every flush_tlb_kernel_range()/flush_tlb_all() queues its own item, and each item flushes the
    # IOMMUs once: exactly one IOMMU flush per call, even for calls that free no table.
    cfg = only(registry, ["vmalloc-huge", "cpa-collapse", "hot-remove"], "strategy.name=v3-flush-deferred",
               "run.duration=20ms", "workload.vmalloc-huge.rate=5000/s", "workload.hot-remove.rate=200/s")
    cfg["workload"].append({"name": "kernel-tlb-flush", "rate": 2000.0, "burst": 1, "cpus": "all",
                            "cpu_flush": 2000, "atomic": False})
    m = build_simulation(cfg, registry).run()
    calls = m["kernel_tlb_flushes"]
    # vmalloc: one flush_tlb_kernel_range() per table; CPA and hot-remove: one flush_tlb_all() per
    # event; kernel-tlb-flush: one per event and no table
    assert calls > m["kernel_tables_freed"] / 10
    assert m["flushes"] == m["worker_runs"] == calls
    # the items are freed once run: none is left in the kernel's list
    sim = build_simulation(cfg, registry)
    sim.run()
    assert sim.kernel.work_items == [] and sim.kernel.oneshot_live == 0
    # every 4th kzalloc(GFP_ATOMIC) failing: that many flushes silently missing
    cfg["strategy"]["params"] = {"kzalloc_fail_every": 4}
    m4 = build_simulation(cfg, registry).run()
    assert m4["kernel_tlb_flushes"] == calls
    assert m4["flushes"] == calls - calls // 4


def test_sva_disabled_on_x86_binds_nothing_so_no_flush_and_no_walk(registry: Registry) -> None:
    cfg = make_config(registry, "run.duration=20ms", scenario="sva-disabled-x86")
    m = build_simulation(cfg, registry).run()
    assert m["sva_bound_mms"] == 0 and m["flushes"] == 0 and m["iommus"] == []
    assert m["kernel_tables_freed"] > 0 and sum(v["total"] for v in m["violations"].values()) == 0
    # the same kernel with the bind allowed is before-fix: the hole is back
    cfg["kernel"]["sva_x86_disabled"] = False
    assert build_simulation(cfg, registry).run()["violations"]["use_after_free"]["total"] > 0


SLEEPY = '''
from explorer.api import FreeStrategy, hookimpl


class Sleepy(FreeStrategy):
    """Queue, schedule the worker, then a might_sleep() point in the caller (a voluntary
    preemption point); the worker frees what is queued."""
    name = "test-sleepy"
    version = "1.0"

    def setup(self, k):
        self.list = []
        self.work = k.work("sleepy", self.work_func)

    def work_func(self, k):
        page_list, self.list = self.list, []
        for pt in page_list:
            k.free_now(pt)

    def pagetable_free_kernel(self, k, pt):
        self.list.append(pt)
        k.schedule_work(self.work)
        k.might_sleep()


@hookimpl
def register_strategies(register):
    register(Sleepy)
'''


def test_voluntary_preemption_lets_the_kworker_in_at_might_sleep(tmp_path: Any) -> None:
    from explorer.plugins import load_registry

    (tmp_path / "sleepy.py").write_text(SLEEPY)
    reg = load_registry([tmp_path], entry_points=False)

    def runs(preemption: str) -> tuple[int, int]:
        # vmalloc-huge bursts of 16: each table's 2us CPU TLB flush lets the woken kworker's event
        # run in between, so it is waiting for the CPU when the next table reaches might_sleep()
        cfg = only(reg, ["vmalloc-huge"], "strategy.name=test-sleepy", "run.duration=200ms",
                   "kernel.workqueue_delay=0ns", f"kernel.preemption={preemption}",
                   "workload.vmalloc-huge.burst=16", "workload.vmalloc-huge.rate=50/s")
        m = build_simulation(cfg, reg).run()
        return m["worker_runs"], m["kernel_tables_unlinked"] // 16

    none, bursts = runs("none")
    assert bursts > 3 and none == bursts  # the worker waits for the task to leave the CPU
    # voluntary: table 1 wakes the kworker, which then waits for the CPU; table 2's might_sleep()
    # lets it in, and it frees tables 1 and 2 (400ns, done long before table 3 comes 2us later);
    # table 3 wakes it again and table 4 lets it in; and so on: one run per pair, 8 per burst.
    voluntary, _ = runs("voluntary")
    assert voluntary == 8 * bursts


def test_the_testing_kit_still_has_an_atomic_caller(registry: Registry) -> None:
    # CPA collapse is process context now, so the kit's default scenarios need sync-in-atomic for a
    # strategy that sleeps in the free path to be caught there: sync (the v1 design) must fail.
    import pytest

    from explorer.testing import check_strategy

    with pytest.raises(AssertionError, match="sleep_in_atomic"):
        check_strategy("sync", hunt=False, duration="20ms", iommu_models=("generic",))
