"""A correct strategy: the kernel's deferred free as merged in 6.19 (queue, splice, flush once, free).

Compare ``buggy_late_free.py``, which differs only in *when* it takes the list.
"""

from __future__ import annotations

from explorer.api import FreeStrategy, KernelServices, Step, Table, hookimpl


class GoodDeferred(FreeStrategy):
    name = "test-good"
    version = "1.0"
    help = "Queue the table and schedule a work item; the worker splices the list, flushes once, frees."

    def setup(self, k: KernelServices) -> None:
        self.lock = k.spinlock("test_good.lock")
        self.list: list[Table] = []
        self.work = k.work("test_good.work", self.work_func)

    def work_func(self, k: KernelServices) -> Step:
        with k.spin_lock(self.lock):
            page_list, self.list = self.list, []  # list_splice_tail_init(): later tables wait for the next run
        yield from k.iommu_sva_invalidate_kva_range()
        for pt in page_list:
            k.free_now(pt)

    def pagetable_free_kernel(self, k: KernelServices, pt: Table) -> None:
        with k.spin_lock(self.lock):
            self.list.append(pt)
        k.schedule_work(self.work)


@hookimpl
def register_strategies(register):
    register(GoodDeferred)
