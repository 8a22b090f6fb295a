"""The checker: every walk through a stale entry, every double free, leak and sleep in atomic.

Verdicts come out of the mechanism: a probe that hits a cached pointer to a table that is no
longer linked is classified by what the page is *now*: still queued (harmless), free in the
allocator (a hazard), or reused by someone else (use-after-free).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from explorer.sim.memory import FREE, STATE_NAMES, UNLINKED, PageTable
from explorer.sim.metrics import BySource

if TYPE_CHECKING:
    from explorer.sim.iommu import IommuUnit
    from explorer.sim.kernel import Kernel

VIOLATIONS = ("use_after_free", "stale_walk_free", "double_free", "freed_while_linked", "leaked", "sleep_in_atomic")


class Checker:
    def __init__(self, kernel: Kernel, max_examples: int = 20) -> None:
        self.kernel = kernel
        self.violations: dict[str, BySource] = {name: BySource() for name in VIOLATIONS}
        self.stale_walk_queued = BySource()
        self.max_examples = max_examples
        self.examples: list[dict[str, Any]] = []

    def _example(self, kind: str, source: str, **detail: Any) -> None:
        """Keep the first examples and trace every violation (when tracing); the caller counts."""
        if len(self.examples) < self.max_examples:
            self.examples.append({"kind": kind, "time_ns": self.kernel.engine.now, "source": source, **detail})
        if self.kernel.tracer is not None:
            self.kernel.trace("violation", kind=kind, source=source, **detail)

    def stale_walk(self, iommu: IommuUnit, mm: int, slot: int, entry: PageTable) -> None:
        mem = self.kernel.memory
        page = entry.page
        state = mem.state[page]
        if state == UNLINKED and mem.owner[page] is entry:
            self.stale_walk_queued.add(entry.source)
            if self.kernel.tracer is not None:  # harmless, but every stale walk is in the trace
                self.kernel.trace("stale_walk", verdict="queued", source=entry.source, iommu=iommu.index,
                                  pasid_mm=mm, slot=slot, pfn=page, unlinked_at_ns=entry.unlinked_at)
            return
        if state == FREE:
            self.violations["stale_walk_free"].add(entry.source)
            if self.kernel.tracer is not None:  # counted, not kept as an example: they come by the hundred
                self.kernel.trace("violation", kind="stale_walk_free", source=entry.source, iommu=iommu.index,
                                  pasid_mm=mm, slot=slot, pfn=page, unlinked_at_ns=entry.unlinked_at)
            return
        self.violations["use_after_free"].add(entry.source)
        self._example(
            "use_after_free",
            entry.source,
            iommu=iommu.index,
            pasid_mm=mm,
            slot=slot,
            pfn=page,
            page_state=STATE_NAMES[state],
            reused_by=mem.allocated_by[page],
            unlinked_at_ns=entry.unlinked_at,
        )

    def double_free(self, table: PageTable, by: str) -> None:
        self.violations["double_free"].add(table.source or by)
        self._example("double_free", table.source or by, pfn=table.page, slot=table.slot)

    def freed_while_linked(self, table: PageTable, by: str) -> None:
        self.violations["freed_while_linked"].add(table.source or by)
        self._example("freed_while_linked", table.source or by, pfn=table.page, slot=table.slot)

    def sleep_in_atomic(self, source: str, cpu: int, what: str) -> None:
        self.violations["sleep_in_atomic"].add(source)
        if self.violations["sleep_in_atomic"].total <= 3:  # they repeat: three examples say it
            self._example("sleep_in_atomic", source, cpu=cpu, what=what)
        elif self.kernel.tracer is not None:
            self.kernel.trace("violation", kind="sleep_in_atomic", source=source, cpu=cpu, what=what)

    def leaked(self, table: PageTable) -> None:
        self.violations["leaked"].add(table.source)
        self._example("leaked", table.source, pfn=table.page, slot=table.slot, unlinked_at_ns=table.unlinked_at)

    def as_dict(self) -> dict[str, Any]:
        return {name: counter.as_dict() for name, counter in self.violations.items()}
