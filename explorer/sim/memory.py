"""Pages, page tables and the page allocator with per-CPU LIFO free lists.

The most recently freed page on a CPU is the next one that CPU hands out, as with the kernel's
per-CPU page lists: a wrongly freed table is reused quickly, which is what makes a stale IOMMU
entry dangerous. The background traffic that does most of that reusing (the rest of the kernel
allocating and freeing data pages) is the engine's lane: :class:`explorer.sim.engine.BackgroundLane`,
which inlines :meth:`Memory.alloc_data` and :meth:`Memory.free_oldest_data`.
"""

from __future__ import annotations

from collections import deque

from explorer.sim.errors import OutOfMemory

__all__ = ["DATA", "FREE", "STATE_NAMES", "TABLE", "UNLINKED", "Memory", "OutOfMemory", "PageTable"]

# Page states.
FREE = 0
TABLE = 1  # in use as a page table (linked or about to be)
UNLINKED = 2  # table unlinked from its parent, not yet given back to the allocator
DATA = 3  # reused (or in use) for someone else's data

STATE_NAMES = ("free", "table", "unlinked", "data")


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
        """A data page for the rest of the kernel on ``cpu`` (inlined in the engine's lane: keep in step)."""
        page = self.alloc(cpu)
        self.state[page] = DATA
        self.owner[page] = None
        self.allocated_by[page] = "data"
        self.data_pages.append(page)
        return page

    def fill_data(self, count: int) -> None:
        """``count`` data pages, exactly as ``alloc_data`` on CPUs 0, 1, 2, ... in turn gives them
        (the machine's data at boot), in one go while no CPU has a page on its own list: then each
        is the zone's next page, whatever the CPU. A short run's set-up is mostly this loop."""
        zone = self.zone
        if count > len(zone) or any(self.free_lists):
            for i in range(count):  # the general case (and its OutOfMemory)
                self.alloc_data(i % self.cpus)
            return
        cut = len(zone) - count
        pages = zone[cut:]
        pages.reverse()  # zone.pop() order
        del zone[cut:]
        state, allocated_by = self.state, self.allocated_by
        for page in pages:  # a zone page has no owner (Memory.check)
            state[page] = DATA
            allocated_by[page] = "data"
        self.data_pages.extend(pages)
        self.free_count -= count

    def free_oldest_data(self, cpu: int) -> None:
        """The oldest data page back to ``cpu``'s list (inlined in the engine's lane: keep in step)."""
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
