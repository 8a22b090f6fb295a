"""The kernel's counters, histograms and series: every figure a run reports about the kernel side.

One object, so the kernel's state (tables, CPUs, locks) and what is counted about it are apart, and
``Simulation.metrics()`` reads one place. The hot paths (``unlink``, ``free_table``, the flush loop)
bind it to a local once per call: one attribute load, not one per counter.
"""

from __future__ import annotations

from explorer.sim.metrics import BySource, LogHistogram, TimeSeries


class KernelStats:
    """What the simulated kernel counts. Times are ns; ``*_by_source`` are per workload source."""

    __slots__ = ("bypassed", "caller_by_source", "flush_hist", "flush_series", "flush_time_ns", "flushes",
                 "flushes_by_source", "free_series", "freed_by_source", "freed_total", "kernel_freed",
                 "kernel_unlinked", "kworker_wait_ns", "kworker_waits", "last_change", "latency_by_source",
                 "mutex_contended", "oneshot_runs", "page_ns", "peak_pending", "queue_series", "starved",
                 "strategy_calls", "tlb_flush_calls", "unlinked_by_source", "unlinked_total", "user_freed",
                 "worker_cpu_ns")

    def __init__(self) -> None:
        #: tables unlinked (kernel and user), and the unlink order: a table's ``unlink_no`` is this
        #: count just after its unlink (what an invalidation's coverage is measured in)
        self.unlinked_total = 0
        self.freed_total = 0  # tables freed (kernel and user)
        self.kernel_unlinked = 0  # kernel tables unlinked from their slot
        self.kernel_freed = 0
        self.user_freed = 0
        self.strategy_calls = 0  # pagetable_free_kernel() calls
        self.worker_cpu_ns = 0  # CPU time of the work items' runs
        self.oneshot_runs = 0  # runs of one-shot work items already forgotten
        self.kworker_waits = 0  # woken kworkers that had to wait for their CPU
        self.kworker_wait_ns = 0  # how long they waited (minus the start of each wait still going on)
        self.tlb_flush_calls = 0  # flush_tlb_kernel_range() / flush_tlb_all() calls by the workloads
        self.flushes = 0  # iommu_sva_invalidate_kva_range() calls that flushed
        self.flush_time_ns = 0
        self.flush_hist = LogHistogram()
        self.mutex_contended = 0  # flushes that found iommu_sva_lock held
        # The pending queue: its peak, its time integral (table-ns) up to last_change.
        self.peak_pending = 0
        self.page_ns = 0
        self.last_change = 0
        # Per workload source (the caller's source; a table's own source for latency); the totals
        # (``latency``, ``caller``) are their merge, made when read: a merge is exact.
        self.latency_by_source: dict[str, LogHistogram] = {}
        self.caller_by_source: dict[str, LogHistogram] = {}
        self.flushes_by_source = BySource()
        self.freed_by_source = BySource()
        self.unlinked_by_source = BySource()
        self.starved = BySource()  # operations that found no linked table of the level they wanted
        self.bypassed = BySource()  # tables freed without pagetable_free() (bootmem)
        self.queue_series = TimeSeries(mode="max")
        self.flush_series = TimeSeries(mode="sum")
        self.free_series = TimeSeries(mode="sum")

    @property
    def latency(self) -> LogHistogram:
        """Unlink-to-free time of every kernel table freed (all sources)."""
        return LogHistogram.merged(self.latency_by_source.values())

    @property
    def caller(self) -> LogHistogram:
        """Time spent in ``pagetable_free()`` by its callers (all sources)."""
        return LogHistogram.merged(self.caller_by_source.values())
