"""The IOMMU value types a model returns and is given, and the command-queue helpers models use.

:class:`CommandQueue` and :class:`FlushTally` model an IOMMU's command ring; they used to live in
``explorer.cmdqueue`` (which imported ``FlushCost`` back from ``explorer.api``: a cycle that this
module ends by holding both).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal


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


class FlushTally:
    """What one kernel-range flush on one IOMMU has cost so far, as a model's flush adds it up.

    ``t`` is the flushing CPU's time; ``effective`` when the cached entries are dropped (the
    invalidation command's completion). A model may subclass it to keep more of its own state.
    """

    def __init__(self, now: int) -> None:
        self.t = now
        self.effective = now
        self.commands: dict[str, int] = {}
        self.stalls = 0
        self.stall_ns = 0
        self.wait_ns = 0
        self.waits = 0  # synchronous completion waits (added to the queue's ``waits``)

    def count(self, kind: str, n: int = 1) -> None:
        """``n`` more commands of type ``kind``."""
        self.commands[kind] = self.commands.get(kind, 0) + n

    def stall(self, until: int) -> None:
        """The submitter waited for room in the queue until ``until`` (a queue-full stall)."""
        self.stalls += 1
        self.stall_ns += until - self.t
        self.t = until

    def wait(self, until: int) -> None:
        """The submitter waited for a completion until ``until``."""
        self.waits += 1
        self.wait_ns += until - self.t
        self.t = until

    def scale(self, n: int) -> None:
        """Every count times ``n`` (``n`` identical mms, see :meth:`CommandQueue.flush_each_mm`)."""
        self.stalls *= n
        self.stall_ns *= n
        self.wait_ns *= n
        self.waits *= n
        self.commands = {k: c * n for k, c in self.commands.items()}

    def cost(self, now: int, scope: Literal["pasid", "kernel"]) -> FlushCost:
        """The :class:`FlushCost` of the flush that started at ``now``."""
        return FlushCost(duration_ns=self.t - now, effective_ns=self.effective - now, commands=self.commands,
                         stall_ns=self.stall_ns, stalls=self.stalls, wait_ns=self.wait_ns, scope=scope)


class CommandQueue:
    """One IOMMU's command ring over simulated time.

    ``done`` holds the completion time of every command still in the ring (ascending, since
    execution is in order); an entry is free again once its command has executed. Other
    submitters of the same IOMMU (DMA unmaps, other domains) are modelled as ``bg_burst``
    commands of ``bg_exec`` ns each, every ``bg_period`` ns (0 turns them off).
    """

    def __init__(self, entries: int, bg_burst: int = 0, bg_period: int = 0, bg_exec: int = 0) -> None:
        self.entries = entries
        self.done: deque[int] = deque()
        self.hw_free = 0  # when the hardware will have executed everything queued so far
        self.peak = 0
        self.bg_burst = bg_burst
        self.bg_period = bg_period
        self.bg_exec = bg_exec
        self.bg_next = bg_period if bg_burst and bg_period else -1
        self.bg_commands = 0
        #: Synchronous completion waits (VT-d wait descriptors, AMD COMPLETION_WAIT, SMMU CMD_SYNC).
        self.waits = 0

    def retire(self, t: int) -> None:
        """Free the entries of every command executed by ``t``."""
        d = self.done
        while d and d[0] <= t:
            d.popleft()

    def room(self, t: int, need: int) -> int:
        """The earliest time >= ``t`` at which ``need`` entries are free (> ``t`` means a stall)."""
        self.retire(t)
        excess = len(self.done) + min(need, self.entries) - self.entries
        if excess <= 0:
            return t
        t = self.done[excess - 1]
        self.retire(t)
        return t

    def push(self, t: int, exec_ns: int) -> int:
        """Queue one command made visible to the hardware at ``t``; return its completion time."""
        done = max(t, self.hw_free) + exec_ns
        self.hw_free = done
        self.done.append(done)
        if len(self.done) > self.peak:
            self.peak = len(self.done)
        return done

    def catch_up(self, t: int) -> None:
        """Queue the other submitters' bursts that arrived up to ``t``."""
        if self.bg_next < 0:
            return
        burst, period, ex = self.bg_burst, self.bg_period, self.bg_exec
        while self.bg_next <= t:
            at = self.bg_next
            if self.hw_free <= at and burst * ex <= period and burst <= self.entries:
                # Each burst drains before the next: only the last one up to t leaves a trace.
                skip = (t - at) // period
                self.bg_commands += skip * burst
                at += skip * period
                self.done.clear()
            self.bg_next = at + period
            for _ in range(burst):
                at = self.room(at, 1)  # the other submitter waits for room too
                self.push(at, ex)
            self.bg_commands += burst

    def flush_each_mm(self, tally: FlushTally, mms: int, flush_mm: Callable[[FlushTally], None]) -> FlushTally:
        """Run ``flush_mm(tally)`` once for each of ``mms`` SVA-bound mms, in order, as the kernel's
        fan-out over ``iommu_sva_mms`` does; return ``tally`` (which started at the flush's time).

        When nothing else uses the queue and the hardware is idle, each mm ends with the hardware
        idle again (its last completion wait is the last command queued), so every mm costs
        exactly what the first does: one is run and the rest are added up at once (a large-sva
        flush over hundreds of mms would otherwise be hundreds of identical loops).
        """
        now = tally.t
        if mms > 1 and self.bg_next < 0 and self.hw_free <= now:
            flush_mm(tally)
            per_mm = tally.t - now
            tally.scale(mms)
            self.hw_free += (mms - 1) * per_mm
            self.retire(self.hw_free)
            tally.t, tally.effective = now + mms * per_mm, tally.effective + (mms - 1) * per_mm
        else:
            for _mm in range(mms):
                flush_mm(tally)
        self.waits += tally.waits
        return tally
