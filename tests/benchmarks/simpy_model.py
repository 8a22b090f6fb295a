"""The default scenario as a plain SimPy script: the reference the explorer's speed is measured against.

This is written the way a kernel engineer writes a one-off SimPy model: one process for each
thing that acts on its own (each workload source, the calls it makes on the CPU it picked, the
kworker, each device's kernel-address probes and user-address DMA walks, the background page
allocator and freer), ``env.timeout`` for every delay and every device walk, a ``simpy.Resource``
for the ``iommu_sva_lock`` mutex and an ``env.event`` to wake the kworker. There is no engine
trickery: every user-address walk is an event.

It carries the explorer's semantics and its random draw order (the same named streams, seeded the
same way, drawn in the same order), so for a fixed seed both give the same flushes, frees and
violations; SimPy breaks ties between events at the same nanosecond by its own event ids, and the
explorer replays user walks lazily (a walk at the very nanosecond of a probe counts as before it),
so on rare seeds a tie can make the two differ: the suite then compares them in distribution over
20 seeds (``tests/benchmarks/simpy_check.py``).

Supported: the default config (``explorer.config.default_config``) with strategy ``deferred``,
``sync`` or ``sync-unsafe``, IOMMU ``generic`` (fully associative or set-associative caches), any
``probe_target``, any ``iommu.iommus_per_mm`` (which mm is bound on which IOMMU), any
``kernel.preemption`` (the kworker waits for the task on its CPU; the deferred path has no
might_sleep() point, so voluntary is none there), and the four standard workload sources with their
parameters (PUD teardowns, CPA's flush-then-free, unmarked shares, an atomic vmalloc caller);
not bootmem, bind/unbind traffic or kernel TLB flushes without a table.

The workqueue is the kernel's: an idle item is queued on the calling CPU and woken after the
scheduling delay, once the CPU is free; a running item that is scheduled again runs again on its
CPU the instant the current run ends; the worker frees its batch newest first, each page when its
own free ends.
"""

from __future__ import annotations

import random
import zlib
from collections import OrderedDict, deque
from typing import Any

import simpy

FREE, TABLE, UNLINKED, DATA = 0, 1, 2, 3


def stream_seed(seed: int, name: str) -> int:
    return (seed * 1_000_003) ^ zlib.crc32(name.encode())


def exp_gap(rng: random.Random, rate: float) -> int:
    return int(rng.expovariate(rate) * 1e9) + 1


class Table:
    __slots__ = ("freed", "kernel", "level", "linked", "marked", "page", "slot", "source", "unlinked_at")

    def __init__(self, page: int, level: int, kernel: bool, slot: int) -> None:
        self.page, self.level, self.kernel, self.slot = page, level, kernel, slot
        self.marked = kernel
        self.linked = True
        self.freed = False
        self.source = ""
        self.unlinked_at = -1


