"""``deferred``: the kernel as merged in 6.19 (mm/pgtable-generic.c).

The seed patch queues kernel page tables on one global list and frees them from a work item;
6.19 adds the IOMMU flush in the worker, once per batch, before any page of the batch is freed.
Pages queued after the splice wait for the next run of the worker. ``list_add()`` puts each page
at the head of the list, so the worker's forward walk frees the newest page first, and each page
reaches the allocator when its own ``__pagetable_free()`` ends.
"""

from explorer.api import FreeStrategy, hookimpl


class Deferred(FreeStrategy):
    name = "deferred"
    version = "1.1"
    help = (
        "Linux 6.19: queue on a global list, schedule_work(); the worker splices the list, "
        "flushes the IOMMUs once, then frees every page of the batch."
    )
    params = ()

    def setup(self, k):
        # static struct { list; lock; work; } kernel_pgtable_work
        self.list = []
        self.lock = k.spinlock("kernel_pgtable_work.lock")
        self.work = k.work("kernel_pgtable_work", self.kernel_pgtable_work_func)

    def kernel_pgtable_work_func(self, k):
        with k.spin_lock(self.lock):
            page_list, self.list = self.list, []  # list_splice_tail_init()

        yield from k.iommu_sva_invalidate_kva_range()  # (PAGE_OFFSET, TLB_FLUSH_ALL)

        # list_for_each_entry_safe() ... __pagetable_free(): head first, i.e. newest first
        yield from k.free_each(reversed(page_list))

    def pagetable_free_kernel(self, k, pt):
        with k.spin_lock(self.lock):
            self.list.append(pt)  # list_add(): the Python list's end is the kernel list's head

        k.schedule_work(self.work)


@hookimpl
def register_strategies(register):
    register(Deferred)
