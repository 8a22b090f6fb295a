"""The simulated kernel: page tables, ``pagetable_free()`` dispatch, contexts and the IOMMU flush.

The dispatch is the seed patch's::

    pagetable_free(pt):
        if ptdesc_test_kernel(pt):
            ptdesc_clear_kernel(pt)
            pagetable_free_kernel(pt)      # the strategy, or __pagetable_free with the option off
        else:
            __pagetable_free(pt)           # user tables: straight to the allocator
"""

from __future__ import annotations

import inspect
import random
import sys
from collections.abc import Callable, Generator, Sequence
from types import GeneratorType
from typing import Any, Protocol, cast

from explorer.contract import FlushBatch, FlushCost, FreeStrategy, IommuModel, KernelServices, SvaTopology
from explorer.sim.checker import Checker
from explorer.sim.engine import Engine, Mutex, PluginError, PluginMistake, SimulatorError, source_location
from explorer.sim.hookcheck import check_flush_cost
from explorer.sim.iommu import IommuUnit
from explorer.sim.memory import UNLINKED, Memory, PageTable
from explorer.sim.metrics import BySource, LogHistogram, TimeSeries
from explorer.sim.space import AddressSpace
from explorer.sim.streams import WorkloadStreams, exp_gap, named_stream
from explorer.sim.workqueue import Timer, WorkItem

KWORKER = "kworker"

#: The freeing context (``free ... by=``, ``unflushed_free.by_context``) of a table that
#: ``pagetable_free()`` sent straight to the allocator (unmarked, a user table, or the async option
#: off), and of a bootmem table freed without ``pagetable_free()``: no strategy was involved.
BY_PAGETABLE_FREE = "caller:__pagetable_free"
BY_BOOTMEM = "caller:bootmem"


class TraceSink(Protocol):
    """Takes each kernel trace record ``(time_ns, event, fields)`` as it happens."""

    def append(self, record: tuple[int, str, dict[str, Any]], /) -> None: ...


def takes_batch(invalidate: Callable[..., Any]) -> bool:
    """Whether a model's ``invalidate_kernel_range`` takes the flush's batch (a third argument
    or a ``batch`` keyword); models written before the batch existed take ``(now, topo)``."""
    try:
        params = inspect.signature(invalidate).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return (any(p.name == "batch" or p.kind is p.VAR_POSITIONAL for p in params) or len(positional) >= 3)


def guard(gen: Generator[Any, Any, Any], kind: str, name: str) -> Generator[Any, Any, Any]:
    """Run a plugin's generator, turning its exceptions into :class:`PluginError`."""
    try:
        return (yield from gen)
    except SimulatorError:
        raise
    except Exception as exc:
        raise PluginError(kind, name, exc) from exc


