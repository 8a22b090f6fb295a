"""The stable surface that plugins are written against.

A plugin module implements one or more of the hooks in :mod:`explorer.hookspecs` and calls the
``register`` callback it is given with the classes (or, for scenarios, the :class:`Scenario`
objects) it offers::

    from explorer.api import FreeStrategy, Param, hookimpl

    class MyStrategy(FreeStrategy):
        name = "mine"
        version = "0.1"
        help = "Free at once; a screenful of code."
        params = (Param("cost", "duration", "1us", help="CPU time per free (assumed)"),)

        def pagetable_free_kernel(self, k, pt):
            yield self.values["cost"]   # consume CPU time on the caller's CPU
            k.free_now(pt)

    @hookimpl
    def register_strategies(register):
        register(MyStrategy)

Everything a plugin needs is importable from here; first-party plugins use nothing else.
Times are integer nanoseconds, rates are events per second.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

import pluggy

from explorer.cmdqueue import CommandQueue, FlushTally
from explorer.units import (
    UnitError,
    format_duration,
    format_rate,
    parse_duration,
    parse_rate,
)

__all__ = [
    "CacheLevel",
    "CommandQueue",
    "FlushBatch",
    "FlushCost",
    "FlushTally",
    "FreeStrategy",
    "IommuModel",
    "KernelServices",
    "Param",
    "ParamError",
    "Scenario",
    "SharedCache",
    "SpinLock",
    "Step",
    "SvaTopology",
    "Table",
    "Timer",
    "Waitable",
    "WorkItem",
    "WorkloadServices",
    "WorkloadSource",
    "format_duration",
    "hookimpl",
    "iter_params",
    "parse_duration",
    "workload_params",
]

PROJECT = "pgtable_explorer"
hookimpl = pluggy.HookimplMarker(PROJECT)
"""Decorator for plugin hook implementations."""

ParamType = Literal["int", "float", "bool", "str", "choice", "duration", "rate"]

#: What a simulated process may yield: a number of nanoseconds to spend (busy on the CPU it runs
#: on), or a :class:`Waitable` to block on (which is a sleep, and a violation in atomic context).
Step = Generator[Any, Any, Any]


class ParamError(ValueError):
    """A parameter value that is of the wrong type or out of range."""


@dataclass(frozen=True)
class Param:
    """One declared parameter of a plugin or of the kernel model.

    The same declaration drives config validation, the TUI's forms, ``--help``, the docs and the
    JSON Schema. ``default`` is written the way a user would write it in TOML (``"20us"``).
    ``min``/``max`` are in canonical units (nanoseconds, events per second).
    """

    name: str
    type: ParamType
    default: Any
    help: str = ""
    unit: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    #: An optional further check of the converted value (a ``str`` holding a script, say): returns
    #: the value to keep, or raises :class:`ParamError` saying what is wrong and what is valid.
    check: Callable[[Any], Any] | None = field(default=None, compare=False, repr=False)

    def parse(self, value: Any) -> Any:
        """Return ``value`` in canonical form, or raise :class:`ParamError` saying why not."""
        try:
            out = self._convert(value)
        except UnitError as exc:
            raise ParamError(str(exc)) from None
        if self.check is not None:
            out = self.check(out)
        if self.type in ("float", "rate") and not math.isfinite(out):
            raise ParamError(f"expected a finite value, got {value!r}")
        if self.type in ("int", "float", "duration", "rate"):
            if self.min is not None and out < self.min:
                raise ParamError(f"{self.show(out)} is below the minimum {self.show(self.min)}")
            if self.max is not None and out > self.max:
                raise ParamError(f"{self.show(out)} is above the maximum {self.show(self.max)}")
        return out

    def _convert(self, value: Any) -> Any:
        t = self.type
        if t == "bool":
            if isinstance(value, bool):
                return value
            words = {"y": True, "yes": True, "true": True, "on": True, "1": True}
            words |= {"n": False, "no": False, "false": False, "off": False, "0": False}
            if isinstance(value, str) and value.lower() in words:
                return words[value.lower()]
            raise ParamError(f"expected true or false, got {value!r}")
        if t == "int":
            if isinstance(value, bool):
                raise ParamError(f"expected an integer, got {value!r}")
            if isinstance(value, int):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, str):
                try:
                    return int(value.replace("_", ""))
                except ValueError:
                    pass
            raise ParamError(f"expected an integer, got {value!r}")
        if t == "float":
            if isinstance(value, bool):
                raise ParamError(f"expected a number, got {value!r}")
            if isinstance(value, (int, float)):
                if not math.isfinite(value):
                    raise ParamError(f"expected a finite number, got {value!r}")
                return float(value)
            if isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    pass
            raise ParamError(f"expected a number, got {value!r}")
        if t == "str":
            if isinstance(value, str):
                return value
            raise ParamError(f"expected a string, got {value!r}")
        if t == "choice":
            if isinstance(value, str) and value in self.choices:
                return value
            raise ParamError(f"expected one of {', '.join(self.choices)}; got {value!r}")
        if t == "duration":
            return parse_duration(value)
        if t == "rate":
            return parse_rate(value)
        raise ParamError(f"unknown parameter type {t!r}")  # pragma: no cover - declaration bug

    def canonical_default(self) -> Any:
        """The default in canonical form (nanoseconds, per second, ...)."""
        return self.parse(self.default)

    def to_toml(self, value: Any) -> Any:
        """The canonical ``value`` as it is written to a TOML file (parses back identically)."""
        if self.type == "duration":
            return format_duration(int(value))
        if self.type == "rate":
            return format_rate(float(value))
        return value

    def show(self, value: Any) -> str:
        """A canonical value as a user reads it."""
        if self.type in ("duration", "rate"):
            return str(self.to_toml(value))
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float) and value.is_integer() and self.type != "float":
            return str(int(value))
        return str(value)

    def describe_type(self) -> str:
        """The type as shown in help: ``duration``, ``choice (uniform|adversarial)`` ..."""
        if self.type == "choice":
            return f"choice ({'|'.join(self.choices)})"
        return self.type


# --------------------------------------------------------------------------- kernel objects


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


# --------------------------------------------------------------------------- plugin base classes


class _Declared:
    """Common declaration attributes of every registered plugin class."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = "0"
    help: ClassVar[str] = ""
    #: The declared parameters: a tuple of :class:`Param` on the class. (On an instance, for
    #: plugins written before 1.1, ``self.params`` is the same mapping as :attr:`values`.)
    params: Any = ()
    #: On an instance: the validated parameter values in canonical units, keyed by parameter name
    #: (``self.values["batch"]``). Since 1.1.
    values: dict[str, Any]

    @classmethod
    def check_values(cls, values: Mapping[str, Any]) -> str | Mapping[str, str] | None:
        """Check the parameter values together (each is already valid on its own): return None
        when they fit, else why not, as one message or a message per parameter name.

        ``config validate``, ``run``, ``compare``, ``sweep`` and the TUI's editor call it, so a bad
        combination is a config error naming the keys (exit status 2), not a crash when the run
        builds the plugin. Since 1.1.
        """
        return None

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.values = dict(params)
        # Compatibility: before 1.1 the values were only in ``self.params`` (shadowing the
        # declarations on the instance); the same dict, so old and new code see one set of values.
        self.params = self.values


