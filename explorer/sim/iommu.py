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

import random
from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from explorer.api import CacheLevel
from explorer.sim.memory import PageTable

if TYPE_CHECKING:
    from explorer.sim.kernel import Kernel

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
    """One IOMMU: its caches, its devices' traffic and its statistics."""

    def __init__(
        self,
        kernel: Kernel,
        index: int,
        geometry: Sequence[CacheLevel],
        *,
        walk_rate: float,
        probe_rate: float,
        probe_target: str,
        probe_mms: int,
        user_slots: int,
        walks_kernel_half: bool,
        seed: int,
    ) -> None:
        self.kernel = kernel
        self.index = index
        self.caches: dict[int, SetAssocLRU] = {g.level: SetAssocLRU(g.entries, g.ways) for g in geometry}
        self._levels = sorted(self.caches)
        self.walk_rate = walk_rate
        self.probe_rate = probe_rate
        self.adversarial = probe_target == "adversarial"
        self.probe_mms = max(1, min(probe_mms, kernel.sva_mms))
        self.user_slots = user_slots
        self.walks_kernel_half = walks_kernel_half
        self.rng_walk = random.Random(seed * 7919 + 1000 + index)
        self.rng_probe = random.Random(seed * 7919 + 2000 + index)
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

    # -- device traffic -----------------------------------------------------------------------
    def start(self) -> None:
        k = self.kernel
        if self.walk_rate > 0:
            self.next_walk = k.exp_gap(self.rng_walk, self.walk_rate)
        if self.probe_rate > 0:
            k.engine.call_in(k.exp_gap(self.rng_probe, self.probe_rate), self.probe)

    def catch_up(self, t: int) -> None:
        """Replay the user-address walks up to time ``t``."""
        if self.next_walk < 0 or self.next_walk > t:
            return
        rng = self.rng_walk
        mms = self.kernel.sva_mms
        slots = self.user_slots
        rate = self.walk_rate
        nxt = self.next_walk
        caches = [(self.caches[lv], 9 * (i)) for i, lv in enumerate(self._levels)]
        hits = misses = walks = 0
        expo = rng.expovariate
        while nxt <= t:
            uslot = int(rng.random() * mms) * slots + int(rng.random() * slots)
            for cache, shift in caches:
                key = -1 - (uslot >> shift)
                if cache.lookup(key) is None:
                    cache.insert(key, True)
                    misses += 1
                else:
                    hits += 1
            walks += 1
            nxt += int(expo(rate) * 1e9) + 1
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
        k = self.kernel
        now = k.engine.now
        self.catch_up(now)
        rng = self.rng_probe
        self.probes += 1
        mm = int(rng.random() * self.probe_mms)
        recent = k.recent_unlinked
        if self.adversarial and recent and rng.random() < 0.5:
            slot = recent[int(rng.random() * len(recent))]
        else:
            slot = int(rng.random() * k.kernel_slots)
        if self.walks_kernel_half:
            key = mm * k.kernel_slots + slot
            cache = self.cache_for(k.slot_level[slot])
            entry: PageTable | None = cache.lookup(key)
            if entry is not None:
                self.hits += 1
                if not entry.linked:
                    k.checker.stale_walk(self, mm, slot, entry)
            else:
                self.misses += 1
                table = k.slot_table[slot]
                if table is not None:
                    cache.insert(key, table)
        k.engine.call_in(k.exp_gap(rng, self.probe_rate), self.probe)

    # -- invalidation -------------------------------------------------------------------------
    def invalidate(self, scope: str) -> None:
        self.catch_up(self.kernel.engine.now)
        self.invalidations += 1
        kernel_only = scope == "kernel"
        for c in self.caches.values():
            self.dropped += c.drop(kernel_only)

    # -- inspection -----------------------------------------------------------------------------
    def occupancy(self) -> dict[str, Any]:
        self.catch_up(self.kernel.engine.now)
        kernel_entries = 0
        stale = 0
        total = 0
        capacity = 0
        for c in self.caches.values():
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


def recent_ring(size: int = 64) -> deque[int]:
    return deque(maxlen=size)
