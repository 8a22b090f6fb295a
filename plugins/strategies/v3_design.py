"""``v3-flush-deferred``: the v3 design of the series, which review showed to be unsafe.

v3 moved the IOMMU flush out of the free path into a work item, so that it could take the
``iommu_sva_lock`` mutex, but still freed the page at once. Dave Hansen's review: between the free
and the worker's flush the page is back in the allocator and can be handed out again, while an
IOMMU's paging-structure cache still points at it. Every free is followed by a flush, and it is
still a use-after-free window. The merged design (``deferred``) defers the free, not only the flush.
"""

from explorer.api import FreeStrategy, hookimpl


class V3FlushDeferred(FreeStrategy):
    name = "v3-flush-deferred"
    version = "1.0"
    help = (
        "The v3 design: __pagetable_free() at once, then schedule_work() of a worker that flushes the "
        "IOMMUs. Every free is followed by a flush, yet the page can be reused before it (unsafe)."
    )
    params = ()

    def setup(self, k):
        self.work = k.work("kernel_pgtable_flush_work", self.flush_work_func)

    def flush_work_func(self, k):
        yield from k.iommu_sva_invalidate_kva_range()

    def pagetable_free_kernel(self, k, pt):
        k.free_now(pt)  # the page goes back to the allocator now ...
        k.schedule_work(self.work)  # ... and the IOMMUs hear of it only when the worker runs


@hookimpl
def register_strategies(register):
    register(V3FlushDeferred)
