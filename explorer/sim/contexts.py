"""What the kernel hands to plugins: :class:`KernelContext` (a strategy's ``KernelServices``: one
CPU, one context, one instant) and :class:`WorkloadContext` (a workload source's
``WorkloadServices``), with the spinlocks a strategy makes.

A workload's operations (``free_kernel_tables``, ``free_kernel_group``, ``flush_tlb_kernel``,
``free_user_tables``) share one frame, :meth:`WorkloadContext._operation`: the task enters the kernel
on its CPU, the body runs, the CPU time the kernel charged meanwhile (lock and free costs) is spent,
and the task leaves the CPU (where a kworker waiting for it may run).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Generator, Sequence
from random import Random
from typing import TYPE_CHECKING, Any

from explorer.sim.engine import PluginError, PluginMistake, SimulatorError, name_service, source_location
from explorer.sim.memory import PageTable
from explorer.sim.streams import WorkloadStreams, exp_gap
from explorer.sim.workqueue import Timer, WorkItem

if TYPE_CHECKING:
    from explorer.sim.kernel import Kernel

KWORKER = "kworker"

#: this module's source file: where the interpreted :meth:`KernelContext.iommu_sva_invalidate_kva_range` runs
_THIS_FILE = __file__

#: The freeing context (``free ... by=``, ``unflushed_free.by_context``) of a table that
#: ``pagetable_free()`` sent straight to the allocator (unmarked, a user table, or the async option
#: off), and of a bootmem table freed without ``pagetable_free()``: no strategy was involved.
BY_PAGETABLE_FREE = "caller:__pagetable_free"
BY_BOOTMEM = "caller:bootmem"



def guard(gen: Generator[Any, Any, Any], kind: str, name: str) -> Generator[Any, Any, Any]:
    """Run a plugin's generator, turning its exceptions into :class:`PluginError`."""
    try:
        return (yield from gen)
    except SimulatorError:
        raise
    except Exception as exc:
        raise PluginError(kind, name, exc) from exc


