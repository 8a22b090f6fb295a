"""Pages, page tables and the page allocator with per-CPU LIFO free lists.

The most recently freed page on a CPU is the next one that CPU hands out, as with the kernel's
per-CPU page lists: a wrongly freed table is reused quickly, which is what makes a stale IOMMU
entry dangerous.
"""

from __future__ import annotations

import random
from collections import deque
from heapq import heappop
from math import log as _log
from typing import Any

from explorer.sim.engine import SimulatorError

# Page states.
FREE = 0
TABLE = 1  # in use as a page table (linked or about to be)
UNLINKED = 2  # table unlinked from its parent, not yet given back to the allocator
DATA = 3  # reused (or in use) for someone else's data

STATE_NAMES = ("free", "table", "unlinked", "data")


def _expovariate_inline_ok() -> bool:
    """Whether ``-log(1 - random()) / rate`` is what this Python's ``Random.expovariate`` returns.

    The hot loops inline it (a function call costs more than the arithmetic); where a Python
    computed it differently they call ``expovariate`` itself, so results never depend on this.
    """
    a, b = random.Random(12345), random.Random(12345)
    return all(a.expovariate(r) == -_log(1.0 - b.random()) / r for r in (3.7, 20000.0, 1e9, 0.001) * 8)


EXPOVARIATE_INLINE = _expovariate_inline_ok()


class PageTable:
    """A page-table page: the kernel's ``struct ptdesc`` with the facts the checker needs."""

    __slots__ = ("cpu", "freed", "kernel", "level", "linked", "marked", "page", "slot", "source", "unlink_no",
                 "unlinked_at")

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
        self.unlink_no = 0  # the kernel's unlink count just after this table's unlink (0: never unlinked)
        self.cpu = 0

    def __repr__(self) -> str:
        kind = "kernel" if self.kernel else "user"
        return f"<{kind} L{self.level} table pfn={self.page} slot={self.slot}>"


class OutOfMemory(SimulatorError):
    """The simulated machine has no free page left: the config's ``kernel.pages`` is too small for
    what it runs. Never a plugin's fault, so the plugin wrappers let it through unwrapped."""


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
        state, owner = self.state, self.owner
        if any(owner[p] is not None for p in range(self.pages) if state[p] in (FREE, DATA)):
            problems.append("a free or data page still names a table as its owner")
        return problems


