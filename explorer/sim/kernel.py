"""The simulated kernel: unlink, ``pagetable_free()`` dispatch, the IOMMU flush, CPUs and kworkers.

Its parts live beside it: the kernel address space (slots, their tables, refills) in ``space.py``,
the contexts it hands to plugins in ``contexts.py``, what it counts in ``stats.py``.

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
import weakref
from collections.abc import Callable, Generator
from types import GeneratorType
from typing import Any, Protocol, cast

from explorer.contract import FlushBatch, FlushCost, FreeStrategy, IommuModel, KernelServices, SvaTopology
from explorer.sim.checker import Checker
from explorer.sim.contexts import BY_PAGETABLE_FREE, KWORKER, KernelContext, ServiceCall, SpinLock, guard
from explorer.sim.engine import Engine, Mutex, PluginError, PluginMistake, SimulatorError
from explorer.sim.hookcheck import check_flush_cost
from explorer.sim.iommu import IommuUnit
from explorer.sim.machine import boot_machine
from explorer.sim.memory import UNLINKED, PageTable
from explorer.sim.metrics import LogHistogram
from explorer.sim.stats import KernelStats
from explorer.sim.streams import named_stream
from explorer.sim.workqueue import Timer, WorkItem


class TraceSink(Protocol):
    """Takes each kernel trace record ``(time_ns, event, fields)`` as it happens."""

    def append(self, record: tuple[int, str, dict[str, Any]], /) -> None: ...


#: takes_batch's answer per function: inspect.signature costs more than the rest of a short
#: run's kernel set-up (a hunt builds thousands); weak, so reloaded plugins do not pile up
_takes_batch: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def takes_batch(invalidate: Callable[..., Any]) -> bool:
    """Whether a model's ``invalidate_kernel_range`` takes the flush's batch (a third argument
    or a ``batch`` keyword); models written before the batch existed take ``(now, topo)``."""
    func = getattr(invalidate, "__func__", None)  # a bound method: the function is what decides
    if func is None:
        return _takes_batch_uncached(invalidate)
    known = _takes_batch.get(func)
    if known is None:
        known = _takes_batch[func] = _takes_batch_uncached(invalidate)
    return known


def _takes_batch_uncached(invalidate: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(invalidate).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return (any(p.name == "batch" or p.kind is p.VAR_POSITIONAL for p in params) or len(positional) >= 3)


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
        # The machine as it boots: every kernel slot mapped, half the memory handed out as data.
        self.memory, self.space = boot_machine(pages, cpus, kernel_slots, engine, slot_refill_ns,
                                               named_stream(seed, "kernel/refill"))
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
        self.oneshot_live = 0  # one-shot work items allocated and not yet done
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

        #: what the kernel counts (explorer.sim.stats)
        self.stats = KernelStats()
        self.pending: dict[int, PageTable] = {}  # page -> table unlinked, not yet freed
        self._flush_units_cache: list[tuple[IommuUnit, SvaTopology, Callable[[str], None]]] = []
        # A model that declares invalidate_kernel_range(now, topo, batch) is told what each flush covers.
        self._model_takes_batch = takes_batch(iommu_model.invalidate_kernel_range)
        self._last_flush_start = -1
        self.spinlocks: list[SpinLock] = []  # every lock a strategy created, for their contention count

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
        st = self.stats
        now = self.engine.now
        n = len(self.pending)
        st.page_ns += (n - delta) * (now - st.last_change)
        st.last_change = now
        if n > st.peak_pending:
            st.peak_pending = n
        st.queue_series.add(now, n)

    # -- unlink -------------------------------------------------------------------------------
    def unlink(self, pt: PageTable, source: str, cpu: int) -> None:
        """Clear the parent entry: no walk from the root reaches ``pt`` any more."""
        st = self.stats
        pt.linked = False
        pt.source = source
        pt.unlinked_at = self.engine.now
        pt.cpu = cpu
        self.memory.state[pt.page] = UNLINKED
        st.unlinked_total += 1
        pt.unlink_no = st.unlinked_total  # orders the unlink against invalidation starts (flush_cover)
        us = st.unlinked_by_source  # BySource.add(), inlined
        us.total += 1
        us.by_source[source] = us.by_source.get(source, 0) + 1
        if self.space.take(pt):
            st.kernel_unlinked += 1
        pending = self.pending
        pending[pt.page] = pt
        # _pending_changed(+1), inlined (with TimeSeries.add's fast path: the bin exists)
        now = self.engine.now
        n = len(pending)
        st.page_ns += (n - 1) * (now - st.last_change)
        st.last_change = now
        if n > st.peak_pending:
            st.peak_pending = n
        qs = st.queue_series
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
        st = self.stats
        t0 = self.engine.now
        if pt.marked:  # ptdesc_test_kernel()
            pt.marked = False  # ptdesc_clear_kernel()
            if self.async_free:
                st.strategy_calls += 1
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
        h = st.caller_by_source.get(ctx.source)
        if h is None:
            h = st.caller_by_source[ctx.source] = LogHistogram()
        h.record(self.engine.now - t0)

    def free_table(self, ctx: KernelContext, pt: PageTable, by: str | None = None) -> None:
        """``__pagetable_free()``: the page goes on the current CPU's free list.

        ``by`` is the freeing context when it is not the context's own (the kernel's paths that
        bypass the strategy). A kernel table freed while an IOMMU that walks the kernel half has
        not completed an invalidation started after its unlink is an ``unflushed_free``.
        """
        st = self.stats
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
        st.page_ns += (n + 1) * (now - st.last_change)
        st.last_change = now
        qs = st.queue_series
        i = now // qs.width
        bins = qs.bins
        if i < len(bins):  # queue_series is a "max" series
            if n > bins[i]:
                bins[i] = n
        else:
            qs.add(now, n)
        self.memory.free(pt.page, ctx.cpu)
        st.freed_total += 1
        source = pt.source
        fs = st.freed_by_source  # BySource.add(), inlined
        fs.total += 1
        fs.by_source[source] = fs.by_source.get(source, 0) + 1
        ctx.debt += self.free_page_ns
        if pt.kernel:
            st.kernel_freed += 1
            h = st.latency_by_source.get(source)
            if h is None:
                h = st.latency_by_source[source] = LogHistogram()
            h.record(now - pt.unlinked_at)
            fr = st.free_series  # TimeSeries.add(now, 1), inlined when the bin exists ("sum" series)
            i = now // fr.width
            if i < len(fr.bins):
                fr.bins[i] += 1
            else:
                fr.add(now, 1)
        else:
            st.user_freed += 1
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
        self.stats.oneshot_runs += work.runs
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
        self.stats.kworker_waits += 1
        self.stats.kworker_wait_ns -= self.engine.now  # + the time it starts, in _release()
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
            self.stats.kworker_wait_ns += self.engine.now
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
        self.stats.worker_cpu_ns += self.engine.now - t0
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
    def iommu_sva_invalidate_kva_range(self, ctx: KernelContext,
                                       call: ServiceCall | None = None) -> Generator[Any, Any, None]:
        """The kernel's iommu_sva_invalidate_kva_range(PAGE_OFFSET, TLB_FLUSH_ALL); ``call`` is
        the strategy's request, marked started here (see :meth:`KernelContext.check_services`)."""
        if call is not None:
            call.started = True
        st = self.stats
        if ctx.base_atomic or ctx.atomic_depth > 0:  # ctx.might_sleep(), inlined: mutex_lock(&iommu_sva_lock)
            self.checker.sleep_in_atomic(ctx.source, ctx.cpu, "might_sleep")
        elif self.cpu_waiters[ctx.cpu] and ctx.source != KWORKER:
            self.preemption_point(ctx.cpu, sleeps=self.sva_mutex.held)
        mutex = self.sva_mutex
        if mutex.held:
            st.mutex_contended += 1
        while mutex.held:  # Mutex.lock(), inlined
            yield mutex
        mutex.held = True
        try:
            if not self.sva_present:  # iommu_sva_present()
                return
            engine = self.engine
            t0 = engine.now
            st.flushes += 1
            fs = st.flushes_by_source  # BySource.add(), inlined
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
                started_after = st.unlinked_total
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
            st.flush_time_ns += elapsed
            st.flush_hist.record(elapsed)
            st.flush_series.add(now, 1)
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

    def release(self) -> None:
        """Let go of the page tables, the IOMMUs and the work items (:meth:`Simulation.close`): the
        kernel and its parts refer to one another, so without this a finished run waits for the
        cyclic collector, and every collection until then walks its tables again."""
        self.pending.clear()
        for unit in self.iommus:  # a unit refers to itself (its probe's context): its caches go now
            unit.release()
        self.iommus.clear()
        self._flush_units_cache.clear()
        self.work_items.clear()
        self.space.slot_table.clear()
        self.memory.owner.clear()

    def conservation_problems(self) -> list[str]:
        problems = []
        st = self.stats
        if st.unlinked_total != st.freed_total + len(self.pending):
            problems.append(f"tables unlinked {st.unlinked_total} != freed {st.freed_total} + pending "
                            f"{len(self.pending)}")
        for page, pt in self.pending.items():
            if self.memory.state[page] != UNLINKED or pt.freed:
                problems.append(f"pending table pfn={page} is not in the unlinked state")
                break
        return problems + self.memory.check()
