"""The shared IOMMU core: paging-structure caches and the device traffic that fills them.

Each IOMMU has a cache per table level (set-associative LRU). Devices bound to SVA mms walk user
addresses (filling the caches and evicting older entries) and, at the probe rate, kernel
addresses: a probe that misses walks from the root and caches a pointer to the slot's current
table; a probe that hits follows the cached pointer wherever it now leads, and the checker
classifies that walk.

User walks change nothing but the caches, so they are not events: they are replayed, in exactly
the order and with exactly the draws they would have had, whenever a kernel probe, an
invalidation or a snapshot looks at the cache.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from math import log
from typing import TYPE_CHECKING, Any, Protocol

from explorer.contract import CacheLevel, SharedCache, SvaTopology
from explorer.sim.memory import PageTable
from explorer.sim.streams import exp_gap, iommu_streams

if TYPE_CHECKING:
    from explorer.sim.checker import Checker
    from explorer.sim.engine import Engine
    from explorer.sim.space import AddressSpace


class Trace(Protocol):
    """The kernel's ``trace(event, **fields)`` (a no-op while tracing is off)."""

    def __call__(self, event: str, /, **fields: Any) -> None: ...

# Cache keys: kernel entries are >= 0 (mm * slots + slot), user entries are < 0.


class SetAssocLRU:
    """A set-associative cache with LRU replacement within each set (``ways=0``: one set)."""

    __slots__ = ("entries", "nsets", "sets", "ways")

    def __init__(self, entries: int, ways: int = 0) -> None:
        entries = max(1, entries)
        if ways <= 0 or ways >= entries:
            ways = entries
        self.entries = entries
        self.ways = ways
        self.nsets = max(1, entries // ways)
        self.sets: list[OrderedDict[int, Any]] = [OrderedDict() for _ in range(self.nsets)]

    def lookup(self, key: int) -> Any:
        s = self.sets[key % self.nsets]
        v = s.get(key)
        if v is not None:
            s.move_to_end(key)
        return v

    def insert(self, key: int, value: Any) -> None:
        s = self.sets[key % self.nsets]
        s[key] = value
        s.move_to_end(key)
        if len(s) > self.ways:
            s.popitem(last=False)

    def drop(self, kernel_only: bool) -> int:
        dropped = 0
        for s in self.sets:
            if kernel_only:
                dead = [k for k in s if k >= 0]
                for k in dead:
                    del s[k]
                dropped += len(dead)
            else:
                dropped += len(s)
                s.clear()
        return dropped

    def values(self) -> list[Any]:
        return [v for s in self.sets for v in s.values()]

    def __len__(self) -> int:
        return sum(len(s) for s in self.sets)


class IommuUnit:
    """One IOMMU: its caches, its devices' traffic and its statistics.

    It depends on the kernel address space its devices walk (``space``), the engine that schedules
    its probes, the checker that classifies a walk through a stale entry and the kernel's trace,
    and on nothing else of the kernel.
    """

    def __init__(
        self,
        space: AddressSpace,
        engine: Engine,
        checker: Checker,
        trace: Trace,
        index: int,
        geometry: Sequence[CacheLevel | SharedCache],
        *,
        walk_rate: float,
        probe_rate: float,
        probe_target: str,
        probe_mms: int,
        user_slots: int,
        walks_kernel_half: bool,
        seed: int,
        sva_mms: int,
        bound_mms: int,
    ) -> None:
        self.space = space
        self.engine = engine
        self.checker = checker
        self.trace = trace
        self.index = index
        #: SVA mms bound in the machine (the PASIDs a scripted probe may name)
        self.sva_mms = sva_mms
        # SVA mms bound on this IOMMU (explorer.sim.sva.bound_counts); its devices serve only them.
        self.bound_mms = bound_mms
        if self.bound_mms == 0:  # no SVA device here: no PASID walks at all
            walk_rate = probe_rate = 0.0
        # level -> its cache; the levels of a SharedCache map to one SetAssocLRU
        self.caches: dict[int, SetAssocLRU] = {}
        shared: set[int] = set()
        for g in geometry:
            if isinstance(g, SharedCache):
                cache = SetAssocLRU(g.entries, g.ways)
                for lv in g.levels:
                    self.caches[lv] = cache
                if len(g.levels) > 1:
                    shared.update(g.levels)
            else:
                self.caches[g.level] = SetAssocLRU(g.entries, g.ways)
        self._levels = sorted(self.caches)
        self._unique = list({id(c): c for c in self.caches.values()}.values())
        self.walk_rate = walk_rate
        self.probe_rate = probe_rate
        self.adversarial = probe_target == "adversarial"
        self.probe_mms = max(1, min(probe_mms, self.bound_mms))
        self.user_slots = user_slots
        self.walks_kernel_half = walks_kernel_half
        self.rng_walk, self.rng_probe = iommu_streams(seed, index)
        self.next_walk = -1
        self.hits = 0
        self.misses = 0
        self.probes = 0
        self.walks = 0
        self.invalidations = 0
        self.dropped = 0
        # Filled by the kernel from each FlushCost: what the invalidations cost on this IOMMU.
        self.commands: dict[str, int] = {}
        self.stalls = 0
        self.stall_ns = 0
        self.wait_ns = 0
        self.flush_ns = 0
        # The newest completed kernel-range invalidation: how many tables had been unlinked when it
        # started (it covers those), and when it started (the flush-before-free check).
        self.covered_upto = 0
        self.covered_start_ns = -1
        # For the hot paths: the caches' sets as the walks use them, and the cache each table
        # level maps to (cache_for()).
        # User-walk keys are -1 - (uslot >> shift); in a cache shared by several levels each level's
        # keys get their own range (an offset far below the others), so they never collide.
        self._walk_levels = [(self.caches[lv].sets, self.caches[lv].nsets, self.caches[lv].ways, 9 * i,
                              -1 - (i << 40) if lv in shared else -1)
                             for i, lv in enumerate(self._levels)]
        self._cache_of = {lv: self.cache_for(lv) for lv in dict.fromkeys(space.slot_level)} if self.caches else {}
        self._topo: SvaTopology | None = None
        self._walk_ctx: tuple[Any, ...] = ()
        self._probe_ctx: tuple[Any, ...] = ()
        self._contexts()

    def _contexts(self) -> None:
        """What the hot paths read, in one tuple each (one load instead of a dozen attribute loads).

        The address space's lists and deque are changed in place, never replaced; the unit's
        parameters are fixed once it has started.
        """
        sp = self.space
        self._walk_ctx = (self.rng_walk.random, self.user_slots, self.walk_rate, self._walk_levels)
        self._probe_ctx = (self.rng_probe.random, self.probe_mms, self.adversarial, sp.recent_unlinked,
                           self.walks_kernel_half, sp.slot_level, self._cache_of, sp.slot_table, sp.kernel_slots,
                           self.probe_rate, self.engine, self.engine.call_at, self.probe, self.checker)

    # -- device traffic -----------------------------------------------------------------------
    def release(self) -> None:
        """Empty the caches (a finished run's :meth:`Kernel.release`): their entries hold page tables."""
        for cache in self._unique:
            for s in cache.sets:
                s.clear()

    def start(self) -> None:
        self._contexts()
        if self.walk_rate > 0:
            self.next_walk = exp_gap(self.rng_walk, self.walk_rate)
        if self.probe_rate > 0:
            self.engine.call_in(exp_gap(self.rng_probe, self.probe_rate), self.probe)

    def catch_up(self, t: int) -> None:
        """Replay the user-address walks up to time ``t``."""
        nxt = self.next_walk
        if nxt < 0 or nxt > t:
            return
        rnd, slots, rate, levels = self._walk_ctx
        mms = self.bound_mms
        hits = misses = walks = 0
        while nxt <= t:
            uslot = int(rnd() * mms) * slots + int(rnd() * slots)
            for sets, nsets, ways, shift, off in levels:
                # SetAssocLRU.lookup() / insert() inlined; user entries are negative keys.
                key = off - (uslot >> shift)
                st = sets[key % nsets]
                if key in st:
                    st.move_to_end(key)
                    hits += 1
                else:
                    st[key] = True
                    if len(st) > ways:
                        st.popitem(last=False)
                    misses += 1
            walks += 1
            nxt += int(-log(1.0 - rnd()) / rate * 1e9) + 1  # exp_gap, inlined
        self.next_walk = nxt
        self.hits += hits
        self.misses += misses
        self.walks += walks

    def cache_for(self, level: int) -> SetAssocLRU:
        c = self.caches.get(level)
        if c is None:
            c = self.caches[self._levels[0]]
        return c

    def probe(self, _: Any = None) -> None:
        (rnd, probe_mms, adversarial, recent, walks_kernel_half, slot_level, cache_of, slot_table, kslots, rate, eng,
         call_at, again, checker) = self._probe_ctx
        now = eng.now
        if 0 <= self.next_walk <= now:
            self.catch_up(now)
        self.probes += 1
        mm = int(rnd() * probe_mms)
        if adversarial:
            slot = recent[int(rnd() * len(recent))] if recent and rnd() < 0.5 else int(rnd() * kslots)
        else:
            slot = int(rnd() * kslots)
        if walks_kernel_half:
            key = mm * kslots + slot
            level = slot_level[slot]
            cache = cache_of.get(level)
            if cache is None:
                cache = self.cache_for(level)
            # SetAssocLRU.lookup() / insert() inlined.
            st = cache.sets[key % cache.nsets]
            entry: PageTable | None = st.get(key)
            if entry is not None:
                st.move_to_end(key)
                self.hits += 1
                if not entry.linked:
                    checker.stale_walk(self, mm, slot, entry)
            else:
                self.misses += 1
                table = slot_table[slot]
                if table is not None:
                    st[key] = table
                    if len(st) > cache.ways:
                        st.popitem(last=False)
        call_at(now + int(-log(1.0 - rnd()) / rate * 1e9) + 1, again)  # the next probe; exp_gap, inlined

    def probe_slot(self, mm: int, slot: int) -> str:
        """One probe of kernel ``slot`` by a device of SVA mm ``mm``, now (a scripted probe: the
        same lookup as :meth:`probe`, without its draws). Returns ``hit``, ``miss`` or ``none``."""
        sp = self.space
        now = self.engine.now
        if 0 <= self.next_walk <= now:
            self.catch_up(now)
        if not (self.walks_kernel_half and 0 <= mm < self.sva_mms and 0 <= slot < sp.kernel_slots):
            return "none"
        self.probes += 1
        key = mm * sp.kernel_slots + slot
        cache = self.cache_for(sp.slot_level[slot])
        st = cache.sets[key % cache.nsets]
        entry: PageTable | None = st.get(key)
        if entry is not None:
            st.move_to_end(key)
            self.hits += 1
            self.trace("probe", iommu=self.index, pasid_mm=mm, slot=slot, result="hit", pfn=entry.page)
            if not entry.linked:
                self.checker.stale_walk(self, mm, slot, entry)
            return "hit"
        self.misses += 1
        table = sp.slot_table[slot]
        if table is not None:
            st[key] = table
            if len(st) > cache.ways:
                st.popitem(last=False)
        # scripted probes are few: trace() itself checks whether tracing is on
        self.trace("probe", iommu=self.index, pasid_mm=mm, slot=slot, result="miss",
                   cached=table.page if table is not None else "-")
        return "miss"

    def topology(self, sva_mms: int, pasids_per_mm: int, iommus: int) -> SvaTopology:
        """The SVA binding handed to the model for an invalidation on this IOMMU (one object, reused)."""
        topo = self._topo
        if topo is None or (topo.sva_mms, topo.pasids_per_mm, topo.iommus) != (sva_mms, pasids_per_mm, iommus):
            topo = self._topo = SvaTopology(sva_mms, pasids_per_mm, iommus, self.index)
        return topo

    # -- invalidation -------------------------------------------------------------------------
    def invalidate(self, scope: str) -> None:
        self.catch_up(self.engine.now)
        self.invalidations += 1
        kernel_only = scope == "kernel"
        for c in self._unique:
            self.dropped += c.drop(kernel_only)

    # -- inspection -----------------------------------------------------------------------------
    def occupancy(self) -> dict[str, Any]:
        self.catch_up(self.engine.now)
        kernel_entries = 0
        stale = 0
        total = 0
        capacity = 0
        for c in self._unique:
            capacity += c.entries
            for s in c.sets:
                for key, v in s.items():
                    total += 1
                    if key >= 0:
                        kernel_entries += 1
                        if not v.linked:
                            stale += 1
        return {
            "index": self.index,
            "capacity": capacity,
            "entries": total,
            "kernel_entries": kernel_entries,
            "stale_entries": stale,
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": round(self.hits / (self.hits + self.misses), 6) if self.hits + self.misses else 0.0,
            "probes": self.probes,
            "walks": self.walks,
            "invalidations": self.invalidations,
            "dropped_entries": self.dropped,
            "commands": dict(sorted(self.commands.items())),
            "queue_stalls": self.stalls,
            "stall_ns": self.stall_ns,
            "wait_ns": self.wait_ns,
            "flush_ns": self.flush_ns,
        }
