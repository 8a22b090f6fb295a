"""The flush-before-free invariant (``unflushed_free``), decided at every free: exact hand-derived
cases on a tiny machine, the tie rule, where it does not apply, attribution, and the strategies a
device walk catches only by luck."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from explorer.plugins import Registry, load_registry
from explorer.sim.build import Simulation, build_simulation
from explorer.sim.contexts import KernelContext
from explorer.sim.memory import PageTable
from tests.conftest import RUNTIME_PLUGINS, make_config

UNSAFE_EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples" / "unsafe"

#: a strategy that frees from a timer callback, without any flush
TIMER_FREE = '''
from explorer.api import FreeStrategy, hookimpl


class TimerFree(FreeStrategy):
    name = "test-timer-free"
    version = "1.0"
    help = "Frees each table from a timer 1us later, never flushing."

    def pagetable_free_kernel(self, k, pt):
        k.start_timer(1000, lambda kt: kt.free_now(pt))


@hookimpl
def register_strategies(register):
    register(TimerFree)
'''


@pytest.fixture(scope="module")
def reg(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    extra = tmp_path_factory.mktemp("timer_free")
    (extra / "timer_free.py").write_text(TIMER_FREE)
    return load_registry([RUNTIME_PLUGINS, UNSAFE_EXAMPLES, extra], entry_points=False)


def unflushed(m: dict[str, Any]) -> dict[str, Any]:
    return m["violations"]["unflushed_free"]


# --------------------------------------------------------------------------- a tiny machine by hand

# Two IOMMUs, one SVA mm with one PASID, each invalidation 1us (test-fixed-cost: 1us per PASID, its
# cache drop at the start), no device traffic, no background allocations, no workload: every event
# is one the test makes.
TINY = (
    "iommu.model=test-fixed-cost",
    "iommu.params.per_pasid=1us",
    "iommu.count=2",
    "iommu.sva_mms=1",
    "iommu.pasids_per_mm=1",
    "iommu.iommus_per_mm=2",  # the mm bound on both IOMMUs
    "iommu.probe_rate=0/s",
    "iommu.walk_rate=0/s",
    "kernel.background_alloc_rate=0/s",
)
US = 1000


def tiny(reg: Registry, *overrides: str) -> tuple[Simulation, KernelContext, PageTable]:
    cfg = make_config(reg, *TINY, *overrides)
    cfg["workload"] = []
    sim = build_simulation(cfg, reg)
    sim.enable_trace(100)
    k = sim.kernel
    ctx = KernelContext(k, 0, False, "test")
    pt = k.space.slot_table[5]
    assert pt is not None and pt.kernel
    return sim, ctx, pt


def at(sim: Simulation, t: int, fn: Callable[[], Any]) -> None:
    sim.engine.call_at(t, lambda _: fn())


def flush(sim: Simulation, ctx: KernelContext) -> None:
    sim.engine.start(sim.kernel.iommu_sva_invalidate_kva_range(ctx))


def test_a_flush_started_after_the_unlink_covers_the_table(reg: Registry) -> None:
    # t=0: unlink, then (same nanosecond, after it) the flush: IOMMU 0 invalidates 0..1us, IOMMU 1
    # 1..2us. Freed at 2us + 1ns: both completed an invalidation that started after the unlink.
    sim, ctx, pt = tiny(reg)
    k = sim.kernel
    k.unlink(pt, "test", 0)
    flush(sim, ctx)
    at(sim, 2 * US + 1, lambda: k.free_table(ctx, pt))
    sim.engine.run(10 * US)
    assert unflushed(sim.metrics())["total"] == 0
    assert k.iommus[0].covered_start_ns == 0 and k.iommus[1].covered_start_ns == US


def test_tie_rule_an_invalidation_started_in_the_same_nanosecond_before_the_unlink_does_not_cover(
    reg: Registry,
) -> None:
    # t=0: the flush starts first (IOMMU 0's invalidation is issued), then the unlink in the same
    # nanosecond. IOMMU 0's invalidation started before the unlink: it does not count. IOMMU 1's
    # starts at 1us, after it, and covers the table. Freed at 3us: one violation, IOMMU 0 uncovered.
    sim, ctx, pt = tiny(reg)
    k = sim.kernel
    flush(sim, ctx)
    k.unlink(pt, "test", 0)
    at(sim, 3 * US, lambda: k.free_table(ctx, pt))
    sim.engine.run(10 * US)
    m = sim.metrics()
    assert unflushed(m) == {"total": 1, "by_source": {"test": 1}, "by_context": {"caller": 1}}
    ex = [e for e in m["examples"] if e["kind"] == "unflushed_free"]
    assert ex == [{"kind": "unflushed_free", "time_ns": 3 * US, "source": "test", "by": "caller", "pfn": pt.page,
                   "slot": 5, "unlinked_at_ns": 0, "freed_at_ns": 3 * US, "uncovered": "0"}]
    lines = sim.trace_lines()
    assert any("violation: kind=unflushed_free source=test by=caller" in ln and "unlinked_at_ns=0 freed_at_ns=3000 "
               "uncovered=0" in ln for ln in lines), lines
    assert any(f"free: pfn={pt.page} source=test age_ns=3000 by=caller" in ln for ln in lines), lines


def test_a_free_before_the_last_iommu_completes_is_caught_on_that_iommu(reg: Registry) -> None:
    # Freed at 1.5us: IOMMU 0 completed (0..1us), IOMMU 1 is still invalidating (1..2us).
    sim, ctx, pt = tiny(reg)
    k = sim.kernel
    k.unlink(pt, "test", 0)
    flush(sim, ctx)
    at(sim, 1500, lambda: k.free_table(ctx, pt))
    sim.engine.run(10 * US)
    ex = [e for e in sim.metrics()["examples"] if e["kind"] == "unflushed_free"]
    assert [e["uncovered"] for e in ex] == ["1"]


def test_completion_in_the_same_nanosecond_counts_only_once_it_has_happened(reg: Registry) -> None:
    # The flush completes at exactly 2us. A free scheduled for 2us before the flush was started runs
    # first (events of one nanosecond run in the order they were scheduled): IOMMU 1 has not
    # completed yet. A free at 2us scheduled after the flush's last step runs after it: covered.
    sim, ctx, pt = tiny(reg)
    k = sim.kernel
    k.unlink(pt, "test", 0)
    at(sim, 2 * US, lambda: k.free_table(ctx, pt))
    flush(sim, ctx)
    sim.engine.run(10 * US)
    assert [e["uncovered"] for e in sim.metrics()["examples"] if e["kind"] == "unflushed_free"] == ["1"]

    sim, ctx, pt = tiny(reg)
    k = sim.kernel
    k.unlink(pt, "test", 0)
    flush(sim, ctx)
    sim.engine.run(US + 1)  # IOMMU 1's invalidation is under way; its completion is already scheduled
    at(sim, 2 * US, lambda: k.free_table(ctx, pt))
    sim.engine.run(10 * US)
    assert unflushed(sim.metrics())["total"] == 0


def test_a_flush_without_an_unlink_since_covers_nothing_new(reg: Registry) -> None:
    # An old flush (0..2us) covers no table unlinked after it started (at 5us), however old the
    # flush's completion; only the second flush (from 6us) does.
    sim, ctx, pt = tiny(reg)
    k = sim.kernel
    flush(sim, ctx)
    at(sim, 5 * US, lambda: k.unlink(pt, "test", 0))
    at(sim, 5 * US + 1, lambda: k.free_table(ctx, pt))
    sim.engine.run(10 * US)
    assert unflushed(sim.metrics())["total"] == 1
    sim, ctx, pt = tiny(reg)
    k = sim.kernel
    flush(sim, ctx)
    at(sim, 5 * US, lambda: k.unlink(pt, "test", 0))
    at(sim, 6 * US, lambda: flush(sim, ctx))
    at(sim, 8 * US + 1, lambda: k.free_table(ctx, pt))  # it completes at 8us
    sim.engine.run(10 * US)
    assert unflushed(sim.metrics())["total"] == 0


@pytest.mark.parametrize(("free_at", "uncovered"), [(2500, ["0"]), (4500, [])])
def test_a_table_unlinked_between_two_iommus_invalidations(reg: Registry, free_at: int, uncovered: list[str]) -> None:
    # Flush A: IOMMU 0 at 0..1us, IOMMU 1 at 1..2us; the table is unlinked at 0.5us, so only IOMMU 1's
    # invalidation covers it. Freed at 2.5us: IOMMU 0 uncovered. Flush B from 3us: IOMMU 0 at 3..4us
    # covers it too; freed at 4.5us (IOMMU 1 still invalidating, but its mark from A covers it): safe.
    sim, ctx, pt = tiny(reg)
    k = sim.kernel
    flush(sim, ctx)
    at(sim, 500, lambda: k.unlink(pt, "test", 0))
    at(sim, 3 * US, lambda: flush(sim, ctx))
    at(sim, free_at, lambda: k.free_table(ctx, pt))
    sim.engine.run(10 * US)
    assert [e["uncovered"] for e in sim.metrics()["examples"] if e["kind"] == "unflushed_free"] == uncovered


def test_an_iommu_with_no_mm_bound_is_never_flushed_and_never_counts(reg: Registry) -> None:
    # One mm on one of the two IOMMUs: the flush asks only that one (0..1us); the other walks nothing.
    sim, ctx, pt = tiny(reg, "iommu.iommus_per_mm=1")
    k = sim.kernel
    assert [u.bound_mms for u in k.iommus] == [1, 0]
    k.unlink(pt, "test", 0)
    flush(sim, ctx)
    at(sim, US + 1, lambda: k.free_table(ctx, pt))
    sim.engine.run(10 * US)
    assert unflushed(sim.metrics())["total"] == 0 and k.iommus[1].covered_start_ns == -1


@pytest.mark.parametrize("off", ["iommu.sva_mms=0", "kernel.iommu_sva=false"])
def test_no_sva_mm_bound_no_violation(reg: Registry, off: str) -> None:
    sim, ctx, pt = tiny(reg, off)
    k = sim.kernel
    k.unlink(pt, "test", 0)
    k.free_table(ctx, pt)  # no flush at all
    sim.engine.run(10 * US)
    m = sim.metrics()
    assert m["kernel_tables_freed"] == 1 and unflushed(m)["total"] == 0


def test_user_tables_are_out_of_scope(reg: Registry) -> None:
    sim, ctx, _ = tiny(reg)
    k = sim.kernel
    user = k.memory.alloc_table(0, 1, False, -1, "test")
    k.unlink(user, "test", 0)
    k.free_table(ctx, user)
    assert unflushed(sim.metrics())["total"] == 0


def test_smmuv3_with_epd1_never_walks_the_kernel_half(reg: Registry) -> None:
    # sync-unsafe frees every kernel table at once and never flushes. On arm64 (EPD1, the option
    # not selected) nothing can hold a pointer to a kernel table: no violation. The same IOMMU model
    # on x86_64 walks the kernel half (walks_kernel_half follows the arch): every free is one.
    arm = build_simulation(make_config(reg, "run.duration=20ms", "strategy.name=sync-unsafe",
                                       scenario="linux-6.19-smmuv3"), reg).run()
    assert arm["kernel_tables_freed"] > 0 and unflushed(arm)["total"] == 0
    x86 = build_simulation(make_config(reg, "run.duration=20ms", "strategy.name=sync-unsafe", "kernel.arch=x86_64",
                                       scenario="linux-6.19-smmuv3"), reg).run()
    assert unflushed(x86)["total"] == x86["kernel_tables_freed"] > 0


# --------------------------------------------------------------------------- whole runs


@pytest.mark.parametrize("strategy", ["free-before-flush", "join-running-flush"])
def test_strategies_that_free_too_early_are_caught_on_every_seed(reg: Registry, strategy: str) -> None:
    """A device walk catches these only on some seeds (or none); the invariant on all of them."""
    walk_caught = 0
    for seed in range(1, 11):
        m = build_simulation(make_config(reg, f"strategy.name={strategy}", f"run.seed={seed}",
                                         scenario="linux-6.19"), reg).run()
        v = m["violations"]
        walk_caught += bool(v["use_after_free"]["total"] + v["stale_walk_free"]["total"])
        assert unflushed(m)["total"] > 0, (strategy, seed)
        work = "free_before_flush_work" if strategy == "free-before-flush" else "join_running_flush_work"
        assert set(unflushed(m)["by_context"]) == {f"kworker:{work}"}
        assert unflushed(m)["total"] == sum(unflushed(m)["by_source"].values())
    assert walk_caught < 10  # what made "0 violations" a matter of luck before


@pytest.mark.parametrize("strategy", ["deferred", "batched", "sync", "test-good"])
@pytest.mark.parametrize("seed", [1, 2])
def test_safe_strategies_never_free_unflushed(reg: Registry, strategy: str, seed: int) -> None:
    m = build_simulation(make_config(reg, f"strategy.name={strategy}", f"run.seed={seed}", "run.duration=30ms",
                                     "iommu.count=3", scenario="linux-6.19"), reg).run()
    assert m["kernel_tables_freed"] > 0 and unflushed(m)["total"] == 0


@pytest.mark.parametrize(("scenario", "source", "context"), [
    ("before-fix", None, "caller"),
    ("v3-design", None, "caller"),
    ("cpa-unmarked-2026", "cpa-collapse", "caller:__pagetable_free"),
    ("hotremove-bootmem", "hot-remove", "caller:bootmem"),
])
def test_the_history_is_attributed_to_its_source_and_freeing_context(
    reg: Registry, scenario: str, source: str | None, context: str,
) -> None:
    m = build_simulation(make_config(reg, "run.duration=20ms", scenario=scenario), reg).run()
    u = unflushed(m)
    assert u["total"] > 0 and u["by_context"] == {context: u["total"]}
    if source is not None:
        assert u["by_source"] == {source: u["total"]}
    else:
        assert set(u["by_source"]) <= {"vmalloc-huge", "cpa-collapse", "hot-remove"}  # never user-teardown


def test_a_timer_that_frees_is_named_as_the_freeing_context(reg: Registry) -> None:
    sim = build_simulation(make_config(reg, "strategy.name=test-timer-free", "run.duration=5ms"), reg)
    out = io.StringIO()
    sim.trace_to(out.write)
    m = sim.run()
    assert unflushed(m)["total"] == m["kernel_tables_freed"] > 0
    assert unflushed(m)["by_context"] == {"timer": unflushed(m)["total"]}
    text = out.getvalue()
    assert " by=timer" in text and "kind=unflushed_free" in text
    # every free in the trace says who freed it
    frees = [ln for ln in text.splitlines() if ": free: " in ln]
    assert frees and all(" by=" in ln for ln in frees)


def test_examples_of_unflushed_frees_are_few_and_leave_the_others_theirs(reg: Registry) -> None:
    m = build_simulation(make_config(reg, "run.duration=20ms", scenario="before-fix"), reg).run()
    kinds = [e["kind"] for e in m["examples"]]
    assert kinds.count("unflushed_free") == 3
    assert len(kinds) - 3 == min(20, m["violations"]["use_after_free"]["total"])
