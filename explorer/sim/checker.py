"""The checker: the flush-before-free invariant at every free, every walk through a stale entry,
every double free, leak and sleep in atomic.

Two levels (docs/checker.md). The invariant, like lockdep, needs no bad luck: a kernel table freed
before every IOMMU that can walk the kernel half has completed an invalidation *started after its
unlink* is an ``unflushed_free``, decided at the free. The observed hazard, like KASAN, is what a
device actually did: a probe that hits a cached pointer to a table that is no longer linked is
classified by what the page is *now*: still queued (harmless), free in the allocator (a hazard),
or reused by someone else (use-after-free).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from explorer.sim.memory import FREE, STATE_NAMES, UNLINKED, PageTable
from explorer.sim.metrics import BySource
from explorer.violations import NAMES

if TYPE_CHECKING:
    from explorer.sim.iommu import IommuUnit
    from explorer.sim.kernel import Kernel

#: the kinds, from the one list every face reads (explorer.violations)
VIOLATIONS = NAMES

#: examples kept of the kinds that come by the hundred (beyond the first few they say nothing new)
FEW = 3


class Checker:
    def __init__(self, kernel: Kernel, max_examples: int = 20) -> None:
        self.kernel = kernel
        self.violations: dict[str, BySource] = {name: BySource() for name in VIOLATIONS}
        self.stale_walk_queued = BySource()
        #: unflushed frees by the context that freed the table (``caller``, ``kworker:WORK``, ...)
        self.unflushed_by_context = BySource()
        self.max_examples = max_examples
        self.examples: list[dict[str, Any]] = []
        self._kept = 0  # examples kept of the kinds other than unflushed_free (their own bound)

    def _example(self, kind: str, source: str, **detail: Any) -> None:
        """Keep the first examples and trace every violation (when tracing); the caller counts."""
        if self._kept < self.max_examples:
            self._kept += 1
            self.examples.append({"kind": kind, "time_ns": self.kernel.engine.now, "source": source, **detail})
        if self.kernel.tracer is not None:
            self.kernel.trace("violation", kind=kind, source=source, **detail)

    def unflushed_free(self, table: PageTable, by: str, uncovered: list[int], cpu: int = 0) -> None:
        """``table`` (a kernel table) is being freed while the IOMMUs ``uncovered`` have completed no
        invalidation that started after its unlink: they may still cache a pointer to it."""
        counter = self.violations["unflushed_free"]
        counter.add(table.source)
        self.unflushed_by_context.add(by)
        k = self.kernel
        if counter.total > FEW and k.tracer is None:
            return
        detail = {"by": by, "pfn": table.page, "slot": table.slot, "unlinked_at_ns": table.unlinked_at,
                  "freed_at_ns": k.engine.now, "uncovered": ",".join(map(str, uncovered))}
        if counter.total <= FEW:  # besides the other kinds' examples, not instead of them
            self.examples.append({"kind": "unflushed_free", "time_ns": k.engine.now, "source": table.source,
                                  **detail})
        if k.tracer is not None:
            k.trace("violation", cpu=cpu, kind="unflushed_free", source=table.source, **detail)

    def stale_walk(self, iommu: IommuUnit, mm: int, slot: int, entry: PageTable) -> None:
        mem = self.kernel.memory
        page = entry.page
        state = mem.state[page]
        if state == UNLINKED and mem.owner.get(page) is entry:
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
            reused_by=mem.allocated_by(page),
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
        out = {name: counter.as_dict() for name, counter in self.violations.items()}
        out["unflushed_free"]["by_context"] = dict(sorted(self.unflushed_by_context.by_source.items()))
        return out
