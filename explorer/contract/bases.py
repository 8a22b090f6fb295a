"""The classes plugins subclass (strategies, IOMMU models, workload sources) and :class:`Scenario`.

They stay here, interpreted, even when ``explorer.sim`` is compiled: an interpreted class cannot
subclass a compiled one (docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from explorer.contract.iommu import CacheLevel, FlushBatch, FlushCost, SharedCache, SvaTopology
from explorer.contract.params import Param
from explorer.contract.services import KernelServices, Step, Table, WorkloadServices


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
