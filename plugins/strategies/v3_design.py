"""``v3-flush-deferred``: the v3 design of the series, which review showed to be unsafe.

v3 hooked the IOMMU flush into the kernel's TLB flush: every ``flush_tlb_kernel_range()`` /
``flush_tlb_all()`` allocates a work item (``kzalloc(GFP_ATOMIC)``, silently dropped when that
fails) and schedules it; the item flushes the IOMMUs for the range and frees itself. Nothing
coalesces: every call costs an IOMMU flush, even when no page table is freed. And the table is
still freed at once, right after the CPU TLB flush. Dave Hansen's review: between the free and
the worker's flush the page is back in the allocator and can be handed out again, while an
IOMMU's paging-structure cache still points at it. The merged design (``deferred``) defers the
free, not only the flush.
"""

from explorer.api import FreeStrategy, Param, hookimpl


class V3FlushDeferred(FreeStrategy):
    name = "v3-flush-deferred"
    version = "2.0"
    help = (
        "The v3 design: each flush_tlb_kernel_range()/flush_tlb_all() allocates a work item "
        "(kzalloc(GFP_ATOMIC), dropped if that fails) that flushes the IOMMUs later; tables are "
        "freed at once. At least one IOMMU flush per kernel TLB flush, yet a page can be reused "
        "before its flush (unsafe)."
    )
    params = (
        Param("kzalloc_fail_every", "int", 0, min=0, max=1_000_000_000,
              help="Every Nth kzalloc(GFP_ATOMIC) of a work item fails and that IOMMU flush is silently "
                   "dropped; 0 = never (assumed: GFP_ATOMIC fails only under memory pressure)."),
    )

    def setup(self, k):
        self.allocated = 0
        self.dropped = 0

    def flush_work_func(self, k):
        yield from k.iommu_sva_invalidate_kva_range()
        # kfree(work): the item is one-shot, the kernel forgets it once it has run

    def flush_tlb_kernel(self, k):
        # in flush_tlb_kernel_range() / flush_tlb_all(), after the CPU TLBs are flushed
        self.allocated += 1
        every = self.params["kzalloc_fail_every"]
        if every and self.allocated % every == 0:
            self.dropped += 1  # kzalloc(GFP_ATOMIC) returned NULL: no IOMMU flush, no warning
            return
        k.schedule_work(k.work("kva_invalidation_work", self.flush_work_func, oneshot=True))

    def pagetable_free_kernel(self, k, pt):
        k.free_now(pt)  # the page goes back to the allocator now; its IOMMU flush is still queued


@hookimpl
def register_strategies(register):
    register(V3FlushDeferred)
