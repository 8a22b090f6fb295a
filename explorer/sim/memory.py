"""Pages, page tables and the page allocator with per-CPU LIFO free lists.

The most recently freed page on a CPU is the next one that CPU hands out, as with the kernel's
per-CPU page lists: a wrongly freed table is reused quickly, which is what makes a stale IOMMU
entry dangerous.
"""

from __future__ import annotations

import random
from collections import deque
from math import log as _log
from typing import Any

# Page states.
FREE = 0
TABLE = 1  # in use as a page table (linked or about to be)
UNLINKED = 2  # table unlinked from its parent, not yet given back to the allocator
DATA = 3  # reused (or in use) for someone else's data

STATE_NAMES = ("free", "table", "unlinked", "data")


class PageTable:
    """A page-table page: the kernel's ``struct ptdesc`` with the facts the checker needs."""

    __slots__ = ("cpu", "freed", "kernel", "level", "linked", "marked", "page", "slot", "source", "unlinked_at")

    def __init__(self, page: int, level: int, kernel: bool, slot: int) -> None:
        self.page = page
        self.level = level
        self.kernel = kernel  # maps kernel addresses: reachable from every SVA-bound mm on x86
        self.marked = kernel  # ptdesc_set_kernel() at allocation
        self.slot = slot
        self.linked = True
        self.freed = False
        self.source = ""
        self.unlinked_at = -1
        self.cpu = 0

    def __repr__(self) -> str:
        kind = "kernel" if self.kernel else "user"
        return f"<{kind} L{self.level} table pfn={self.page} slot={self.slot}>"


class OutOfMemory(RuntimeError):
    pass


class Memory:
    """All pages of the machine, their states and the free lists."""

    def __init__(self, pages: int, cpus: int) -> None:
        self.pages = pages
        self.cpus = cpus
        self.state = bytearray(pages)  # all FREE
        #: the table a page currently backs (or last backed, while unlinked); None for data/free
        self.owner: list[PageTable | None] = [None] * pages
        #: who last allocated the page: "data" / a table's source; for use-after-free reports
        self.allocated_by: list[str] = [""] * pages
        self.free_lists: list[list[int]] = [[] for _ in range(cpus)]
        # Pages not on a per-CPU list: the zone's free area (refills empty per-CPU lists).
        self.zone: list[int] = list(range(pages - 1, -1, -1))
        self.data_pages: deque[int] = deque()
        self.free_count = pages

    def alloc(self, cpu: int) -> int:
        """Take a page on ``cpu``: its own list first (LIFO), then the zone, then other CPUs."""
        fl = self.free_lists[cpu]
        if fl:
            page = fl.pop()
        elif self.zone:
            page = self.zone.pop()
        else:
            donor = max(self.free_lists, key=len)
            if not donor:
                raise OutOfMemory("no free page left in the simulated machine")
            page = donor.pop()
        self.free_count -= 1
        return page

    def alloc_data(self, cpu: int) -> int:
        page = self.alloc(cpu)
        self.state[page] = DATA
        self.owner[page] = None
        self.allocated_by[page] = "data"
        self.data_pages.append(page)
        return page

    def free_oldest_data(self, cpu: int) -> None:
        if self.data_pages:
            self.free(self.data_pages.popleft(), cpu)

    def free(self, page: int, cpu: int) -> None:
        self.state[page] = FREE
        self.owner[page] = None
        self.free_lists[cpu].append(page)
        self.free_count += 1

    def alloc_table(self, cpu: int, level: int, kernel: bool, slot: int, source: str) -> PageTable:
        page = self.alloc(cpu)
        table = PageTable(page, level, kernel, slot)
        self.state[page] = TABLE
        self.owner[page] = table
        self.allocated_by[page] = source
        return table

    def check(self) -> list[str]:
        """Consistency of the allocator: every free page on exactly one list, states agree."""
        problems = []
        listed = [p for fl in self.free_lists for p in fl] + self.zone
        if len(listed) != len(set(listed)):
            problems.append("a page is on two free lists (double free reached the allocator)")
        if len(listed) != self.free_count:
            problems.append(f"free count {self.free_count} != pages on free lists {len(listed)}")
        for p in listed:
            if self.state[p] != FREE:
                problems.append(f"page {p} on a free list in state {STATE_NAMES[self.state[p]]}")
                break
        if self.state.count(FREE) != len(listed):
            problems.append("a page in state free is on no free list (leaked by the allocator)")
        return problems


