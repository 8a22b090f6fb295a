"""Two plausible-looking strategies that free kernel page tables too early (docs/checker.md).

Load them with ``--plugins-dir docs/examples/unsafe``. Both flush the IOMMUs for every batch they
free, and a device walk rarely catches them (``use_after_free`` depends on the seed); the
flush-before-free checker (``unflushed_free``) catches both at every free, on every seed.
"""

from explorer.api import FreeStrategy, hookimpl


class FreeBeforeFlush(FreeStrategy):
    name = "free-before-flush"
    version = "1.0"
    help = (
        "UNSAFE example: the deferred worker, but it frees each batch before its IOMMU flush "
        "instead of after it."
    )

    def setup(self, k):
        self.list = []
        self.lock = k.spinlock("free_before_flush.lock")
        self.work = k.work("free_before_flush_work", self.work_func)

    def work_func(self, k):
        with k.spin_lock(self.lock):
            page_list, self.list = self.list, []
        for pt in page_list:
            k.free_now(pt)  # BUG: the pages are back in the allocator ...
        yield from k.iommu_sva_invalidate_kva_range()  # ... before the IOMMUs forget them

    def pagetable_free_kernel(self, k, pt):
        with k.spin_lock(self.lock):
            self.list.append(pt)
        k.schedule_work(self.work)


class JoinRunningFlush(FreeStrategy):
    name = "join-running-flush"
    version = "1.0"
    help = (
        "UNSAFE example: flush first, then free everything queued, including the tables that "
        "arrived while the flush was already running (it started before they were unlinked)."
    )

    def setup(self, k):
        self.list = []
        self.lock = k.spinlock("join_running_flush.lock")
        self.work = k.work("join_running_flush_work", self.work_func)

    def work_func(self, k):
        yield from k.iommu_sva_invalidate_kva_range()
        with k.spin_lock(self.lock):  # BUG: the list is taken after the flush, not before it
            page_list, self.list = self.list, []
        for pt in page_list:
            k.free_now(pt)

    def pagetable_free_kernel(self, k, pt):
        with k.spin_lock(self.lock):
            self.list.append(pt)
        k.schedule_work(self.work)


@hookimpl
def register_strategies(register):
    register(FreeBeforeFlush)
    register(JoinRunningFlush)
