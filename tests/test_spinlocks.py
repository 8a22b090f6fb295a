"""``spinlock_contended``: how often a strategy took one of its spinlocks while another context held
it (the model does not spin: a section that yields while holding its lock is what overlaps)."""

from __future__ import annotations

from pathlib import Path

from explorer.plugins import Registry, load_registry
from explorer.sim.build import build_simulation
from explorer.sim.contexts import KernelContext
from tests.conftest import make_config

HOLDS_ACROSS_A_YIELD = '''
from explorer.api import FreeStrategy, hookimpl


class SlowLock(FreeStrategy):
    name = "slow-lock"
    version = "1.0"
    help = "Frees each table under its lock after 2us of work done with the lock held."

    def setup(self, k):
        self.lock = k.spinlock("slow.lock")
        self.frees = 0

    def pagetable_free_kernel(self, k, pt):
        with k.spin_lock(self.lock):
            yield 2000
            k.free_now(pt)


@hookimpl
def register_strategies(register):
    register(SlowLock)
'''

# vmalloc frees on one CPU while CPA collapses free on another: their 2 us sections overlap
CONTENDED = ("run.duration=2ms", "kernel.cpus=4", "workload.vmalloc-huge.rate=500000/s",
         "workload.cpa-collapse.rate=20000/s")


def test_overlapping_holders_are_counted_once_each(registry: Registry) -> None:
    # a real kernel, not a stub: the compiled core's KernelContext only takes its own Kernel
    kernel = build_simulation(make_config(registry, "run.duration=1ms"), registry).kernel
    kernel.spinlock_ns = 50
    kernel.spinlocks.clear()
    a, b, c = (KernelContext(kernel, cpu, False, "test") for cpu in range(3))
    lock = a.spinlock("l")
    assert kernel.spinlocks == [lock]
    ha, hb, hc = a.spin_lock(lock), b.spin_lock(lock), c.spin_lock(lock)
    ha.__enter__()
    hb.__enter__()  # 1: a holds it
    ha.__exit__()
    hc.__enter__()  # 2: b still holds it, though a (who took it first) has let go
    hb.__exit__()
    hc.__exit__()
    ha.__enter__()  # free again: no contention
    ha.__exit__()
    with a.spin_lock(lock), a.spin_lock(lock):  # the same context again is not contention
        pass
    assert lock.contended == 2 and lock.holders == []
    assert (a.debt, b.debt, c.debt) == (4 * 50, 50, 50) and a.atomic_depth == 0


def test_a_lock_held_across_a_yield_on_several_cpus_is_contended(tmp_path: Path) -> None:
    (tmp_path / "slow_lock.py").write_text(HOLDS_ACROSS_A_YIELD)
    reg = load_registry([tmp_path], entry_points=False)
    m = build_simulation(make_config(reg, *CONTENDED, "strategy.name=slow-lock"), reg).run()
    # each free takes the lock once, so at most as many contentions as frees
    assert 0 < m["spinlock_contended"] <= m["kernel_tables_freed"]


def test_short_critical_sections_are_never_contended(registry: Registry) -> None:
    m = build_simulation(make_config(registry, *CONTENDED, "strategy.name=deferred"), registry).run()
    assert m["kernel_tables_freed"] > 0 and m["spinlock_contended"] == 0