class SpinLock:
    __slots__ = ("contended", "holders", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        # The contexts inside the lock now. The model does not spin: a section that yields while
        # holding the lock overlaps another's, and that overlap is what ``contended`` counts.
        self.holders: list[KernelContext] = []
        self.contended = 0


class _Held:
    """``with k.spin_lock(lock):`` — atomic inside; the lock/unlock cost is charged to the CPU."""

    __slots__ = ("ctx", "lock")

    def __init__(self, ctx: KernelContext, lock: SpinLock) -> None:
        self.ctx = ctx
        self.lock = lock

    def __enter__(self) -> SpinLock:
        ctx = self.ctx
        holders = self.lock.holders
        if holders and any(h is not ctx for h in holders):
            self.lock.contended += 1
        holders.append(ctx)
        ctx.atomic_depth += 1
        ctx.debt += ctx.kernel.spinlock_ns
        return self.lock

    def __exit__(self, *exc: object) -> None:
        self.ctx.atomic_depth -= 1
        self.lock.holders.remove(self.ctx)


class KernelContext:
    """Implements :class:`explorer.contract.KernelServices` for one CPU in one context."""

    __slots__ = ("atomic_depth", "base_atomic", "by", "cpu", "debt", "kernel", "made", "source")

    def __init__(self, kernel: Kernel, cpu: int, atomic: bool, source: str, by: str = "caller") -> None:
        self.kernel = kernel
        self.cpu = cpu
        self.base_atomic = atomic
        self.atomic_depth = 0
        self.source = source
        #: the freeing context a free in this context is attributed to: ``caller`` (the strategy,
        #: inline in the code that unlinked the table), ``kworker:WORK`` (a work function), ``timer``
        self.by = by
        self.debt = 0  # CPU time owed (lock/free costs), paid when the kernel call returns
        #: kernel services handed out in this step, with where they were asked for: one never
        #: started when the step ends was called without ``yield from`` (see check_services)
        self.made: list[tuple[Generator[Any, Any, None], str, int]] | None = None

    @property
    def now(self) -> int:
        return self.kernel.engine.now

    @property
    def in_atomic(self) -> bool:
        return self.base_atomic or self.atomic_depth > 0

    def spinlock(self, name: str) -> SpinLock:
        lock = SpinLock(name)
        self.kernel.spinlocks.append(lock)
        return lock

    def spin_lock(self, lock: SpinLock) -> _Held:
        return _Held(self, lock)

    def work(self, name: str, func: Callable[..., Any], oneshot: bool = False) -> WorkItem:
        item = WorkItem(self.kernel, name, func)
        if oneshot:
            item.oneshot = True  # kfree()d once it has run: the kernel forgets it (Kernel.work_done)
            self.kernel.oneshot_live += 1
        self.kernel.work_items.append(item)
        return item

    def schedule_work(self, work: WorkItem) -> bool:
        queued = work.schedule(self.cpu)
        if self.kernel.tracer is not None:  # tracing is off unless asked: skip building the fields
            self.kernel.trace("schedule_work", cpu=self.cpu, work=work.name, queued=queued)
        return queued

    def start_timer(self, delay_ns: int, func: Callable[..., Any]) -> Timer:
        k = self.kernel
        k.timers_started += 1
        t = Timer(k, func, self.cpu, self.source, k.engine.now + int(delay_ns), k.timers_started)
        k.engine.call_in(int(delay_ns), t.fire)
        if k.tracer is not None:  # tracing is off unless asked: skip building the fields
            k.trace("timer_start", cpu=self.cpu, timer=t.id, source=self.source, delay_ns=int(delay_ns))
        return t

    def might_sleep(self) -> None:
        if self.in_atomic:
            self.kernel.checker.sleep_in_atomic(self.source, self.cpu, "might_sleep")
        elif self.kernel.cpu_waiters[self.cpu] and self.source != KWORKER:
            self.kernel.preemption_point(self.cpu)

    def iommu_sva_invalidate_kva_range(self) -> Generator[Any, Any, None]:
        gen = self.kernel.iommu_sva_invalidate_kva_range(self)
        caller = sys._getframe(1)  # where it was asked for, formatted only if it is never run
        made = self.made
        if made is None:
            self.made = [(gen, caller.f_code.co_filename, caller.f_lineno)]
        else:
            made.append((gen, caller.f_code.co_filename, caller.f_lineno))
        return gen

    def check_services(self) -> None:
        """At the end of a step: a kernel service asked for and never started was called without
        ``yield from`` (the generator was made and dropped: the flush silently never ran)."""
        made, self.made = self.made, None
        for made_gen, filename, line in made or ():
            gen = cast(GeneratorType, made_gen)  # type: ignore[type-arg]
            if gen.gi_frame is not None and not gen.gi_suspended and not gen.gi_running:  # never started
                gen.close()
                name = gen.gi_code.co_name
                raise PluginMistake(source_location(filename, line),
                                    f"called k.{name}() without `yield from`: the call only makes a generator, so the "
                                    f"{name} never ran; write `yield from k.{name}()`")

    def free_now(self, pt: PageTable) -> None:
        self.kernel.free_table(self, pt)

    def free_each(self, pts: Any) -> Generator[Any, Any, None]:
        """``__pagetable_free()`` of each table in turn: a page reaches the allocator when its own
        free ends (``kernel.free_page_ns`` after the previous one), not when the whole list is done."""
        k = self.kernel
        cost = k.free_page_ns
        for pt in pts:
            if cost:
                yield cost
            k.free_table(self, pt)
            self.debt -= cost  # free_table() charged it to the debt: it was spent just above


class WorkloadContext:
    """Implements :class:`explorer.contract.WorkloadServices` for one workload source."""

    def __init__(self, kernel: Kernel, name: str, streams: WorkloadStreams) -> None:
        self.kernel = kernel
        self.name = name
        self.rng = streams.own
        # Arrival times, CPUs and table picks each draw from their own stream, and arrivals are
        # open-loop (measured from the previous arrival, not from when the last operation ended):
        # the same seed gives the same workload whatever the strategy does with it.
        self._rng_time = streams.time
        self._rng_cpu = streams.cpu
        self._rng_pick = streams.pick
        self._next_arrival = 0
        self.in_op = 0

    @property
    def now(self) -> int:
        return self.kernel.engine.now

    @property
    def cpus(self) -> int:
        return self.kernel.cpus

    def interarrival(self, rate_per_s: float) -> int:
        if rate_per_s <= 0:
            return 1 << 62
        self._next_arrival += exp_gap(self._rng_time, rate_per_s)
        return max(0, self._next_arrival - self.kernel.engine.now)

    def pick_cpu(self, spec: str) -> int:
        return self.kernel.pick_cpu(self._rng_cpu, spec)

    def free_kernel_tables(
        self,
        count: int,
        *,
        cpu: int,
        atomic: bool,
        level: int = 1,
        marked: bool = True,
        via_pagetable_free: bool = True,
        cpu_flush_ns: int = 0,
        after_flush_ns: int = 0,
        unlink: bool = True,
        unmarked: float = 0.0,
        slot: int | None = None,
    ) -> Generator[Any, Any, int]:
        k = self.kernel
        self.in_op += 1
        done = 0
        ctx = KernelContext(k, cpu % k.cpus, atomic, self.name)
        k.task_enter(ctx.cpu, atomic)
        try:
            for i in range(count):
                if slot is None:
                    pt = k.space.pick_linked_table(self._rng_pick, level)
                else:  # a scripted event names its tables
                    s = slot + i
                    pt = k.space.slot_table[s] if 0 <= s < k.kernel_slots else None
                    if pt is None:
                        k.starved.add(self.name)
                        continue
                if pt is None:
                    k.starved.add(self.name)
                    break
                if not marked or (unmarked and self._unmarked(unmarked)):
                    pt.marked = False
                if unlink:
                    k.unlink(pt, self.name, ctx.cpu)
                else:
                    pt.source = self.name
                if cpu_flush_ns:
                    yield cpu_flush_ns
                    k.tlb_flush_calls += 1  # flush_tlb_kernel_range() returns
                    if k.tlb_flush_hook is not None:
                        yield from k.kernel_tlb_flush(ctx)
                if via_pagetable_free:
                    yield from k.pagetable_free(ctx, pt)
                else:
                    # Bootmem pages: freed straight to the allocator, pagetable_free() never sees them.
                    k.bypassed.add(self.name)
                    k.free_table(ctx, pt, BY_BOOTMEM)
                done += 1
            if after_flush_ns:
                yield after_flush_ns
                k.tlb_flush_calls += 1  # flush_tlb_all() returns
                if k.tlb_flush_hook is not None:
                    yield from k.kernel_tlb_flush(ctx)
            if ctx.debt:
                debt, ctx.debt = ctx.debt, 0
                yield debt
        finally:
            self.in_op -= 1
        # not in the finally: a generator closed mid-operation (a run dropped) starts no kworker
        k.task_leave(ctx.cpu, atomic)
        return done

    def _unmarked(self, share: float) -> bool:
        """Whether the next table lacks the kernel mark: a draw only for a share strictly between
        0 and 1, so the draws of a source that sets none stay as they were."""
        return share >= 1.0 or self.rng.random() < share

    def free_kernel_group(
        self,
        levels: Sequence[int],
        *,
        cpu: int,
        atomic: bool = False,
        flush_ns: int = 0,
        unmarked: float = 0.0,
    ) -> Generator[Any, Any, int]:
        k = self.kernel
        self.in_op += 1
        ctx = KernelContext(k, cpu % k.cpus, atomic, self.name)
        k.task_enter(ctx.cpu, atomic)
        try:
            group = []
            for level in levels:  # clear every parent entry first ...
                pt = k.space.pick_linked_table(self._rng_pick, level)
                if pt is None:
                    k.starved.add(self.name)
                    break
                if unmarked and self._unmarked(unmarked):
                    pt.marked = False
                k.unlink(pt, self.name, ctx.cpu)
                group.append(pt)
            if flush_ns:  # ... then one CPU TLB flush for the group ...
                yield flush_ns
                k.tlb_flush_calls += 1
                if k.tlb_flush_hook is not None:
                    yield from k.kernel_tlb_flush(ctx)
            for pt in group:  # ... then free them, in order
                yield from k.pagetable_free(ctx, pt)
            if ctx.debt:
                debt, ctx.debt = ctx.debt, 0
                yield debt
        finally:
            self.in_op -= 1
        k.task_leave(ctx.cpu, atomic)
        return len(group)

    def flush_tlb_kernel(self, flush_ns: int, *, cpu: int, atomic: bool = False) -> Generator[Any, Any, None]:
        k = self.kernel
        self.in_op += 1
        ctx = KernelContext(k, cpu % k.cpus, atomic, self.name)
        k.task_enter(ctx.cpu, atomic)
        try:
            if flush_ns:
                yield flush_ns
            k.tlb_flush_calls += 1
            if k.tlb_flush_hook is not None:
                yield from k.kernel_tlb_flush(ctx)
            if ctx.debt:
                debt, ctx.debt = ctx.debt, 0
                yield debt
        finally:
            self.in_op -= 1
        k.task_leave(ctx.cpu, atomic)

    # -- for scripted workloads (explorer.contract.WorkloadServices) ---------------------------------
    @property
    def kernel_slots(self) -> int:
        return self.kernel.kernel_slots

    @property
    def iommus(self) -> int:
        return len(self.kernel.iommus)

    def linked_slots(self, level: int = 0) -> list[int]:
        return self.kernel.space.linked(level)

    def spawn(self, step: Generator[Any, Any, Any]) -> None:
        self.in_op += 1  # the run is not quiet (nor cut at its duration) while the process runs

        def done(_: Any) -> None:
            self.in_op -= 1

        self.kernel.engine.start(guard(step, "workload", self.name), done)

    def device_probe(self, iommu: int, slot: int, mm: int = 0) -> str:
        units = self.kernel.iommus
        if not 0 <= iommu < len(units):
            return "none"
        return units[iommu].probe_slot(mm, slot)

    def alloc_pages(self, cpu: int, count: int = 1) -> list[int]:
        k = self.kernel
        cpu %= k.cpus
        pages = [k.memory.alloc_data(cpu) for _ in range(count)]
        if k.tracer is not None:
            for page in pages:
                k.trace("alloc", cpu=cpu, pfn=page, source=self.name)
        return pages

    def free_user_tables(self, count: int, *, cpu: int, atomic: bool) -> Generator[Any, Any, int]:
        k = self.kernel
        self.in_op += 1
        ctx = KernelContext(k, cpu % k.cpus, atomic, self.name)
        k.task_enter(ctx.cpu, atomic)
        try:
            tables = [k.memory.alloc_table(ctx.cpu, 1, False, -1, self.name) for _ in range(count)]
            for pt in tables:
                k.unlink(pt, self.name, ctx.cpu)
                yield from k.pagetable_free(ctx, pt)
            if ctx.debt:
                debt, ctx.debt = ctx.debt, 0
                yield debt
        finally:
            self.in_op -= 1
        # not in the finally: a generator closed mid-operation (a run dropped) starts no kworker
        k.task_leave(ctx.cpu, atomic)
        return count


class Kernel:
    """State of the simulated machine, and the kernel paths that act on it."""

    def __init__(
        self,
        *,
        engine: Engine,
        seed: int,
        cpus: int,
        pages: int,
        kernel_slots: int,
        slot_refill_ns: int,
        async_free: bool,
        sva_enabled: bool,
        walks_kernel_half: bool,
        workqueue_delay: int,
        preemption: str = "voluntary",
        spinlock_ns: int,
        free_page_ns: int,
        strategy: FreeStrategy,
        strategy_name: str,
        iommu_model: IommuModel,
        iommu_model_name: str,
        iommu_count: int,
        sva_mms: int,
        pasids_per_mm: int,
    ) -> None:
        self.engine = engine
        self.seed = seed
        self.cpus = cpus
        self.memory = Memory(pages, cpus)
        self.kernel_slots = kernel_slots
        self.slot_refill_ns = slot_refill_ns
        self.async_free = async_free
        self.workqueue_delay = workqueue_delay
        self.preemption = preemption
        # Per CPU: workload operations (tasks in the kernel) running on it, how many of them are
        # atomic, and the kworkers woken there that wait for the CPU (see cpu_blocked()).
        self.cpu_tasks = [0] * cpus
        self.cpu_atomic = [0] * cpus
        self.cpu_waiters: list[list[WorkItem]] = [[] for _ in range(cpus)]
        self.kworker_wait_ns = 0  # time woken kworkers waited for their CPU
        self.kworker_waits = 0
        self.spinlock_ns = spinlock_ns
        self.free_page_ns = free_page_ns
        self.strategy = strategy
        self.strategy_name = strategy_name
        self.iommu_model = iommu_model
        self.iommu_model_name = iommu_model_name
        self.iommu_count = iommu_count
        self.sva_mms = sva_mms
        self.pasids_per_mm = pasids_per_mm
        self.sva_present = bool(sva_enabled and iommu_model.present and iommu_count > 0 and sva_mms > 0)
        # The strategy's flush_tlb_kernel() hook (the v3 design), if it overrides the base class's.
        hook = getattr(type(strategy), "flush_tlb_kernel", None)
        self.tlb_flush_hook = hook if hook is not None and hook is not FreeStrategy.flush_tlb_kernel else None
        self.tlb_flush_calls = 0  # flush_tlb_kernel_range() / flush_tlb_all() calls by the workloads
        self.oneshot_live = 0  # one-shot work items allocated and not yet done
        self.oneshot_runs = 0  # runs of one-shot items already forgotten
        self.walks_kernel_half = walks_kernel_half
        #: the flush-before-free invariant applies: an SVA mm is bound and its IOMMUs can walk
        #: the kernel half (x86: yes; arm64 SMMUv3 with EPD1: no; no IOMMU: no)
        self.check_flush = self.sva_present and walks_kernel_half
        #: the least, over the IOMMUs, of how many unlinks preceded the start of its newest
        #: completed invalidation: a table with unlink_no above it is not covered on every IOMMU
        self.flush_cover = 0
        self.checker = Checker(self)
        self.sva_mutex = Mutex("iommu_sva_lock")
        self.work_items: list[WorkItem] = []
        self.timers_started = 0  # numbers the timers in the trace
        self.iommus: list[IommuUnit] = []
        self.sva_binds: Any = None  # explorer.sim.sva.BindTraffic when iommu.bind_rate > 0
        self.rng_bg = named_stream(seed, "kernel/background")
        # where trace records go: a bounded deque (the TUI's log) or a file writer (run --trace)
        self.tracer: TraceSink | None = None

        # Kernel address space: one table per slot, linked now (and refilled after each unlink).
        self.space = AddressSpace(self.memory, engine, kernel_slots, cpus, slot_refill_ns,
                                  named_stream(seed, "kernel/refill"))

        # Metrics.
        self.pending: dict[int, PageTable] = {}  # page -> table unlinked, not yet freed
        self.unlinked_total = 0
        self.freed_total = 0
        self.kernel_freed = 0
        self.user_freed = 0
        self.kernel_unlinked = 0
        self.strategy_calls = 0
        self.worker_cpu_ns = 0
        self.flushes = 0
        self.flush_time_ns = 0
        self._flush_units_cache: list[tuple[IommuUnit, SvaTopology, Callable[[str], None]]] = []
        # A model that declares invalidate_kernel_range(now, topo, batch) is told what each flush covers.
        self._model_takes_batch = takes_batch(iommu_model.invalidate_kernel_range)
        self._last_flush_start = -1
        self.mutex_contended = 0
        self.spinlocks: list[SpinLock] = []  # every lock a strategy created, for their contention count
        self.peak_pending = 0
        self.page_ns = 0  # integral of pending tables over time
        self._last_change = 0
        self.flush_hist = LogHistogram()
        # Per workload source (the caller's source; a table's own source for latency); the totals
        # (``latency``, ``caller``) are their merge, made when read: a merge is exact.
        self.latency_by_source: dict[str, LogHistogram] = {}
        self.caller_by_source: dict[str, LogHistogram] = {}
        self.flushes_by_source = BySource()
        self.freed_by_source = BySource()
        self.unlinked_by_source = BySource()
        self.starved = BySource()
        self.bypassed = BySource()
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

    # -- helpers ----------------------------------------------------------------------------
    def pick_cpu(self, rng: random.Random, spec: str) -> int:
        spec = spec.strip()
        if spec in ("", "all"):
            return int(rng.random() * self.cpus)
        if "-" in spec:
            lo_s, hi_s = spec.split("-", 1)
            lo, hi = int(lo_s), min(int(hi_s), self.cpus - 1)
            return lo + int(rng.random() * (hi - lo + 1))
        return int(spec) % self.cpus

    def trace(self, event: str, /, **fields: Any) -> None:
        if self.tracer is not None:
            self.tracer.append((self.engine.now, event, fields))

    def _pending_changed(self, delta: int) -> None:
        """After ``pending`` grew (+1) or shrank (-1): its time integral, peak and series.

        (Inlined in :meth:`unlink` and :meth:`free_table`; keep them in step.)
        """
        now = self.engine.now
        n = len(self.pending)
        self.page_ns += (n - delta) * (now - self._last_change)
        self._last_change = now
        if n > self.peak_pending:
            self.peak_pending = n
        self.queue_series.add(now, n)

    # -- unlink -------------------------------------------------------------------------------
    def unlink(self, pt: PageTable, source: str, cpu: int) -> None:
        """Clear the parent entry: no walk from the root reaches ``pt`` any more."""
        pt.linked = False
        pt.source = source
        pt.unlinked_at = self.engine.now
        pt.cpu = cpu
        self.memory.state[pt.page] = UNLINKED
        self.unlinked_total += 1
        pt.unlink_no = self.unlinked_total  # orders the unlink against invalidation starts (flush_cover)
        us = self.unlinked_by_source  # BySource.add(), inlined
        us.total += 1
        us.by_source[source] = us.by_source.get(source, 0) + 1
        if self.space.take(pt):
            self.kernel_unlinked += 1
        pending = self.pending
        pending[pt.page] = pt
        # _pending_changed(+1), inlined (with TimeSeries.add's fast path: the bin exists)
        now = self.engine.now
        n = len(pending)
        self.page_ns += (n - 1) * (now - self._last_change)
        self._last_change = now
        if n > self.peak_pending:
            self.peak_pending = n
        qs = self.queue_series
        i = now // qs.width
        bins = qs.bins
        if i < len(bins):
            if n > bins[i]:
                bins[i] = n
        else:
            qs.add(now, n)
        if self.tracer is not None:  # tracing is off unless asked: skip building the fields
            self.trace("unlink", cpu=cpu, pfn=pt.page, slot=pt.slot, level=pt.level, source=source)

    # -- the free path -----------------------------------------------------------------------
    def pagetable_free(self, ctx: KernelContext, pt: PageTable) -> Generator[Any, Any, None]:
        t0 = self.engine.now
        if pt.marked:  # ptdesc_test_kernel()
            pt.marked = False  # ptdesc_clear_kernel()
            if self.async_free:
                self.strategy_calls += 1
                if self.tracer is not None:  # tracing is off unless asked: skip building the fields
                    self.trace("pagetable_free_kernel", cpu=ctx.cpu, pfn=pt.page, source=ctx.source)
                try:
                    # KernelContext is the KernelServices implementation; its methods take the
                    # simulator's own objects, which are all a strategy is ever handed.
                    res = self.strategy.pagetable_free_kernel(cast(KernelServices, ctx), pt)
                except SimulatorError:
                    raise
                except Exception as exc:
                    raise PluginError("strategy", self.strategy_name, exc) from exc
                if isinstance(res, GeneratorType):
                    yield from guard(res, "strategy", self.strategy_name)
                if ctx.made is not None:
                    self.check_services(ctx)
            else:
                self.free_table(ctx, pt, BY_PAGETABLE_FREE)
        else:
            self.free_table(ctx, pt, BY_PAGETABLE_FREE)
        if ctx.debt:
            debt, ctx.debt = ctx.debt, 0
            yield debt
        h = self.caller_by_source.get(ctx.source)
        if h is None:
            h = self.caller_by_source[ctx.source] = LogHistogram()
        h.record(self.engine.now - t0)

    def free_table(self, ctx: KernelContext, pt: PageTable, by: str | None = None) -> None:
        """``__pagetable_free()``: the page goes on the current CPU's free list.

        ``by`` is the freeing context when it is not the context's own (the kernel's paths that
        bypass the strategy). A kernel table freed while an IOMMU that walks the kernel half has
        not completed an invalidation started after its unlink is an ``unflushed_free``.
        """
        if pt.freed:
            self.checker.double_free(pt, ctx.source)
            return
        if pt.linked:
            self.checker.freed_while_linked(pt, ctx.source)
            self.unlink(pt, pt.source or ctx.source, ctx.cpu)
        pt.freed = True
        now = self.engine.now
        pending = self.pending
        del pending[pt.page]
        # _pending_changed(-1), inlined: a shrinking queue sets no new peak
        n = len(pending)
        self.page_ns += (n + 1) * (now - self._last_change)
        self._last_change = now
        qs = self.queue_series
        i = now // qs.width
        bins = qs.bins
        if i < len(bins):  # queue_series is a "max" series
            if n > bins[i]:
                bins[i] = n
        else:
            qs.add(now, n)
        self.memory.free(pt.page, ctx.cpu)
        self.freed_total += 1
        source = pt.source
        fs = self.freed_by_source  # BySource.add(), inlined
        fs.total += 1
        fs.by_source[source] = fs.by_source.get(source, 0) + 1
        ctx.debt += self.free_page_ns
        if pt.kernel:
            self.kernel_freed += 1
            h = self.latency_by_source.get(source)
            if h is None:
                h = self.latency_by_source[source] = LogHistogram()
            h.record(now - pt.unlinked_at)
            fr = self.free_series  # TimeSeries.add(now, 1), inlined when the bin exists ("sum" series)
            i = now // fr.width
            if i < len(fr.bins):
                fr.bins[i] += 1
            else:
                fr.add(now, 1)
        else:
            self.user_freed += 1
        if self.tracer is not None:  # tracing is off unless asked: skip building the fields
            self.trace("free", cpu=ctx.cpu, pfn=pt.page, source=pt.source, age_ns=now - pt.unlinked_at,
                       by=by or ctx.by)
        if pt.unlink_no > self.flush_cover and self.check_flush and pt.kernel:
            # Maybe uncovered: flush_cover is a lower bound of every IOMMU's mark (exact between
            # flushes), so ask each IOMMU.
            # An IOMMU with no SVA mm bound (iommu.iommus_per_mm) walks nothing and is never flushed.
            uncovered = [u.index for u in self.iommus if u.bound_mms and u.covered_upto < pt.unlink_no]
            if uncovered:
                self.checker.unflushed_free(pt, by or ctx.by, uncovered, ctx.cpu)

    # -- kernel TLB flushes ---------------------------------------------------------------------
    def kernel_tlb_flush(self, ctx: KernelContext) -> Generator[Any, Any, None]:
        """A ``flush_tlb_kernel_range()`` / ``flush_tlb_all()`` call has flushed the CPU TLBs: the
        strategy's ``flush_tlb_kernel()`` hook runs in the caller's context (the v3 design)."""
        hook = self.tlb_flush_hook
        if hook is None:
            return
        try:
            res = hook(self.strategy, cast(KernelServices, ctx))
        except SimulatorError:
            raise
        except Exception as exc:
            raise PluginError("strategy", self.strategy_name, exc) from exc
        if isinstance(res, GeneratorType):
            yield from guard(res, "strategy", self.strategy_name)

    def work_done(self, work: WorkItem) -> None:
        """A one-shot item finished (and nothing re-queued it): the kernel frees it."""
        self.oneshot_live -= 1
        self.oneshot_runs += work.runs
        self.work_items.remove(work)

    # -- CPUs and preemption ------------------------------------------------------------------
    def task_enter(self, cpu: int, atomic: bool) -> None:
        """A workload's task enters the kernel on ``cpu`` (a syscall, a kernel thread's job)."""
        self.cpu_tasks[cpu] += 1
        if atomic:
            self.cpu_atomic[cpu] += 1

    def task_leave(self, cpu: int, atomic: bool) -> None:
        """The task leaves the CPU (returns to user space, sleeps): a kworker waiting there may run."""
        self.cpu_tasks[cpu] -= 1
        if atomic:
            self.cpu_atomic[cpu] -= 1
        if self.cpu_waiters[cpu] and not self.cpu_blocked(cpu):
            self._release(cpu)

    def cpu_blocked(self, cpu: int) -> bool:
        """Whether a kworker woken on ``cpu`` must wait for the task there to leave the CPU.

        With full preemption (``CONFIG_PREEMPT``) the woken kworker preempts the task at once,
        unless the task is atomic (preemption disabled). Without it (``none``, ``voluntary``) a
        task in the kernel keeps the CPU until it returns to user space or sleeps; ``voluntary``
        also lets the kworker in at the task's ``might_sleep()`` points (:meth:`preemption_point`).
        """
        if self.preemption == "full":
            return self.cpu_atomic[cpu] > 0
        return self.cpu_tasks[cpu] > 0

    def wait_for_cpu(self, work: WorkItem) -> bool:
        """Called when ``work``'s kworker is woken: True if it must wait for its CPU."""
        if not self.cpu_blocked(work.cpu):
            return False
        self.cpu_waiters[work.cpu].append(work)
        self.kworker_waits += 1
        self.kworker_wait_ns -= self.engine.now  # + the time it starts, in _release()
        return True

    def preemption_point(self, cpu: int, sleeps: bool = False) -> None:
        """``might_sleep()`` in a sleepable task: with ``CONFIG_PREEMPT_VOLUNTARY`` it is
        ``might_resched()``, and a kworker waiting for this CPU runs; so it does in any model when
        the task really sleeps (``sleeps``: the mutex it takes is held)."""
        if (sleeps or self.preemption == "voluntary") and self.cpu_atomic[cpu] == 0:
            self._release(cpu)

    def _release(self, cpu: int) -> None:
        waiters = self.cpu_waiters[cpu]
        self.cpu_waiters[cpu] = []
        for work in waiters:
            self.kworker_wait_ns += self.engine.now
            work._start()

    # -- workqueue and timers ------------------------------------------------------------------
    def run_work(self, work: WorkItem) -> None:
        ctx = KernelContext(self, work.cpu, False, KWORKER, "kworker:" + work.name)
        if self.tracer is not None:  # tracing is off unless asked: skip building the fields
            self.trace("worker_start", cpu=work.cpu, work=work.name)
        self.engine.start(self._work_process(work, ctx), lambda _: work.done())

    def _work_process(self, work: WorkItem, ctx: KernelContext) -> Generator[Any, Any, None]:
        t0 = self.engine.now
        try:
            res = work.func(ctx)
        except Exception as exc:
            raise PluginError("strategy", self.strategy_name, exc) from exc
        if isinstance(res, GeneratorType):
            try:  # guard(), inlined: one generator frame fewer on each step of the worker
                yield from res
            except SimulatorError:
                raise
            except Exception as exc:
                raise PluginError("strategy", self.strategy_name, exc) from exc
        if ctx.made is not None:
            self.check_services(ctx)
        if ctx.debt:
            debt, ctx.debt = ctx.debt, 0
            yield debt
        self.worker_cpu_ns += self.engine.now - t0
        if self.tracer is not None:  # tracing is off unless asked: skip building the fields
            self.trace("worker_end", cpu=work.cpu, work=work.name)

    def run_timer(self, timer: Timer) -> None:
        ctx = KernelContext(self, timer.cpu, True, "timer", "timer")
        try:
            res = timer.func(ctx)
        except Exception as exc:
            raise PluginError("strategy", self.strategy_name, exc) from exc
        if isinstance(res, GeneratorType):
            self.engine.start(guard(res, "strategy", self.strategy_name), lambda _: self.check_services(ctx))
        elif ctx.made is not None:
            self.check_services(ctx)

    def check_services(self, ctx: KernelContext) -> None:
        """:meth:`KernelContext.check_services`, blaming the strategy."""
        try:
            ctx.check_services()
        except PluginMistake as exc:
            raise PluginError("strategy", self.strategy_name, exc) from None

    # -- the IOMMU flush -----------------------------------------------------------------------
    def iommu_sva_invalidate_kva_range(self, ctx: KernelContext) -> Generator[Any, Any, None]:
        """The kernel's iommu_sva_invalidate_kva_range(PAGE_OFFSET, TLB_FLUSH_ALL)."""
        if ctx.base_atomic or ctx.atomic_depth > 0:  # ctx.might_sleep(), inlined: mutex_lock(&iommu_sva_lock)
            self.checker.sleep_in_atomic(ctx.source, ctx.cpu, "might_sleep")
        elif self.cpu_waiters[ctx.cpu] and ctx.source != KWORKER:
            self.preemption_point(ctx.cpu, sleeps=self.sva_mutex.held)
        mutex = self.sva_mutex
        if mutex.held:
            self.mutex_contended += 1
        while mutex.held:  # Mutex.lock(), inlined
            yield mutex
        mutex.held = True
        try:
            if not self.sva_present:  # iommu_sva_present()
                return
            engine = self.engine
            t0 = engine.now
            self.flushes += 1
            fs = self.flushes_by_source  # BySource.add(), inlined
            fs.total += 1
            fs.by_source[ctx.source] = fs.by_source.get(ctx.source, 0) + 1
            if self.tracer is not None:  # tracing is off unless asked: skip building the fields
                self.trace("flush_start", cpu=ctx.cpu, mms=self.sva_mms, source=ctx.source)
            invalidate = self.iommu_model.invalidate_kernel_range
            batch = self.flush_batch(t0) if self._model_takes_batch else None
            call_in = engine.call_in
            for unit, topo, drop in self._flush_units():
                # The invalidation covers the tables unlinked before it starts (by unlink order, so
                # an unlink in the same nanosecond but earlier counts): see flush_cover.
                started_after = self.unlinked_total
                started_ns = engine.now
                try:
                    cost: FlushCost = invalidate(engine.now, topo) if batch is None else invalidate(
                        engine.now, topo, batch)
                except Exception as exc:
                    raise PluginError("iommu", self.iommu_model_name, exc) from exc
                check_flush_cost(cost, self.iommu_model_name)  # a bad value is the model's fault, not the strategy's
                duration = max(0, int(cost.duration_ns))
                effective = min(max(0, int(cost.effective_ns)), duration)
                call_in(effective, drop, cost.scope)
                # The unit's totals only: the kernel's (flush_commands, flush_stalls, ...) are
                # their sums, made when read.
                unit_commands = unit.commands
                for name, n in cost.commands.items():
                    unit_commands[name] = unit_commands.get(name, 0) + n
                unit.stalls += cost.stalls
                unit.stall_ns += cost.stall_ns
                unit.wait_ns += cost.wait_ns
                unit.flush_ns += duration
                if duration:
                    yield duration
                # Completed (its cache drop, scheduled at or before now, has run).
                unit.covered_upto = started_after
                unit.covered_start_ns = started_ns
            # Until this flush ends, the least covered IOMMU is one it has not reached yet, so the
            # lower bound is raised once, here; a free meanwhile asks the units' own marks.
            if self.check_flush:
                self.flush_cover = min((u.covered_upto for u in self.iommus if u.bound_mms), default=0)
            now = engine.now
            elapsed = now - t0
            self.flush_time_ns += elapsed
            self.flush_hist.record(elapsed)
            self.flush_series.add(now, 1)
            if self.tracer is not None:  # tracing is off unless asked: skip building the fields
                self.trace("flush_end", cpu=ctx.cpu, took_ns=elapsed)
        finally:
            mutex.unlock(self.engine)

    def flush_batch(self, t0: int) -> FlushBatch:
        """The kernel tables a flush starting at ``t0`` covers: every one unlinked and not yet freed."""
        levels: dict[int, int] = {}
        new = 0
        since = self._last_flush_start
        for pt in self.pending.values():
            if pt.kernel:
                levels[pt.level] = levels.get(pt.level, 0) + 1
                if pt.unlinked_at >= since:
                    new += 1
        self._last_flush_start = t0
        return FlushBatch(sum(levels.values()), dict(sorted(levels.items())), new)

    def _flush_units(self) -> list[tuple[IommuUnit, SvaTopology, Callable[[str], None]]]:
        """Each IOMMU with its topology (fixed for the run) and its ``invalidate``, for the flush loop."""
        units = self._flush_units_cache
        if not units and self.iommus:  # the units are added after the kernel is built
            # Each mm's notifier invalidates only the IOMMUs the mm is bound on: an IOMMU with no
            # bound mm is never asked (iommu.iommus_per_mm).
            units[:] = [
                (u, u.topology(u.bound_mms, self.pasids_per_mm, self.iommu_count), u.invalidate)
                for u in self.iommus
                if u.bound_mms
            ]
        return units

    # Exact sums of the units' own totals (integers, as FlushCost declares them).
    @property
    def flush_commands(self) -> dict[str, int]:
        """IOMMU commands issued by the flushes, by type (all units)."""
        out: dict[str, int] = {}
        for u in self.iommus:
            for name, n in u.commands.items():
                out[name] = out.get(name, 0) + n
        return out

    @property
    def flush_stalls(self) -> int:
        return sum(u.stalls for u in self.iommus)

    @property
    def flush_stall_ns(self) -> int:
        return sum(u.stall_ns for u in self.iommus)

    @property
    def flush_wait_ns(self) -> int:
        return sum(u.wait_ns for u in self.iommus)

    # -- background page traffic ---------------------------------------------------------------
    def start_background(self, rate: float) -> None:
        """Data pages allocated and freed at ``rate`` each (the engine's lane: see engine.py)."""
        if rate > 0:
            self.engine.add_background(self.memory, self.rng_bg, rate, self.cpus)

    # -- end of run ----------------------------------------------------------------------------
    def quiescent(self) -> bool:
        return not self.pending and not self.oneshot_live and not any(w.pending or w.running for w in self.work_items)

    def report_leaks(self) -> None:
        for pt in self.pending.values():
            self.checker.leaked(pt)

    def conservation_problems(self) -> list[str]:
        problems = []
        if self.unlinked_total != self.freed_total + len(self.pending):
            problems.append(
                f"tables unlinked {self.unlinked_total} != freed {self.freed_total} + pending {len(self.pending)}"
            )
        for page, pt in self.pending.items():
            if self.memory.state[page] != UNLINKED or pt.freed:
                problems.append(f"pending table pfn={page} is not in the unlinked state")
                break
        return problems + self.memory.check()
