"""What a plugin is handed: the kernel facade a strategy calls and the services a workload uses.

They are Protocols: the simulator implements them (``explorer.sim``); plugins only call them.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Sequence
from typing import Any, Protocol

#: What a simulated process may yield: a number of nanoseconds to spend (busy on the CPU it runs
#: on), or a :class:`Waitable` to block on (which is a sleep, and a violation in atomic context).
Step = Generator[Any, Any, Any]


class Waitable(Protocol):
    """Something a process can block on by yielding it (a mutex, a completion)."""

    def add_waiter(self, wake: Callable[[], None]) -> None: ...


class Table(Protocol):
    """A page-table page as a strategy sees it (read-only; pass it back to the kernel)."""

    @property
    def page(self) -> int:
        """Page frame number."""

    @property
    def level(self) -> int:
        """1 = PTE table, 2 = PMD table, 3 = PUD table."""

    @property
    def kernel(self) -> bool:
        """Whether the table maps kernel addresses (ptdesc_test_kernel at allocation)."""

    @property
    def source(self) -> str:
        """Name of the workload source that unlinked it."""

    @property
    def unlinked_at(self) -> int:
        """Simulated time (ns) at which its parent entry was cleared."""


class SpinLock(Protocol):
    """A spinlock; holding it makes the context atomic (see :meth:`KernelServices.spin_lock`)."""

    name: str


class WorkItem(Protocol):
    """A ``struct work_struct`` on the system workqueue."""

    name: str

    @property
    def state(self) -> str:
        """``idle``, ``pending``, ``running`` or ``running+pending``."""


class Timer(Protocol):
    """An armed one-shot timer."""

    def cancel(self) -> bool:
        """Cancel the timer; return whether it was still armed."""

    @property
    def armed(self) -> bool: ...


class KernelServices(Protocol):
    """The kernel facade given to a strategy: one CPU, in one context, at one instant.

    A strategy's methods that need simulated time to pass are generators: ``yield ns`` spends
    ``ns`` nanoseconds of CPU time, ``yield from k.iommu_sva_invalidate_kva_range()`` performs
    the IOMMU flush. Anything that may sleep, called while :attr:`in_atomic` is true, is recorded
    as a ``sleep_in_atomic`` violation against :attr:`source` (and then carries on, as the real
    kernel does after printing the warning).
    """

    @property
    def now(self) -> int:
        """Current simulated time in nanoseconds."""

    @property
    def cpu(self) -> int:
        """The CPU this code runs on."""

    @property
    def source(self) -> str:
        """The workload source on whose behalf this code runs (``kworker`` for work items)."""

    @property
    def in_atomic(self) -> bool:
        """True under a spinlock, in a timer callback, or when the caller was atomic."""

    def spinlock(self, name: str) -> SpinLock:
        """Create a spinlock (do this once, in :meth:`FreeStrategy.setup`)."""

    def spin_lock(self, lock: SpinLock) -> Any:
        """Context manager: hold ``lock``; the context is atomic inside the block."""

    def work(self, name: str, func: Callable[[KernelServices], Step | None], oneshot: bool = False) -> WorkItem:
        """Create a work item whose function runs in a kworker (sleepable) context. A ``oneshot``
        item is freed once it has run (an item ``kzalloc()``'d per use, as in the v3 design): the
        kernel forgets it, keeping only its run count."""

    def schedule_work(self, work: WorkItem) -> bool:
        """``schedule_work()``: False (no-op) if already pending. An idle item is queued on this
        CPU; a running one runs once more on its CPU straight after the current run."""

    def start_timer(self, delay_ns: int, func: Callable[[KernelServices], None]) -> Timer:
        """Arm a one-shot timer; ``func`` runs in atomic (softirq) context after ``delay_ns``."""

    def iommu_sva_invalidate_kva_range(self) -> Step:
        """Invalidate the kernel range in every IOMMU for every SVA-bound mm (takes a mutex).

        Use as ``yield from k.iommu_sva_invalidate_kva_range()``. Returns at once when no mm is
        bound (``iommu_sva_present()`` is false).
        """

    def free_now(self, pt: Table) -> None:
        """``__pagetable_free()``: hand the page straight back to this CPU's free list."""

    def free_each(self, pts: Iterable[Table]) -> Step:
        """``__pagetable_free()`` of each table in order, spending ``kernel.free_page_ns`` on each:
        a page reaches the allocator when its own free ends, as in the kernel's list walk. Use as
        ``yield from k.free_each(tables)``."""

    def might_sleep(self) -> None:
        """Record a sleep-in-atomic violation if the context is atomic."""


class WorkloadServices(Protocol):
    """What a workload source may do: pick CPUs, draw times, unlink and free tables."""

    @property
    def now(self) -> int: ...

    @property
    def cpus(self) -> int:
        """Number of CPUs in the simulated machine."""

    @property
    def rng(self) -> Any:
        """This source's own ``random.Random``: draws never depend on other sources or plugins."""

    def interarrival(self, rate_per_s: float) -> int:
        """An exponentially distributed gap in ns for a Poisson stream of ``rate_per_s``."""

    def pick_cpu(self, spec: str) -> int:
        """A CPU from a spec: ``all`` (any CPU), ``N`` (CPU N) or ``A-B`` (a range)."""

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
    ) -> Step:
        """Unlink ``count`` linked kernel tables and free each.

        For each table: clear the parent entry, spend ``cpu_flush_ns`` (the CPU TLB flush that
        precedes the free), then call ``pagetable_free`` (or, with ``via_pagetable_free=False``,
        hand the page straight to the allocator as bootmem pages do). ``marked=False`` models
        tables allocated without ``ptdesc_set_kernel``. ``after_flush_ns`` is spent once after
        the whole group (the ``flush_tlb_all()`` at the end of ``remove_pagetable()``). ``unlink=False`` models a
        kernel bug that frees a table its parent still points to (``freed_while_linked``).
        ``unmarked`` is the share of the tables that lack the kernel mark (drawn per table from
        the source's ``rng``; none drawn for 0 or 1).
        ``slot`` picks the tables instead of chance: those of slots ``slot`` .. ``slot + count - 1``
        (a slot without a table is skipped and counted as ``starved``), for scripted workloads.
        Yields; use ``yield from``; returns the number of tables freed.
        """

    def free_kernel_group(
        self,
        levels: Sequence[int],
        *,
        cpu: int,
        atomic: bool = False,
        flush_ns: int = 0,
        unmarked: float = 0.0,
    ) -> Step:
        """Unlink one linked kernel table of each level in ``levels``, spend ``flush_ns`` once (the
        CPU TLB flush that follows: ``flush_tlb_kernel_range()`` in ``pud_free_pmd_page()``,
        ``flush_tlb_all()`` in a CPA collapse), then ``pagetable_free`` each table in order.
        ``unmarked`` as in :meth:`free_kernel_tables`. Returns the number of tables freed.
        """

    def flush_tlb_kernel(self, flush_ns: int, *, cpu: int, atomic: bool = False) -> Step:
        """A ``flush_tlb_kernel_range()`` with no table freed (vmalloc's lazy purge, ``set_memory_*``):
        spend ``flush_ns`` on ``cpu``; the strategy's ``flush_tlb_kernel()`` hook runs after it."""

    def free_user_tables(self, count: int, *, cpu: int, atomic: bool) -> Step:
        """Allocate ``count`` user page tables, then tear them down through ``pagetable_free``."""

    # -- for scripted workloads (the ``script`` source): exact events instead of chance ----------

    @property
    def kernel_slots(self) -> int:
        """Number of kernel address-space slots (``kernel.kernel_slots``); slot ``s`` is mapped
        through a PMD table (level 2) when ``s % 32 == 31``, else through a PTE table."""

    @property
    def iommus(self) -> int:
        """Number of IOMMUs with devices (0 when no SVA mm is bound: probes then do nothing)."""

    def linked_slots(self, level: int = 0) -> list[int]:
        """The slots that have a linked table now (of ``level``, or any), in increasing order."""

    def spawn(self, step: Step) -> None:
        """Run ``step`` (e.g. ``w.free_kernel_tables(...)``) as a process of its own, starting now,
        alongside this source's process: a second CPU doing work at the same time."""

    def device_probe(self, iommu: int, slot: int, mm: int = 0) -> str:
        """A device behind IOMMU ``iommu`` walks kernel slot ``slot`` now, tagged with the PASID of
        SVA-bound mm ``mm``: on a cache miss it caches a pointer to the slot's table (if any); on a
        hit it follows the cached pointer, which the checker classifies. Returns ``hit``, ``miss``
        or ``none`` (no such IOMMU or mm bound, or the IOMMU cannot walk the kernel half)."""

    def alloc_pages(self, cpu: int, count: int = 1) -> list[int]:
        """The rest of the kernel allocates ``count`` data pages on ``cpu`` now (from that CPU's
        free list first, newest first: what reuses a page freed there). Returns the page numbers."""