class BackgroundTraffic:
    """The rest of the kernel allocating and freeing data pages: what reuses a freed table.

    Two Poisson streams at the same rate, one allocating a page on a random CPU and one freeing
    the oldest data page to a random CPU's list, drawing (CPU, then the gap to its next event)
    from one random stream in the order the events happen. They are an engine *lane*
    (:class:`explorer.sim.engine.Lane`): hundreds of thousands of events per simulated second run
    in one tight loop instead of through the heap, in exactly the order the heap would have given
    them, so a run's results are the same bit for bit. The loop inlines :meth:`Memory.alloc_data`
    and :meth:`Memory.free_oldest_data` (keep them in step) and relies on free and data pages
    having no owner (:meth:`Memory.check`).
    """

    __slots__ = ("_peek", "advance", "cpus", "engine", "memory", "rate", "rng", "run_heap")

    advance: Any  # (t, seq) -> the time of the lane's next event (Lane protocol)
    run_heap: Any  # (until) -> None: the engine's run loop with the lane merged in (Lane protocol)

    def __init__(self, memory: Memory, engine: Any, rng: random.Random, rate: float, cpus: int) -> None:
        self.memory = memory
        self.engine = engine
        self.rng = rng
        self.rate = rate
        self.cpus = cpus
        now = engine.now
        # Each pending event: its time, the engine's counter when it was scheduled (``c``) and
        # its place among the lane's own events (``k``).
        ta = now + int(rng.expovariate(rate) * 1e9) + 1
        tf = now + int(rng.expovariate(rate) * 1e9) + 1
        self.advance, self._peek, self.run_heap = self._make_advance(ta, tf, engine._seq)
        engine.set_lane(self)

    @property
    def next_t(self) -> int:
        return self._peek()[0]  # type: ignore[no-any-return]

    @property
    def events(self) -> int:
        """Events run so far."""
        return self._peek()[1]  # type: ignore[no-any-return]

    def _make_advance(self, ta: int, tf: int, c0: int) -> Any:
        """The lane's ``advance(t, seq)``: a closure, so a call costs no set-up (it runs 100k times a second)."""
        mem = self.memory
        state = mem.state
        allocated_by = mem.allocated_by
        free_lists = mem.free_lists
        zone = mem.zone
        data_pages = mem.data_pages
        popleft = data_pages.popleft
        push_data = data_pages.append
        rnd = self.rng.random
        expo = self.rng.expovariate
        log = _log
        inline = EXPOVARIATE_INLINE
        rate = self.rate
        cpus = self.cpus
        engine = self.engine
        ca = cf = c0
        ka, kf, k = 0, 1, 2

        def advance(t: int, seq: int) -> int:
            nonlocal ta, ca, ka, tf, cf, kf, k
            c = engine._seq
            delta = 0
            while True:
                # The earlier of the two pending events in heap order: (time, counter, own order),
                # where the counter never disagrees with the own order between two lane events.
                if ta < tf or (ta == tf and ka < kf):
                    if ta >= t and (ta > t or ca >= seq):
                        break
                    # alloc_data(cpu); a free page has no owner
                    fl = free_lists[int(rnd() * cpus)]
                    if fl:
                        page = fl.pop()
                    elif zone:
                        page = zone.pop()
                    else:
                        donor = max(free_lists, key=len)
                        if not donor:
                            engine.now = ta
                            mem.free_count += delta
                            raise OutOfMemory("no free page left in the simulated machine")
                        page = donor.pop()
                    state[page] = DATA
                    allocated_by[page] = "data"
                    push_data(page)
                    delta -= 1
                    if inline:  # exp_gap(): expovariate() inlined
                        ta += int(-log(1.0 - rnd()) / rate * 1e9) + 1
                    else:
                        ta += int(expo(rate) * 1e9) + 1
                    ca = c
                    ka = k
                else:
                    if tf >= t and (tf > t or cf >= seq):
                        break
                    # free_oldest_data(cpu); a data page has no owner
                    cpu = int(rnd() * cpus)
                    if data_pages:
                        page = popleft()
                        state[page] = FREE
                        free_lists[cpu].append(page)
                        delta += 1
                    if inline:
                        tf += int(-log(1.0 - rnd()) / rate * 1e9) + 1
                    else:
                        tf += int(expo(rate) * 1e9) + 1
                    cf = c
                    kf = k
                k += 1
            mem.free_count += delta
            return ta if ta < tf else tf

        def peek() -> tuple[int, int]:
            return (ta if ta < tf else tf), k - 2

        def run_heap(until: int) -> None:
            """``Engine.run(until)`` with ``advance`` merged into its loop (see :class:`Engine`).

            The same events in the same order as ``Engine.run`` calling ``advance`` before each heap
            event that follows lane events, without a call per heap event, and with the lane's
            state in fast locals for the whole call (written back when it returns or raises). The
            tie between the two pending lane events (``ka < kf`` in ``advance``) is ``af``: the
            pending allocation was scheduled before the pending free iff the last lane event run
            was a free.
            """
            nonlocal ta, ca, ka, tf, cf, kf, k
            heap = engine._heap
            pop = heappop
            lta, lca, ltf, lcf, lk = ta, ca, tf, cf, k
            af = ka < kf
            lane_t = lta if lta < ltf else ltf
            n = 0
            try:
                while True:
                    if heap and heap[0][0] <= until:
                        t, s, fn, arg = pop(heap)
                        if t < lane_t:
                            engine.now = t
                            fn(arg)
                            n += 1
                            continue
                    elif lane_t <= until:
                        fn = None
                        t = until + 1
                        s = 0
                    else:
                        break
                    # The lane events ordered before the heap event (t, s): advance(t, s), inlined,
                    # with each run of events of one kind in an inner loop (the earlier of the two
                    # strictly before the other and before t needs no tie rule). The free count
                    # moves with the data pages: +1 for each one freed, -1 for each one allocated.
                    c = engine._seq
                    d0 = len(data_pages)
                    while True:
                        if lta < ltf or (lta == ltf and af):
                            if lta >= t and (lta > t or lca >= s):
                                break
                            lim = ltf if ltf < t else t
                            while True:
                                fl = free_lists[int(rnd() * cpus)]
                                if fl:
                                    page = fl.pop()
                                elif zone:
                                    page = zone.pop()
                                else:
                                    donor = max(free_lists, key=len)
                                    if not donor:
                                        engine.now = lta
                                        mem.free_count -= len(data_pages) - d0
                                        raise OutOfMemory("no free page left in the simulated machine")
                                    page = donor.pop()
                                state[page] = DATA
                                allocated_by[page] = "data"
                                push_data(page)
                                lta += int(-log(1.0 - rnd()) / rate * 1e9) + 1
                                lk += 1
                                if lta >= lim:
                                    break
                            lca = c
                            af = False
                        else:
                            if ltf >= t and (ltf > t or lcf >= s):
                                break
                            lim = lta if lta < t else t
                            while True:
                                cpu = int(rnd() * cpus)
                                if data_pages:
                                    page = popleft()
                                    state[page] = FREE
                                    free_lists[cpu].append(page)
                                ltf += int(-log(1.0 - rnd()) / rate * 1e9) + 1
                                lk += 1
                                if ltf >= lim:
                                    break
                            lcf = c
                            af = True
                    mem.free_count -= len(data_pages) - d0
                    lane_t = lta if lta < ltf else ltf
                    if fn is None:
                        break
                    engine.now = t
                    fn(arg)
                    n += 1
            finally:
                ta, ca, tf, cf, k = lta, lca, ltf, lcf, lk
                # own order of the two pending events: only which is older matters
                if af:
                    ka, kf = lk - 1, lk
                else:
                    ka, kf = lk, lk - 1
                engine._events += n
            if engine.now < until:
                engine.now = until

        return advance, peek, (run_heap if inline else None)