class BackgroundTraffic:
    """The rest of the kernel allocating and freeing data pages: what reuses a freed table.

    Two Poisson streams at the same rate, one allocating a page on a random CPU and one freeing
    the oldest data page to a random CPU's list, drawing (CPU, then the gap to its next event)
    from one random stream in the order the events happen. They are an engine *lane*
    (:class:`explorer.sim.engine.Lane`): hundreds of thousands of events per simulated second run
    in one tight loop instead of through the heap, in exactly the order the heap would have given
    them, so a run's results are the same bit for bit. ``alloc`` and ``free`` below are
    :meth:`Memory.alloc_data` and :meth:`Memory.free_oldest_data` inlined; keep them in step.
    """

    __slots__ = ("_ca", "_cf", "_k", "_ka", "_kf", "_ta", "_tf", "cpus", "engine", "memory", "next_t", "rate", "rng")

    def __init__(self, memory: Memory, engine: Any, rng: random.Random, rate: float, cpus: int) -> None:
        self.memory = memory
        self.engine = engine
        self.rng = rng
        self.rate = rate
        self.cpus = cpus
        now = engine.now
        c = engine._seq
        # Each pending event: time, the engine counter when it was scheduled, own order.
        self._ta = now + int(rng.expovariate(rate) * 1e9) + 1
        self._ca = c
        self._ka = 0
        self._tf = now + int(rng.expovariate(rate) * 1e9) + 1
        self._cf = c
        self._kf = 1
        self._k = 2
        self.next_t = min(self._ta, self._tf)
        engine.set_lane(self)

    def advance(self, t: int, seq: int) -> int:
        mem = self.memory
        state = mem.state
        owner = mem.owner
        allocated_by = mem.allocated_by
        free_lists = mem.free_lists
        zone = mem.zone
        data_pages = mem.data_pages
        rnd = self.rng.random
        rate = self.rate
        cpus = self.cpus
        c = self.engine._seq
        ta, ca, ka, tf, cf, kf, k = self._ta, self._ca, self._ka, self._tf, self._cf, self._kf, self._k
        n = 0
        delta = 0
        try:
            while True:
                if ta < tf or (ta == tf and (ca < cf or (ca == cf and ka < kf))):
                    if ta > t or (ta == t and ca >= seq):
                        break
                    # alloc_data(cpu)
                    fl = free_lists[int(rnd() * cpus)]
                    if fl:
                        page = fl.pop()
                    elif zone:
                        page = zone.pop()
                    else:
                        donor = max(free_lists, key=len)
                        if not donor:
                            self.engine.now = ta
                            raise OutOfMemory("no free page left in the simulated machine")
                        page = donor.pop()
                    delta -= 1
                    state[page] = DATA
                    owner[page] = None
                    allocated_by[page] = "data"
                    data_pages.append(page)
                    ta += int(-_log(1.0 - rnd()) / rate * 1e9) + 1  # exp_gap(): expovariate() inlined
                    ca = c
                    ka = k
                else:
                    if tf > t or (tf == t and cf >= seq):
                        break
                    # free_oldest_data(cpu)
                    cpu = int(rnd() * cpus)
                    if data_pages:
                        page = data_pages.popleft()
                        state[page] = FREE
                        owner[page] = None
                        free_lists[cpu].append(page)
                        delta += 1
                    tf += int(-_log(1.0 - rnd()) / rate * 1e9) + 1
                    cf = c
                    kf = k
                k += 1
                n += 1
        finally:
            mem.free_count += delta
            self._ta, self._ca, self._ka, self._tf, self._cf, self._kf, self._k = ta, ca, ka, tf, cf, kf, k
            self.next_t = ta if ta < tf else tf
        return n