class ServiceCall:
    """A kernel service handed to a strategy (``k.iommu_sva_invalidate_kva_range()``), named and
    located where it was asked for. The service's generator sets ``started`` when it begins to run:
    one still unstarted when the step ends was called without ``yield from``. A flag rather than the
    generator's ``gi_frame``: a generator compiled by mypyc (the compiled core) has no frame."""

    __slots__ = ("filename", "gen", "line", "name", "started")

    def __init__(self, name: str) -> None:
        self.name = name
        self.started = False
        self.gen: Generator[Any, Any, None] | None = None
        self.filename = "?"
        self.line = 0


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
        self.made: list[ServiceCall] | None = None

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
        call = ServiceCall("iommu_sva_invalidate_kva_range")
        gen = call.gen = self.kernel.iommu_sva_invalidate_kva_range(self, call)
        name_service(gen, call.name)
        # where it was asked for: the first interpreted frame (this one's caller when this module
        # runs interpreted; the caller itself when compiled, which pushes no frame of its own)
        caller = sys._getframe(0)
        if caller.f_code.co_filename == _THIS_FILE:
            caller = caller.f_back or caller
        call.filename, call.line = caller.f_code.co_filename, caller.f_lineno
        made = self.made
        if made is None:
            self.made = [call]
        else:
            made.append(call)
        return gen

    def check_services(self) -> None:
        """At the end of a step: a kernel service asked for and never started was called without
        ``yield from`` (the generator was made and dropped: the flush silently never ran)."""
        made, self.made = self.made, None
        for call in made or ():
            if not call.started:
                call.started = True
                if call.gen is not None:
                    call.gen.close()
                name = call.name
                raise PluginMistake(source_location(call.filename, call.line),
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
        # Arrival times, CPUs and table picks each draw from their own stream, and arrivals are
        # open-loop (measured from the previous arrival, not from when the last operation ended):
        # the same seed gives the same workload whatever the strategy does with it. Each stream
        # is made on its first draw (WorkloadStreams).
        self._streams = streams
        self._next_arrival = 0
        self.in_op = 0

    @property
    def rng(self) -> Random:
        return self._streams.own

    @property
    def now(self) -> int:
        return self.kernel.engine.now

    @property
    def cpus(self) -> int:
        return self.kernel.cpus

    def interarrival(self, rate_per_s: float) -> int:
        if rate_per_s <= 0:
            return 1 << 62
        self._next_arrival += exp_gap(self._streams.time, rate_per_s)
        return max(0, self._next_arrival - self.kernel.engine.now)

    def pick_cpu(self, spec: str) -> int:
        return self.kernel.pick_cpu(self._streams.cpu, spec)

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
        ctx = KernelContext(self.kernel, cpu % self.kernel.cpus, atomic, self.name)
        return self._operation(ctx, self._free_kernel_tables(ctx, count, level, marked, via_pagetable_free,
                                                             cpu_flush_ns, after_flush_ns, unlink, unmarked, slot))

    def _free_kernel_tables(self, ctx: KernelContext, count: int, level: int, marked: bool, via_pagetable_free: bool,
                            cpu_flush_ns: int, after_flush_ns: int, unlink: bool, unmarked: float,
                            slot: int | None) -> Generator[Any, Any, int]:
        k = self.kernel
        done = 0
        for i in range(count):
            if slot is None:
                pt = k.space.pick_linked_table(self._streams.pick, level)
            else:  # a scripted event names its tables
                s = slot + i
                pt = k.space.slot_table[s] if 0 <= s < k.kernel_slots else None
                if pt is None:
                    k.stats.starved.add(self.name)
                    continue
            if pt is None:
                k.stats.starved.add(self.name)
                break
            if not marked or (unmarked and self._unmarked(unmarked)):
                pt.marked = False
            if unlink:
                k.unlink(pt, self.name, ctx.cpu)
            else:
                pt.source = self.name
            if cpu_flush_ns:  # flush_tlb_kernel_range()
                yield from self._cpu_tlb_flush(ctx, cpu_flush_ns)
            if via_pagetable_free:
                yield from k.pagetable_free(ctx, pt)
            else:
                # Bootmem pages: freed straight to the allocator, pagetable_free() never sees them.
                k.stats.bypassed.add(self.name)
                k.free_table(ctx, pt, BY_BOOTMEM)
            done += 1
        if after_flush_ns:  # flush_tlb_all() at the end of remove_pagetable()
            yield from self._cpu_tlb_flush(ctx, after_flush_ns)
        return done

    def _operation(self, ctx: KernelContext, body: Generator[Any, Any, Any]) -> Generator[Any, Any, Any]:
        """One workload operation in the kernel, around ``body``: the task enters the kernel on
        ``ctx.cpu``, ``body`` runs, the CPU time the kernel charged to ``ctx`` meanwhile (lock and
        free costs) is spent, and the task leaves the CPU. Returns what ``body`` returns.

        While it runs the source is *in an operation* (``in_op``): the run is not quiet, and the
        duration does not cut it in half.
        """
        k = self.kernel
        atomic = ctx.base_atomic
        self.in_op += 1
        k.task_enter(ctx.cpu, atomic)
        try:
            result = yield from body
            if ctx.debt:
                debt, ctx.debt = ctx.debt, 0
                yield debt
        finally:
            self.in_op -= 1
        # not in the finally: a generator closed mid-operation (a run dropped) starts no kworker
        k.task_leave(ctx.cpu, atomic)
        return result

    def _cpu_tlb_flush(self, ctx: KernelContext, flush_ns: int) -> Generator[Any, Any, None]:
        """A CPU TLB flush of ``flush_ns`` (``flush_tlb_kernel_range()`` / ``flush_tlb_all()``) has
        returned: counted, and the strategy's ``flush_tlb_kernel()`` hook runs after it."""
        if flush_ns:
            yield flush_ns
        k = self.kernel
        k.stats.tlb_flush_calls += 1
        if k.tlb_flush_hook is not None:
            yield from k.kernel_tlb_flush(ctx)

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
        ctx = KernelContext(self.kernel, cpu % self.kernel.cpus, atomic, self.name)
        return self._operation(ctx, self._free_kernel_group(ctx, levels, flush_ns, unmarked))

    def _free_kernel_group(self, ctx: KernelContext, levels: Sequence[int], flush_ns: int,
                           unmarked: float) -> Generator[Any, Any, int]:
        k = self.kernel
        group = []
        for level in levels:  # clear every parent entry first ...
            pt = k.space.pick_linked_table(self._streams.pick, level)
            if pt is None:
                k.stats.starved.add(self.name)
                break
            if unmarked and self._unmarked(unmarked):
                pt.marked = False
            k.unlink(pt, self.name, ctx.cpu)
            group.append(pt)
        if flush_ns:  # ... then one CPU TLB flush for the group ...
            yield from self._cpu_tlb_flush(ctx, flush_ns)
        for pt in group:  # ... then free them, in order
            yield from k.pagetable_free(ctx, pt)
        return len(group)

    def flush_tlb_kernel(self, flush_ns: int, *, cpu: int, atomic: bool = False) -> Generator[Any, Any, None]:
        ctx = KernelContext(self.kernel, cpu % self.kernel.cpus, atomic, self.name)
        return self._operation(ctx, self._cpu_tlb_flush(ctx, flush_ns))

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
        ctx = KernelContext(self.kernel, cpu % self.kernel.cpus, atomic, self.name)
        return self._operation(ctx, self._free_user_tables(ctx, count))

    def _free_user_tables(self, ctx: KernelContext, count: int) -> Generator[Any, Any, int]:
        k = self.kernel
        tables = [k.memory.alloc_table(ctx.cpu, 1, False, -1, self.name) for _ in range(count)]
        for pt in tables:
            k.unlink(pt, self.name, ctx.cpu)
            yield from k.pagetable_free(ctx, pt)
        return count
