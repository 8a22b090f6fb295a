"""SVA binding: which mm is bound on which IOMMU, and bind/unbind traffic on ``iommu_sva_lock``.

An SVA mm is bound only on the IOMMUs of the devices that bound it (``iommu_sva_bind_device()``
attaches the mm's SVA domain to that device's IOMMU); ``iommu_sva_invalidate_kva_range()`` walks
every bound mm and each mm's notifier invalidates the IOMMUs its domain is attached to. So the cost
of a kernel-range flush on one IOMMU follows the number of mms bound *there*.

Bind and unbind take ``iommu_sva_lock`` too (``iommu_sva_bind_device()`` /
``iommu_sva_unbind_device()``), so a worker busy flushing for many mms delays them: the traffic
here measures that wait.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from explorer.sim.metrics import LogHistogram
from explorer.sim.streams import exp_gap

if TYPE_CHECKING:
    from random import Random

    from explorer.sim.kernel import Kernel


def bound_counts(sva_mms: int, iommus: int, iommus_per_mm: int) -> list[int]:
    """How many of the ``sva_mms`` mms are bound on each IOMMU.

    mm ``i`` is bound on IOMMUs ``i, i+1, ..., i+iommus_per_mm-1`` (mod ``iommus``): the mms spread
    evenly. ``iommus_per_mm`` 0 (or >= ``iommus``) binds every mm on every IOMMU.
    """
    if iommus <= 0:
        return []
    if iommus_per_mm <= 0 or iommus_per_mm >= iommus:
        return [sva_mms] * iommus
    counts = [0] * iommus
    full, rest = divmod(sva_mms, iommus)
    # every window of iommus_per_mm consecutive IOMMUs starting at i % iommus, for each mm i
    for u in range(iommus):
        counts[u] = full * iommus_per_mm
    for i in range(rest):
        for j in range(iommus_per_mm):
            counts[(i + j) % iommus] += 1
    return counts


class BindTraffic:
    """SVA bind and unbind calls, alternating, at ``rate`` per second machine-wide.

    Each takes ``iommu_sva_lock`` and holds it for ``hold_ns`` (the bind/unbind work under the lock:
    attaching the domain, allocating the PASID, updating ``iommu_sva_mms``); the time each waited for
    the lock is recorded. The number of bound mms stays ``iommu.sva_mms`` (a bind and an unbind
    replace one another).
    """

    def __init__(self, kernel: Kernel, rate: float, hold_ns: int, rng: Random) -> None:
        self.kernel = kernel
        self.rate = rate
        self.hold_ns = hold_ns
        self.rng = rng
        self.calls = 0
        self.contended = 0
        self.wait = LogHistogram()
        self.next = 0
        self.in_call = 0

    def start(self, until: int) -> None:
        self.until = until
        self._arm()

    def _arm(self) -> None:
        k = self.kernel
        self.next += exp_gap(self.rng, self.rate)
        if self.next < self.until:
            k.engine.call_at(self.next, self._call)

    def _call(self, _: Any = None) -> None:
        self.kernel.engine.start(self._bind_or_unbind())
        self._arm()

    def _bind_or_unbind(self) -> Generator[Any, Any, None]:
        k = self.kernel
        mutex = k.sva_mutex
        self.in_call += 1
        t0 = k.engine.now
        if mutex.held:
            self.contended += 1
        while mutex.held:
            yield mutex
        mutex.held = True
        self.calls += 1
        self.wait.record(k.engine.now - t0)
        try:
            if self.hold_ns:
                yield self.hold_ns
        finally:
            mutex.unlock(k.engine)
            self.in_call -= 1

    def as_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "contended": self.contended, "wait_ns": self.wait.summary()}
