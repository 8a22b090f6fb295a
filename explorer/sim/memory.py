"""Pages, page tables and the page allocator with per-CPU LIFO free lists.

The most recently freed page on a CPU is the next one that CPU hands out, as with the kernel's
per-CPU page lists: a wrongly freed table is reused quickly, which is what makes a stale IOMMU
entry dangerous. The background traffic that does most of that reusing (the rest of the kernel
allocating and freeing data pages) is the engine's lane: :class:`explorer.sim.engine.BackgroundLane`,
which inlines :meth:`Memory.alloc_data` and :meth:`Memory.free_oldest_data`.
"""

from __future__ import annotations

from array import array

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

    __slots__ = ("allocated_by", "cpu", "freed", "kernel", "level", "linked", "marked", "page", "slot", "source",
                 "unlink_no", "unlinked_at")

    def __init__(self, page: int, level: int, kernel: bool, slot: int, allocated_by: str = "") -> None:
        self.page = page
        #: who allocated it: ``kernel`` or the workload source's label (use-after-free reports)
        self.allocated_by = allocated_by
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

    def clone(self) -> PageTable:
        """A table with the same facts (a boot image's table, copied for a run)."""
        out = PageTable(self.page, self.level, self.kernel, self.slot, self.allocated_by)
        out.marked = self.marked
        out.linked = self.linked
        out.freed = self.freed
        out.source = self.source
        out.unlinked_at = self.unlinked_at
        out.unlink_no = self.unlink_no
        out.cpu = self.cpu
        return out

    def __repr__(self) -> str:
        kind = "kernel" if self.kernel else "user"
        return f"<{kind} L{self.level} table pfn={self.page} slot={self.slot}>"


class Memory:
    """All pages of the machine, their states and the free lists."""

    def __init__(self, pages: int, cpus: int) -> None:
        self.pages = pages
        self.cpus = cpus
        self.state = bytearray(pages)  # all FREE
        #: page -> the table it backs now (or backed, while unlinked); a free or data page has none.
        #: A dict of the few table pages rather than a list of every page: the cyclic garbage
        #: collector walks a list of every page each time it looks at a run (docs/performance.md).
        self.owner: dict[int, PageTable] = {}
        self.free_lists: list[list[int]] = [[] for _ in range(cpus)]
        #: The zone's free area, pages ``zone_next`` to ``pages - 1``, handed out lowest first when a
        #: CPU's own list is empty; a freed page goes to a CPU's list, never back here, so a counter
        #: holds it (a list of every page cost a run's set-up and the garbage collector's walks).
        self.zone_next = 0
        #: The data pages, oldest first (the background freer gives back the oldest): a ring of
        #: ``data_count`` pages from ``data_head`` in an array as long as the memory (a page is in
        #: it at most once). An array of ints, not a deque: the cyclic garbage collector walks
        #: every entry of a deque each time it looks at a run, and a run's set-up copies it.
        self.data_ring = array("i", [0]) * pages
        self.data_head = 0
        self.data_count = 0
        self.free_count = pages

    def copy(self) -> Memory:
        """An independent copy of the allocator's state, built at C speed (a machine's boot image
        copied for each run, :mod:`explorer.sim.machine`). Its ``owner`` entries still name this
        memory's tables: whoever copies the tables puts the copies there."""
        out = Memory(0, self.cpus)
        out.pages = self.pages
        out.state = bytearray(self.state)
        out.owner = self.owner.copy()
        out.free_lists = [fl.copy() for fl in self.free_lists]
        out.zone_next = self.zone_next
        out.data_ring = array("i", self.data_ring)
        out.data_head = self.data_head
        out.data_count = self.data_count
        out.free_count = self.free_count
        return out

    def alloc(self, cpu: int) -> int:
        """Take a page on ``cpu``: its own list first (LIFO), then the zone, then other CPUs."""
        fl = self.free_lists[cpu]
        if fl:
            page = fl.pop()
        elif self.zone_next < self.pages:
            page = self.zone_next
            self.zone_next = page + 1
        else:
            donor = max(self.free_lists, key=len)
            if not donor:
                raise OutOfMemory("no free page left in the simulated machine")
            page = donor.pop()
        self.free_count -= 1
        return page

    def alloc_data(self, cpu: int) -> int:
        """A data page for the rest of the kernel on ``cpu`` (inlined in the engine's lane: keep in step)."""
        page = self.alloc(cpu)  # a free page has no owner
        self.state[page] = DATA
        tail = self.data_head + self.data_count
        if tail >= self.pages:
            tail -= self.pages
        self.data_ring[tail] = page
        self.data_count += 1
        return page

    def fill_data(self, count: int) -> None:
        """``count`` data pages, exactly as ``alloc_data`` on CPUs 0, 1, 2, ... in turn gives them
        (the machine's data at boot), in one go while no CPU has a page on its own list: then each
        is the zone's next page, whatever the CPU."""
        first = self.zone_next
        if count > self.pages - first or any(self.free_lists) or self.data_count:
            for i in range(count):  # the general case (and its OutOfMemory)
                self.alloc_data(i % self.cpus)
            return
        end = first + count
        # zone pages have no owner (Memory.check); the ring is empty, so it starts at 0
        self.state[first:end] = bytes([DATA]) * count
        self.data_head = 0
        self.data_ring[0:count] = array("i", range(first, end))
        self.data_count = count
        self.zone_next = end
        self.free_count -= count

    def free_oldest_data(self, cpu: int) -> None:
        """The oldest data page back to ``cpu``'s list (inlined in the engine's lane: keep in step)."""
        if self.data_count:
            page = self.data_ring[self.data_head]
            self.data_head += 1
            if self.data_head == self.pages:
                self.data_head = 0
            self.data_count -= 1
            self.free(page, cpu)

    def data_pages(self) -> list[int]:
        """The data pages, oldest first (the next the background freer gives back comes first)."""
        ring, head, count = self.data_ring, self.data_head, self.data_count
        end = head + count
        if end <= self.pages:
            return ring[head:end].tolist()
        return ring[head:].tolist() + ring[:end - self.pages].tolist()

    def free(self, page: int, cpu: int) -> None:
        self.state[page] = FREE
        self.owner.pop(page, None)
        self.free_lists[cpu].append(page)
        self.free_count += 1

    def alloc_table(self, cpu: int, level: int, kernel: bool, slot: int, source: str) -> PageTable:
        page = self.alloc(cpu)
        table = PageTable(page, level, kernel, slot, source)
        self.state[page] = TABLE
        self.owner[page] = table
        return table

    def allocated_by(self, page: int) -> str:
        """Who allocated ``page`` last, for use-after-free reports: ``data``, or the source that
        allocated the table it backs (``kernel``, a workload's label); ``""`` for a free page."""
        state = self.state[page]
        if state == DATA:
            return "data"
        table = self.owner.get(page)
        return table.allocated_by if table is not None else ""

    def check(self) -> list[str]:
        """Consistency of the allocator: every free page on exactly one list, states agree."""
        problems = []
        listed = [p for fl in self.free_lists for p in fl] + list(range(self.zone_next, self.pages))
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
        state = self.state
        if any(state[p] in (FREE, DATA) for p in self.owner):
            problems.append("a free or data page still names a table as its owner")
        if any(table.page != page for page, table in self.owner.items()):
            problems.append("a page names as its owner a table of another page")
        return problems
