"""A model of an IOMMU's command/invalidation queue, for IOMMU model plugins.

VT-d's invalidation queue, AMD-Vi's command buffer and SMMUv3's command queue are all FIFO rings
that the hardware executes in order. Plugins use :class:`CommandQueue` (exported by
``explorer.api``) to find out when a command they submit at time ``t`` completes and how long a
full ring stalls the submitter.
"""

from __future__ import annotations

from collections import deque


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