class FreeStrategy(_Declared):
    """A free strategy: the kernel's ``pagetable_free_kernel()``.

    Called for every table whose kernel mark was set, when ``CONFIG_ASYNC_KERNEL_PGTABLE_FREE``
    is on. User tables and, with the option off, kernel tables never reach a strategy.
    """

    def setup(self, k: KernelServices) -> None:
        """Create locks, work items and lists; called once before the run starts."""

    def pagetable_free_kernel(self, k: KernelServices, pt: Table) -> Step | None:
        """Take responsibility for freeing ``pt``; may be a generator to spend time."""
        raise NotImplementedError

    def flush_tlb_kernel(self, k: KernelServices) -> Step | None:
        """Optional: called in the caller's context each time a workload's ``flush_tlb_kernel_range()``
        or ``flush_tlb_all()`` has flushed the CPU TLBs, whether or not a table is freed (the v3
        design hooked the IOMMU flush there). Not overriding it costs nothing."""
        return None


@dataclass(frozen=True)
class CacheLevel:
    """Geometry of one level of an IOMMU paging-structure cache.

    ``level`` is the level of the table an entry points to (1 = entries pointing at PTE
    tables). ``ways`` = 0 means fully associative.
    """

    level: int
    entries: int
    ways: int = 0


@dataclass(frozen=True)
class SharedCache:
    """One paging-structure cache whose capacity the table ``levels`` share (LRU across them).

    Return it from :meth:`IommuModel.cache_geometry` instead of one :class:`CacheLevel` per level
    when a vendor describes one pool of entries for several levels. Since 1.1.
    """

    levels: tuple[int, ...]
    entries: int
    ways: int = 0


@dataclass(frozen=True)
class FlushBatch:
    """The kernel page tables one flush covers, given to :meth:`IommuModel.invalidate_kernel_range`
    when it declares a ``batch`` parameter (since 1.1): what "cost per queued entry" is written with.

    ``tables`` is how many unlinked kernel tables were waiting to be freed when the flush started
    (every one of them is safe to free once it completes), ``levels`` the same by table level
    (1 = PTE tables), and ``new`` how many of them were unlinked since the previous flush started
    (the ones no earlier flush covered).
    """

    tables: int = 0
    levels: Mapping[int, int] = field(default_factory=dict)
    new: int = 0


