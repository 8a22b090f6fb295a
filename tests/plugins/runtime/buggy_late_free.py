"""A deliberately buggy deferred strategy: it frees tables that were queued after its flush started.

It is the kernel's deferred worker without the splice *before* the flush: the work function
flushes the IOMMUs first and only then takes (and frees) everything on its list, including the
tables queued while the flush was running. A device can have cached an entry pointing at such a
table after the flush dropped its entries and before the table was unlinked, so the table reaches
the allocator with a live cached pointer to it: the checker must catch this.
"""

from __future__ import annotations

from explorer.api import FreeStrategy, KernelServices, Step, Table, hookimpl


class BuggyLateFree(FreeStrategy):
    name = "test-buggy-late-free"
    version = "1.0"
    help = "BUGGY on purpose: flushes, then frees every queued table, even those queued during the flush."

    def setup(self, k: KernelServices) -> None:
        self.lock = k.spinlock("test_buggy.lock")
        self.list: list[Table] = []
        self.work = k.work("test_buggy.work", self.work_func)

    def work_func(self, k: KernelServices) -> Step:
        yield from k.iommu_sva_invalidate_kva_range()
        # BUG: the list is taken only now, after the flush, so it holds tables that were queued
        # while the flush ran and were never covered by it.
        with k.spin_lock(self.lock):
            page_list, self.list = self.list, []
        for pt in page_list:
            k.free_now(pt)

    def pagetable_free_kernel(self, k: KernelServices, pt: Table) -> None:
        with k.spin_lock(self.lock):
            self.list.append(pt)
        k.schedule_work(self.work)


@hookimpl
def register_strategies(register):
    register(BuggyLateFree)