class Cache:
    """One paging-structure cache level: LRU within each set."""

    def __init__(self, entries: int, ways: int) -> None:
        if ways <= 0 or ways >= entries:
            ways = entries
        self.ways = ways
        self.sets = [OrderedDict() for _ in range(max(1, entries // ways))]

    def lookup(self, key: int) -> Any:
        s = self.sets[key % len(self.sets)]
        v = s.get(key)
        if v is not None:
            s.move_to_end(key)
        return v

    def insert(self, key: int, value: Any) -> None:
        s = self.sets[key % len(self.sets)]
        s[key] = value
        s.move_to_end(key)
        if len(s) > self.ways:
            s.popitem(last=False)

    def drop(self, kernel_only: bool) -> None:
        for s in self.sets:
            for k in [k for k in s if k >= 0 or not kernel_only]:
                del s[k]


class Model:
    def __init__(self, cfg: dict[str, Any]) -> None:
        run, kern, io = cfg["run"], cfg["kernel"], cfg["iommu"]
        self.strategy = cfg["strategy"]["name"]
        assert self.strategy in ("deferred", "sync", "sync-unsafe"), self.strategy
        assert io["model"] == "generic" and kern["arch"] == "x86_64" and kern["iommu_sva"]
        assert kern["async_kernel_pgtable_free"] in ("auto", "y")
        seed = self.seed = int(run["seed"])
        self.duration = int(run["duration"])
        self.drain = int(run["drain"])
        self.cpus = int(kern["cpus"])
        self.wq_delay = int(kern["workqueue_delay"])
        self.spinlock_ns = int(kern["spinlock_ns"])
        self.free_page_ns = int(kern["free_page_ns"])
        self.slot_refill = int(kern["slot_refill"])
        self.bg_rate = float(kern["background_alloc_rate"])
        self.sva_mms = int(io["sva_mms"])
        params = io["params"]
        assert float(io.get("bind_rate", 0.0)) == 0, "bind/unbind traffic is not modelled here"
        # mm i is bound on IOMMUs i .. i+iommus_per_mm-1 (mod count); 0 = every mm on every IOMMU
        count, per_mm = int(io["count"]), int(io.get("iommus_per_mm", 0))
        self.bound = [0] * count
        for i in range(self.sva_mms):
            for j in range(count if per_mm <= 0 or per_mm >= count else per_mm):
                self.bound[(i + j) % count] += 1
        self.pasids_per_mm = int(io["pasids_per_mm"])
        self.invalidate_per_mm = int(params["invalidate_per_mm"])
        self.completion_wait = int(params["completion_wait"])

        self.env = env = simpy.Environment()
        self.rng_refill = random.Random(stream_seed(seed, "kernel/refill"))
        self.rng_bg = random.Random(stream_seed(seed, "kernel/background"))

        # Memory: per-CPU LIFO free lists, then the zone, then the longest other list.
        pages = int(kern["pages"])
        self.state = bytearray(pages)
        self.owner: list[Table | None] = [None] * pages
        self.free_lists: list[list[int]] = [[] for _ in range(self.cpus)]
        self.zone = list(range(pages - 1, -1, -1))
        self.data_pages: deque[int] = deque()

        # The kernel address space: one table per slot, every 32nd through a PMD table.
        slots = self.kernel_slots = int(kern["kernel_slots"])
        self.slot_level = [2 if s % 32 == 31 else 1 for s in range(slots)]
        self.slot_table: list[Table | None] = [None] * slots
        self.linked: list[int] = []
        self.slot_pos = [-1] * slots
        for s in range(slots):
            self.populate(s, s % self.cpus)
        for i in range(pages // 2):
            self.alloc_data(i % self.cpus)
        self.recent: deque[int] = deque(maxlen=64)

        self.pending: list[Table] = []  # the deferred strategy's list
        self.work_pending = False
        self.work_running = False
        self.work_cpu = 0
        self.work_wakeup = env.event()
        # Per CPU: tasks in the kernel (workload operations), the atomic ones, and an event that
        # fires when a kworker waiting there may run (kernel.preemption).
        self.preemption = kern.get("preemption", "voluntary")
        self.cpu_tasks = [0] * self.cpus
        self.cpu_atomic = [0] * self.cpus
        self.cpu_free = [env.event() for _ in range(self.cpus)]
        self.sva_lock = simpy.Resource(env, capacity=1)

        self.flushes = self.worker_runs = 0
        self.kernel_freed = self.user_freed = self.unlinked = self.in_flight = self.in_op = 0
        self.violations = dict.fromkeys(("use_after_free", "stale_walk_free", "sleep_in_atomic"), 0)
        self.stale_queued = 0
        self.hits = self.misses = 0

        # Processes, started in the order the explorer draws their first random numbers.
        self.units = []
        geometry = [(lv, params["cache_entries"], params["cache_ways"]) for lv in (1, 2)]
        for i in range(int(io["count"])):
            unit = {
                "caches": {lv: Cache(n, w) for lv, n, w in geometry},
                "rng_walk": random.Random(seed * 7919 + 1000 + i),
                "rng_probe": random.Random(seed * 7919 + 2000 + i),
                "bound": self.bound[i],
            }
            self.units.append(unit)
            if not unit["bound"]:
                continue  # no SVA device on this IOMMU
            if io["walk_rate"] > 0:
                env.process(self.device_walks(unit, float(io["walk_rate"]), int(io["user_slots"])))
            if io["probe_rate"] > 0:
                env.process(
                    self.device_probes(
                        unit, float(io["probe_rate"]), io["probe_target"] == "adversarial",
                        max(1, min(int(io["probe_mms"]), unit["bound"])),
                    )
                )
        if self.bg_rate > 0:
            env.process(self.background(alloc=True))
            env.process(self.background(alloc=False))
        if self.strategy == "deferred":
            env.process(self.kworker())
        for w in cfg["workload"]:
            env.process(self.workload(w))

    # -- memory ------------------------------------------------------------------------------
    def alloc(self, cpu: int) -> int:
        fl = self.free_lists[cpu]
        if fl:
            return fl.pop()
        if self.zone:
            return self.zone.pop()
        return max(self.free_lists, key=len).pop()

    def alloc_data(self, cpu: int) -> None:
        page = self.alloc(cpu)
        self.state[page] = DATA
        self.owner[page] = None
        self.data_pages.append(page)

    def alloc_table(self, cpu: int, level: int, kernel: bool, slot: int) -> Table:
        page = self.alloc(cpu)
        t = Table(page, level, kernel, slot)
        self.state[page] = TABLE
        self.owner[page] = t
        return t

    def free_page(self, page: int, cpu: int) -> None:
        self.state[page] = FREE
        self.owner[page] = None
        self.free_lists[cpu].append(page)

    def background(self, alloc: bool):
        rng, env = self.rng_bg, self.env
        yield env.timeout(exp_gap(rng, self.bg_rate))
        while True:
            cpu = int(rng.random() * self.cpus)
            if alloc:
                self.alloc_data(cpu)
            elif self.data_pages:
                self.free_page(self.data_pages.popleft(), cpu)
            yield env.timeout(exp_gap(rng, self.bg_rate))

    # -- kernel page tables ------------------------------------------------------------------
    def populate(self, slot: int, cpu: int) -> None:
        self.slot_table[slot] = self.alloc_table(cpu, self.slot_level[slot], True, slot)
        self.slot_pos[slot] = len(self.linked)
        self.linked.append(slot)

    def refill(self, slot: int, delay: int):
        yield self.env.timeout(delay)
        if self.slot_table[slot] is None:
            self.populate(slot, int(self.rng_refill.random() * self.cpus))

    def pick_table(self, rng: random.Random, level: int) -> Table | None:
        linked = self.linked
        if not linked:
            return None
        slot = linked[int(rng.random() * len(linked))]
        if self.slot_level[slot] != level:
            for _ in range(7 if level == 1 else 255):
                cand = linked[int(rng.random() * len(linked))]
                if self.slot_level[cand] == level:
                    slot = cand
                    break
        return self.slot_table[slot]

    def unlink(self, t: Table, source: str) -> None:
        t.linked = False
        t.source = source
        t.unlinked_at = self.env.now
        self.state[t.page] = UNLINKED
        self.in_flight += 1
        slot = t.slot
        if slot >= 0 and self.slot_table[slot] is t:
            self.unlinked += 1
            self.slot_table[slot] = None
            last = self.linked.pop()
            if last != slot:
                self.linked[self.slot_pos[slot]] = last
                self.slot_pos[last] = self.slot_pos[slot]
            self.slot_pos[slot] = -1
            self.recent.append(slot)
            delay = exp_gap(self.rng_refill, 1e9 / self.slot_refill) if self.slot_refill else 0
            self.env.process(self.refill(slot, delay))

    def free_table(self, t: Table, cpu: int) -> None:  # __pagetable_free()
        t.freed = True
        self.in_flight -= 1
        self.free_page(t.page, cpu)
        if t.kernel:
            self.kernel_freed += 1
        else:
            self.user_freed += 1

    def pagetable_free(self, t: Table, cpu: int, atomic: bool):
        """The seed's dispatch; yields the CPU time the caller spends."""
        if not t.marked:
            self.free_table(t, cpu)
            if self.free_page_ns:
                yield self.env.timeout(self.free_page_ns)
            return
        t.marked = False
        if self.strategy == "sync-unsafe":
            self.free_table(t, cpu)
            if self.free_page_ns:
                yield self.env.timeout(self.free_page_ns)
        elif self.strategy == "sync":
            yield from self.iommu_flush(atomic)
            self.free_table(t, cpu)
            if self.free_page_ns:
                yield self.env.timeout(self.free_page_ns)
        else:  # deferred: spin_lock; list_add; spin_unlock; schedule_work()
            self.pending.append(t)
            if not self.work_pending:
                self.work_pending = True
                if not self.work_running:  # an idle item goes to this CPU; a running one stays put
                    self.work_cpu = cpu
                    self.work_wakeup.succeed()
            if self.spinlock_ns:
                yield self.env.timeout(self.spinlock_ns)

    def cpu_blocked(self, cpu: int) -> bool:
        if self.preemption == "full":
            return self.cpu_atomic[cpu] > 0
        return self.cpu_tasks[cpu] > 0

    def task_enter(self, cpu: int, atomic: bool) -> None:
        self.cpu_tasks[cpu] += 1
        self.cpu_atomic[cpu] += atomic

    def task_leave(self, cpu: int, atomic: bool) -> None:
        self.cpu_tasks[cpu] -= 1
        self.cpu_atomic[cpu] -= atomic
        if not self.cpu_blocked(cpu) and self.cpu_free[cpu].callbacks:
            self.cpu_free[cpu].succeed()
            self.cpu_free[cpu] = self.env.event()

    def kworker(self):
        env = self.env
        while True:
            if not self.work_pending:
                self.work_wakeup = env.event()
                yield self.work_wakeup
            yield env.timeout(self.wq_delay)
            while self.cpu_blocked(self.work_cpu):  # the task on that CPU has to leave it first
                yield self.cpu_free[self.work_cpu]
            while self.work_pending:  # worker_thread(): runs it again at once while it is queued
                self.work_pending = False
                self.work_running = True
                self.worker_runs += 1
                cpu = self.work_cpu
                batch, self.pending = self.pending, []
                yield from self.iommu_flush(False)
                for t in reversed(batch):  # list_add() at the head: newest first, each on its own
                    if self.free_page_ns:
                        yield env.timeout(self.free_page_ns)
                    self.free_table(t, cpu)
                if self.spinlock_ns:
                    yield env.timeout(self.spinlock_ns)
                self.work_running = False

    def iommu_flush(self, atomic: bool):
        """iommu_sva_invalidate_kva_range(): the mutex, then every IOMMU in turn."""
        if atomic:
            self.violations["sleep_in_atomic"] += 1
        # (a might_sleep() point: with voluntary preemption a kworker waiting for this CPU could
        # run here; only the sync strategy flushes in a task, and it has no kworker)
        with self.sva_lock.request() as req:
            yield req
            self.flushes += 1
            for unit in self.units:
                if not unit["bound"]:
                    continue  # no mm bound on it: no notifier reaches it
                effective = unit["bound"] * self.pasids_per_mm * self.invalidate_per_mm
                self.env.process(self.invalidate(unit, effective))
                yield self.env.timeout(effective + self.completion_wait)

    def invalidate(self, unit: dict[str, Any], delay: int):
        yield self.env.timeout(delay)
        for c in unit["caches"].values():
            c.drop(kernel_only=False)

    # -- devices -----------------------------------------------------------------------------
    def device_walks(self, unit: dict[str, Any], rate: float, user_slots: int):
        rng, env = unit["rng_walk"], self.env
        levels = [unit["caches"][lv] for lv in sorted(unit["caches"])]
        yield env.timeout(exp_gap(rng, rate))
        while True:
            uslot = int(rng.random() * unit["bound"]) * user_slots + int(rng.random() * user_slots)
            for i, cache in enumerate(levels):
                key = -1 - (uslot >> (9 * i))
                if cache.lookup(key) is None:
                    cache.insert(key, True)
                    self.misses += 1
                else:
                    self.hits += 1
            yield env.timeout(exp_gap(rng, rate))

    def device_probes(self, unit: dict[str, Any], rate: float, adversarial: bool, probe_mms: int):
        rng, env = unit["rng_probe"], self.env
        caches = unit["caches"]
        yield env.timeout(exp_gap(rng, rate))
        while True:
            mm = int(rng.random() * probe_mms)
            if adversarial and self.recent and rng.random() < 0.5:
                slot = self.recent[int(rng.random() * len(self.recent))]
            else:
                slot = int(rng.random() * self.kernel_slots)
            cache = caches.get(self.slot_level[slot])
            key = mm * self.kernel_slots + slot
            entry = cache.lookup(key)
            if entry is not None:
                self.hits += 1
                if not entry.linked:
                    self.check_stale(entry)
            else:
                self.misses += 1
                if self.slot_table[slot] is not None:
                    cache.insert(key, self.slot_table[slot])
            yield env.timeout(exp_gap(rng, rate))

    def check_stale(self, entry: Table) -> None:
        state = self.state[entry.page]
        if state == UNLINKED and self.owner[entry.page] is entry:
            self.stale_queued += 1
        elif state == FREE:
            self.violations["stale_walk_free"] += 1
        else:
            self.violations["use_after_free"] += 1

    # -- workloads -----------------------------------------------------------------------------
    def workload(self, w: dict[str, Any]):
        env, name = self.env, w["name"]
        s = stream_seed(self.seed, "workload/" + name)
        rng, rng_time = random.Random(s), random.Random(s ^ 0x5EED_0001)
        rng_cpu, rng_pick = random.Random(s ^ 0x5EED_0002), random.Random(s ^ 0x5EED_0003)
        assert w.get("cpus", "all") == "all"
        next_arrival = 0
        while True:
            if w["rate"] <= 0:
                return
            next_arrival += exp_gap(rng_time, w["rate"])
            gap = max(0, next_arrival - env.now)
            if env.now + gap >= self.duration:
                return  # the workload stops at the end of the run
            yield env.timeout(gap)
            self.in_op += 1
            level = 1
            pud = False
            if name == "hot-remove":
                bootmem = rng.random() < w["bootmem_fraction"]
                assert not bootmem, "bootmem tables are not modelled here"
            elif name == "vmalloc-huge" and w.get("pud_fraction"):
                pud = rng.random() < w["pud_fraction"]
            cpu = int(rng_cpu.random() * self.cpus)
            atomic = bool(w.get("atomic", False))
            self.task_enter(cpu, atomic)
            unmarked = w.get("unmarked", 0.0)
            if name == "user-teardown":
                tables = [self.alloc_table(cpu, 1, False, -1) for _ in range(w["burst"])]
                for t in tables:
                    self.unlink(t, name)
                    yield from self.pagetable_free(t, cpu, atomic)
            elif name == "cpa-collapse" or pud:
                # Collect (unlink) the group, one CPU TLB flush, then free it in order.
                groups = [[1] * w["pud_ptes"] + [2]] * w["burst"] if pud else [[1] * w["burst"]]
                flush = w["cpu_flush"] if pud else w["tlb_flush_all"]
                for i, levels in enumerate(groups):
                    if i:  # each pud_free_pmd_page() is its own call of the free path
                        self.task_leave(cpu, atomic)
                        self.task_enter(cpu, atomic)
                    group = []
                    for lv in levels:
                        t = self.pick_table(rng_pick, lv)
                        if t is None:
                            break
                        if unmarked and (unmarked >= 1.0 or rng.random() < unmarked):
                            t.marked = False
                        self.unlink(t, name)
                        group.append(t)
                    if flush:
                        yield env.timeout(flush)
                    for t in group:
                        yield from self.pagetable_free(t, cpu, atomic)
            else:
                for _ in range(w["burst"]):
                    t = self.pick_table(rng_pick, level)
                    if t is None:
                        break
                    if unmarked and (unmarked >= 1.0 or rng.random() < unmarked):
                        t.marked = False
                    self.unlink(t, name)
                    if w.get("cpu_flush"):
                        yield env.timeout(w["cpu_flush"])
                    yield from self.pagetable_free(t, cpu, atomic)
                if w.get("tlb_flush_all"):  # hot-remove: after the frees
                    yield env.timeout(w["tlb_flush_all"])
            self.in_op -= 1
            self.task_leave(cpu, atomic)

    # -- running ---------------------------------------------------------------------------------
    def quiet(self) -> bool:
        return self.in_flight == 0 and self.in_op == 0 and not self.work_pending and not self.work_running

    def run(self) -> dict[str, Any]:
        # The explorer runs every event at or before the time it stops at; SimPy stops before
        # the events at ``until``: stop one nanosecond later.
        # After the workloads stop, the run ends right after the event that leaves nothing queued.
        env = self.env
        env.run(until=self.duration + 1)
        end = self.duration + self.drain
        while not self.quiet() and env.peek() <= end:
            env.step()
        return {
            "flushes": self.flushes,
            "worker_runs": self.worker_runs,
            "kernel_tables_unlinked": self.unlinked,
            "kernel_tables_freed": self.kernel_freed,
            "user_tables_freed": self.user_freed,
            "use_after_free": self.violations["use_after_free"],
            "stale_walk_free": self.violations["stale_walk_free"],
            "sleep_in_atomic": self.violations["sleep_in_atomic"],
            "leaked": self.in_flight,
            "stale_walk_queued": self.stale_queued,
            "cache_hits": self.hits,
            "cache_misses": self.misses,
        }


def explorer_figures(metrics: dict[str, Any]) -> dict[str, Any]:
    """The same figures from an explorer run's metrics."""
    v = metrics["violations"]
    return {
        "flushes": metrics["flushes"],
        "worker_runs": metrics["worker_runs"],
        "kernel_tables_unlinked": metrics["kernel_tables_unlinked"],
        "kernel_tables_freed": metrics["kernel_tables_freed"],
        "user_tables_freed": metrics["user_tables_freed"],
        "use_after_free": v["use_after_free"]["total"],
        "stale_walk_free": v["stale_walk_free"]["total"],
        "sleep_in_atomic": v["sleep_in_atomic"]["total"],
        "leaked": v["leaked"]["total"],
        "stale_walk_queued": metrics["stale_walk_queued"]["total"],
        "cache_hits": sum(u["hits"] for u in metrics["iommus"]),
        "cache_misses": sum(u["misses"] for u in metrics["iommus"]),
    }
