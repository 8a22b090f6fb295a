"""The kernel address space: the slots of the kernel half, the table that maps each, and refills.

What the IOMMU units depend on (they walk it) instead of the whole kernel: ``kernel_slots`` slots,
each mapped through one table (every 32nd through a PMD table, the rest through PTE tables); an
unlinked slot is mapped again ``kernel.slot_refill`` later on average (a new table from the
allocator on a random CPU), and the newest unlinked slots are what an adversarial device probes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from random import Random
from typing import Any

from explorer.sim.engine import Engine
from explorer.sim.memory import Memory, PageTable
from explorer.sim.streams import exp_gap

#: how many of the newest unlinked slots an adversarial device aims at
RECENT = 64


class AddressSpace:
    """The kernel slots: which are linked, the table of each, and their refill after an unlink."""

    __slots__ = ("_refill_fn", "_refill_rate", "cpus", "engine", "kernel_slots", "linked_slots", "memory",
                 "recent_unlinked", "rng_refill", "slot_level", "slot_pos", "slot_refill_ns", "slot_table")

    def __init__(self, memory: Memory, engine: Engine, kernel_slots: int, cpus: int, slot_refill_ns: int,
                 rng_refill: Random) -> None:
        self.memory = memory
        self.engine = engine
        self.kernel_slots = kernel_slots
        self.cpus = cpus
        self.slot_refill_ns = slot_refill_ns
        self.rng_refill = rng_refill
        #: the level of the table mapping each slot: every 32nd slot is mapped through a PMD table
        self.slot_level = [2 if s % 32 == 31 else 1 for s in range(kernel_slots)]
        #: the table linked in each slot now (None while the slot waits for its refill)
        self.slot_table: list[PageTable | None] = [None] * kernel_slots
        #: the linked slots in no particular order (a pick is uniform), with each slot's position
        self.linked_slots: list[int] = []
        self.slot_pos: list[int] = [-1] * kernel_slots
        #: the newest unlinked slots, oldest first
        self.recent_unlinked: deque[int] = deque(maxlen=RECENT)
        # for take(): the refill rate (per second) and one bound _refill instead of one per unlink
        self._refill_rate = 1e9 / slot_refill_ns if slot_refill_ns else 0.0
        self._refill_fn: Callable[[Any], None] = self._refill
        for s in range(kernel_slots):
            self.populate(s, s % cpus)

    def copy(self, memory: Memory, engine: Engine, slot_refill_ns: int, rng_refill: Random) -> AddressSpace:
        """This address space on ``memory`` (a :meth:`Memory.copy` of this one's), with a new table
        for every linked slot, in ``memory.owner`` too: a machine's boot image copied for a run."""
        out = AddressSpace(memory, engine, 0, self.cpus, slot_refill_ns, rng_refill)
        out.kernel_slots = self.kernel_slots
        out.slot_level = self.slot_level  # never changes after boot
        tables: list[PageTable | None] = [None if old is None else old.clone() for old in self.slot_table]
        memory.owner.update({table.page: table for table in tables if table is not None})
        out.slot_table = tables
        out.linked_slots = self.linked_slots.copy()
        out.slot_pos = self.slot_pos.copy()
        out.recent_unlinked.extend(self.recent_unlinked)
        return out

    def populate(self, slot: int, cpu: int) -> None:
        """Map ``slot`` through a new table allocated on ``cpu``."""
        table = self.memory.alloc_table(cpu, self.slot_level[slot], True, slot, "kernel")
        self.slot_table[slot] = table
        self.slot_pos[slot] = len(self.linked_slots)
        self.linked_slots.append(slot)

    def _refill(self, slot: int) -> None:
        if self.slot_table[slot] is None:
            self.populate(slot, int(self.rng_refill.random() * self.cpus))

    def pick_linked_table(self, rng: Random, level: int = 0) -> PageTable | None:
        """A linked table drawn from ``rng`` (of ``level``, when one is found in a few tries)."""
        linked = self.linked_slots
        if not linked:
            return None
        slot = linked[int(rng.random() * len(linked))]
        if level and self.slot_level[slot] != level:
            # one slot in 32 maps through a PMD table: try long enough to find one (7 tries were
            # enough for the PTE tables, which are the rest)
            for _ in range(7 if level == 1 else 255):
                cand = linked[int(rng.random() * len(linked))]
                if self.slot_level[cand] == level:
                    slot = cand
                    break
        return self.slot_table[slot]

    def take(self, pt: PageTable) -> bool:
        """``pt``'s parent entry is cleared: if it maps a kernel slot now, the slot is empty until its
        refill. Returns whether it did (a table of a user mm, or one already taken, maps none)."""
        slot = pt.slot
        if slot < 0 or self.slot_table[slot] is not pt:
            return False
        self.slot_table[slot] = None
        pos = self.slot_pos[slot]
        last = self.linked_slots.pop()
        if last != slot:
            self.linked_slots[pos] = last
            self.slot_pos[last] = pos
        self.slot_pos[slot] = -1
        self.recent_unlinked.append(slot)
        refill = exp_gap(self.rng_refill, self._refill_rate) if self.slot_refill_ns else 0
        self.engine.call_in(refill, self._refill_fn, slot)
        return True

    def linked(self, level: int = 0) -> list[int]:
        """The slots that have a linked table now (of ``level``, or any), in increasing order."""
        return sorted(s for s in self.linked_slots if not level or self.slot_level[s] == level)