@dataclass
class FlushCost:
    """What one kernel-range invalidation on one IOMMU costs and when it takes effect.

    ``duration_ns`` is the time the flushing CPU spends (submission, stalls, execution and the
    completion wait). ``effective_ns`` is the offset into that time at which the cached entries
    are dropped. ``commands`` counts the commands issued by type. ``scope`` is ``pasid`` when the
    whole PASID is dropped (user entries too) or ``kernel`` when only kernel-range entries are.
    """

    duration_ns: int
    effective_ns: int
    commands: dict[str, int] = field(default_factory=dict)
    stall_ns: int = 0
    stalls: int = 0
    wait_ns: int = 0
    scope: Literal["pasid", "kernel"] = "pasid"


@dataclass(frozen=True)
class SvaTopology:
    """The SVA binding the IOMMU core hands to a model for one invalidation.

    ``sva_mms`` is the number of mms bound on *this* IOMMU (``iommu.iommus_per_mm`` spreads the
    mms over the IOMMUs); ``iommus`` is how many IOMMUs the machine has, ``iommu_index`` which one
    this call is for.
    """

    sva_mms: int
    pasids_per_mm: int
    iommus: int
    iommu_index: int


class IommuModel(_Declared):
    """The vendor part of an IOMMU: cache geometry and the cost of invalidations.

    The shared IOMMU core (in the simulator) holds the caches and the device traffic; a model
    only says how big the caches are and what an invalidation costs and does.
    """

    #: Whether SVA walks through this IOMMU can reach the kernel half of the page tables.
    #: ``None`` follows the architecture (x86_64: yes, arm64: no, EPD1 set).
    walks_kernel_half: ClassVar[bool | None] = None
    #: ``False`` for the model of "no IOMMU bound": no devices, no SVA mm.
    present: ClassVar[bool] = True

    def cache_geometry(self) -> Sequence[CacheLevel | SharedCache]:
        """The paging-structure cache geometry of each IOMMU: a :class:`CacheLevel` per level, or
        a :class:`SharedCache` for levels that share one capacity."""
        return (CacheLevel(1, 64), CacheLevel(2, 16))

    def invalidate_kernel_range(self, now: int, topo: SvaTopology, batch: FlushBatch | None = None) -> FlushCost:
        """Cost and effect of ``iommu_sva_invalidate_kva_range`` on one IOMMU at ``now``.

        A model that declares the ``batch`` parameter is given the :class:`FlushBatch` of the
        flush; one written as ``invalidate_kernel_range(self, now, topo)`` is called that way.
        """
        raise NotImplementedError

    def metrics(self) -> dict[str, Any]:
        """Model-specific counters for the run output (commands by type, stalls, ...)."""
        return {}


class WorkloadSource(_Declared):
    """A source of page-table frees (vmalloc, CPA, hot-remove, user teardown, ...).

    Every source declares at least ``rate``, ``burst`` and ``cpus``; the simulator stops
    calling into it when the run's duration is reached.
    """

    def process(self, w: WorkloadServices) -> Step:
        """The source's process: loop forever, yielding gaps and ``yield from w.free_*``."""
        raise NotImplementedError

    @classmethod
    def check_machine(cls, params: Mapping[str, Any], machine: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Problems of validated ``params`` on this machine, as ``(parameter, message)`` pairs.

        Called when a config is validated, so a mistake is a config error (exit status 2), not a
        failed run. ``machine`` holds ``cpus``, ``kernel_slots``, ``iommus`` and ``probe_mms``.
        Most sources need nothing here.
        """
        return []


@dataclass(frozen=True)
class Scenario:
    """A named preset configuration.

    ``config`` is a partial config (the same nested tables as a TOML file) laid over the
    defaults. ``expected`` says in a sentence what a user should see when running it, and
    ``expect`` states it so tests and ``run`` can check it: a mapping of a metric path
    (``violations.use_after_free``) to ``"zero"``, ``"nonzero"`` or a comparison with another
    metric (``"> flushes"``, ``">= kernel_tables_unlinked"``; ``< <= > >= ==``), and optionally
    ``only_source`` naming the one source violations may come from.
    """

    name: str
    description: str
    config: Mapping[str, Any]
    expected: str = ""
    expect: Mapping[str, str] = field(default_factory=dict)
    only_source: str | None = None
    version: str = "0"


def workload_params(
    rate: str,
    burst: int = 1,
    cpus: str = "all",
    extra: Sequence[Param] = (),
) -> tuple[Param, ...]:
    """The parameters every workload source declares, with its own defaults, plus ``extra``."""
    return (
        Param("rate", "rate", rate, help="Mean rate of free events (Poisson).", unit="/s", min=0.0, max=1e8),
        Param("burst", "int", burst, help="Tables unlinked and freed per event.", unit="tables", min=1, max=1_000_000),
        Param("cpus", "str", cpus, help="CPUs the events run on: 'all', 'N' or 'A-B'."),
        *extra,
    )


def iter_params(obj: type[_Declared] | _Declared) -> Iterator[Param]:
    """The parameters a plugin class declares, in declaration order."""
    yield from (type(obj) if isinstance(obj, _Declared) else obj).params
