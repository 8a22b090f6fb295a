# src/pgtx_delayed/strategy.py
"""delayed: the kernel's deferred free, but the worker runs DELAY after the first table of a batch."""

from explorer.api import FreeStrategy, Param, hookimpl

__version__ = "0.1.0"  # the one version: the package's (pyproject reads it) and the class's


class Delayed(FreeStrategy):
    name = "delayed"
    version = __version__  # bump it when the behaviour changes: configs record it
    help = "Queue tables; a timer armed by the first one schedules the worker DELAY later: one flush, more tables."
    params = (
        Param("delay", "duration", "1ms", min=0, max=10**9,
              help="How long the first table of a batch waits before the worker is scheduled."),
    )

    def setup(self, k):
        self.list = []
        self.timer = None
        self.lock = k.spinlock("delayed.lock")
        self.work = k.work("delayed_free_work", self.work_func)

    def on_timer(self, k):  # softirq context: atomic, must not sleep
        k.schedule_work(self.work)

    def work_func(self, k):  # kworker context: may sleep
        with k.spin_lock(self.lock):
            page_list, self.list = self.list, []  # take the batch BEFORE the flush
            self.timer = None
        yield from k.iommu_sva_invalidate_kva_range()  # one flush for the whole batch
        for pt in page_list:
            k.free_now(pt)

    def pagetable_free_kernel(self, k, pt):  # the caller's context: may be atomic
        with k.spin_lock(self.lock):
            self.list.append(pt)
            if self.timer is None:
                self.timer = k.start_timer(self.values["delay"], self.on_timer)


@hookimpl
def register_strategies(register):
    register(Delayed)
