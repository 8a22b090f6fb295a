"""``batched``: batched-with-flush, with a size and an age bound.

Tables queue on a list. Once ``batch`` tables are queued the worker is scheduled; a timer armed
when the first table of a batch arrives schedules it after ``max_age`` at the latest. The worker
takes at most ``batch`` tables per flush, so a flush never covers more than one batch. Defaults
follow the dma-iommu flush queue (256 entries, 10 ms); the presets in the help text come from
the kernel's other batching mechanisms.
"""

from explorer.api import FreeStrategy, Param, hookimpl


class Batched(FreeStrategy):
    name = "batched"
    version = "1.0"
    help = (
        "Flush and free once `batch` tables are queued or `max_age` has passed since the first, "
        "whichever comes first. Kernel numbers: dma-iommu flush queue 256/10ms (single-queue "
        "32768/1000ms), historic VT-d 250/10ms, mmu_gather MAX_TABLE_BATCH 509."
    )
    params = (
        Param("batch", "int", 256, unit="tables", min=1, max=1_000_000,
              help="Tables per flush (dma-iommu flush queue: 256 per CPU; mmu_gather: 509)."),
        Param("max_age", "duration", "10ms", min=1, max=3600 * 10**9,
              help="Longest a table waits for its batch to fill (dma-iommu flush queue timer: 10ms)."),
    )

    def setup(self, k):
        self.list = []
        self.queued_at = []
        self.timer = None
        self.expired = False
        self.lock = k.spinlock("batched.lock")
        self.work = k.work("batched_free_work", self.work_func)

    def on_timer(self, k):
        with k.spin_lock(self.lock):
            self.expired = True
        k.schedule_work(self.work)

    def work_func(self, k):
        batch = self.params["batch"]
        while True:
            with k.spin_lock(self.lock):
                if len(self.list) >= batch:
                    page_list, self.list = self.list[:batch], self.list[batch:]
                elif self.expired and self.list:
                    page_list, self.list = self.list, []
                else:
                    page_list = []
                self.expired = False
                if self.timer is not None:
                    self.timer.cancel()
                    self.timer = None
                if self.list:
                    # The oldest table still queued starts the clock for the next batch.
                    age = k.now - self.queued_at[len(self.queued_at) - len(self.list)]
                    self.timer = k.start_timer(max(1, self.params["max_age"] - age), self.on_timer)
                self.queued_at = self.queued_at[len(self.queued_at) - len(self.list):]
            if not page_list:
                return
            yield from k.iommu_sva_invalidate_kva_range()
            for pt in page_list:
                k.free_now(pt)

    def pagetable_free_kernel(self, k, pt):
        with k.spin_lock(self.lock):
            self.list.append(pt)
            self.queued_at.append(k.now)
            n = len(self.list)
            if self.timer is None or not self.timer.armed:
                self.timer = k.start_timer(self.params["max_age"], self.on_timer)
        if n >= self.params["batch"]:
            k.schedule_work(self.work)


@hookimpl
def register_strategies(register):
    register(Batched)
