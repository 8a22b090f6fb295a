"""Determinism, and that every performance shortcut leaves the results exactly as they were.

A run is its config and seed: two runs, or one run stepped in any way, give the same numbers bit
for bit. The simulator takes shortcuts for speed (docs/performance.md): background page traffic is
an engine *lane* run in a tight loop instead of through the heap, and the device probe and walk
paths inline the cache and random-number calls. Each shortcut is checked here against the plain
implementation it replaced (kept below as the reference), on configs that exercise every path
(``tests/benchmarks/cases.py``), so the check is re-derived on every run and never against a stored
golden file. No test here measures time.
"""

from __future__ import annotations

import heapq
import random
from typing import Any

import pytest

from explorer.sim import iommu as iommu_mod
from explorer.sim import kernel as kernel_mod
from explorer.sim.build import Simulation
from explorer.sim.engine import NEVER, Engine
from explorer.sim.memory import Memory
from explorer.sim.streams import exp_gap
from tests.benchmarks.cases import canonical, cases, outcome, registry

ALL = cases()
#: A spread of the cases: every strategy, both probe targets, the odd machines and the test plugins.
QUICK = ["deferred-adversarial-1", "sync-uniform-7", "sync-unsafe-adversarial-1", "batched-uniform-1",
         "batched-small", "holes", "set-assoc", "small-machine", "zero-delays", "test-buggy", "never-frees",
         "steady-atomic", "many-cpus", "no-background", "tie-storm", "vtd-sync", "amd-deferred",
         "storm-preempt", "v3-tlb"]


# -- the plain implementations the fast paths replaced --------------------------------------------


def _reference_background(self: Any, rate: float) -> None:
    """Kernel.start_background as it was: two self-rescheduling heap events."""
    if rate <= 0:
        return
    _heap_background(self.engine, self.memory, self.rng_bg, rate, self.cpus)


def _heap_background(eng: Engine, mem: Memory, rng: random.Random, rate: float, cpus: int) -> None:
    """The background page traffic as two self-rescheduling heap events (what the lane replaced)."""

    def bg_alloc(_: Any = None) -> None:
        mem.alloc_data(int(rng.random() * cpus))
        eng.call_in(int(rng.expovariate(rate) * 1e9) + 1, bg_alloc)

    def bg_free(_: Any = None) -> None:
        mem.free_oldest_data(int(rng.random() * cpus))
        eng.call_in(int(rng.expovariate(rate) * 1e9) + 1, bg_free)

    eng.call_in(int(rng.expovariate(rate) * 1e9) + 1, bg_alloc)
    eng.call_in(int(rng.expovariate(rate) * 1e9) + 1, bg_free)


def _reference_catch_up(self: Any, t: int) -> None:
    """IommuUnit.catch_up as it was: through SetAssocLRU.lookup()/insert() and expovariate()."""
    if self.next_walk < 0 or self.next_walk > t:
        return
    rng = self.rng_walk
    mms, slots, rate = self.bound_mms, self.user_slots, self.walk_rate
    nxt = self.next_walk
    caches = [(self.caches[lv], 9 * i) for i, lv in enumerate(self._levels)]
    hits = misses = walks = 0
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
        nxt += int(rng.expovariate(rate) * 1e9) + 1
    self.next_walk = nxt
    self.hits += hits
    self.misses += misses
    self.walks += walks


def _reference_probe(self: Any, _: Any = None) -> None:
    """IommuUnit.probe as it was: method calls all the way, rescheduled through call_in()."""
    sp = self.space
    now = self.engine.now
    self.catch_up(now)
    rng = self.rng_probe
    self.probes += 1
    mm = int(rng.random() * self.probe_mms)
    recent = sp.recent_unlinked
    if self.adversarial and recent and rng.random() < 0.5:
        slot = recent[int(rng.random() * len(recent))]
    else:
        slot = int(rng.random() * sp.kernel_slots)
    if self.walks_kernel_half:
        key = mm * sp.kernel_slots + slot
        cache = self.cache_for(sp.slot_level[slot])
        entry = cache.lookup(key)
        if entry is not None:
            self.hits += 1
            if not entry.linked:
                self.checker.stale_walk(self, mm, slot, entry)
        else:
            self.misses += 1
            table = sp.slot_table[slot]
            if table is not None:
                cache.insert(key, table)
    self.engine.call_in(int(rng.expovariate(self.probe_rate) * 1e9) + 1, self.probe)


def _plain(m: pytest.MonkeyPatch) -> None:
    """Swap every fast path for its plain reference implementation."""
    m.setattr(kernel_mod.Kernel, "start_background", _reference_background)
    m.setattr(iommu_mod.IommuUnit, "catch_up", _reference_catch_up)
    m.setattr(iommu_mod.IommuUnit, "probe", _reference_probe)


# -- tests ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", QUICK)
def test_same_config_same_numbers(name: str) -> None:
    first = outcome(ALL[name])
    assert first["invariants"] == []
    assert canonical(outcome(ALL[name])) == canonical(first)


@pytest.mark.parametrize("name", ["deferred-adversarial-1", "batched-small", "test-buggy", "holes", "storm-preempt",
                                  "v3-tlb"])
def test_stepping_does_not_change_the_numbers(name: str) -> None:
    whole = outcome(ALL[name])
    stepped = outcome(ALL[name], stepped=True)
    assert canonical(stepped["metrics"]) == canonical(whole["metrics"])
    assert stepped["invariants"] == []
    assert stepped["trace"], "the stepped run keeps a trace"


@pytest.mark.pure_core
@pytest.mark.parametrize("name", QUICK)
def test_fast_paths_match_the_plain_implementation(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = outcome(ALL[name])
    _plain(monkeypatch)
    slow = outcome(ALL[name])
    assert canonical(fast) == canonical(slow)


@pytest.mark.pure_core
@pytest.mark.parametrize("name", ["deferred-adversarial-1", "batched-small", "test-buggy"])
def test_fast_paths_match_when_stepped_and_traced(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Snapshots, trace lines and examples too, with the run advanced in small uneven steps."""
    fast = outcome(ALL[name], stepped=True)
    _plain(monkeypatch)
    slow = outcome(ALL[name], stepped=True)
    assert canonical(fast) == canonical(slow)


@pytest.mark.pure_core
@pytest.mark.parametrize("name", ["small-machine", "tie-storm"])
def test_memory_state_matches_the_plain_background_traffic(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Page by page: the allocator after a run, lane against heap events."""
    cfg = ALL[name]

    def memory_after() -> tuple[Any, ...]:
        sim = Simulation(cfg, registry())
        sim.run()
        mem = sim.kernel.memory
        return (bytes(mem.state), [list(f) for f in mem.free_lists], mem.zone_next, mem.data_pages(),
                mem.free_count, [mem.allocated_by(p) for p in range(mem.pages)], sorted(mem.owner))

    fast = memory_after()
    monkeypatch.setattr(kernel_mod.Kernel, "start_background", _reference_background)
    assert memory_after() == fast


def test_invariants_hold_in_every_case() -> None:
    for name, cfg in ALL.items():
        sim = Simulation(cfg, registry())
        m = sim.run()
        k = sim.kernel
        assert sim.invariant_problems() == [], name
        assert k.stats.unlinked_total == k.stats.freed_total + len(k.pending), name
        assert m["kernel_tables_freed"] + m["user_tables_freed"] == k.stats.freed_total, name
        assert m["events"] == sim.engine.events > 0, name
        assert m["tables_pending"] == m["violations"]["leaked"]["total"] or not sim.finished, name


# -- the engine's lane ------------------------------------------------------------------------------


def _random_chains(rng: random.Random, n: int, length: int, span: int) -> list[list[int]]:
    out = []
    for _ in range(n):
        t = rng.randrange(span)
        ts = []
        for _ in range(length):
            ts.append(t)
            t += rng.choice((0, 0, 1, 1, 2, 3, 5))  # many ties, and zero gaps
        out.append(ts)
    return out


def _lane_against_heap(seed: int, as_lane: bool, stop_after: int = 0) -> list[Any]:
    """Heap chains that look at the allocator at every event, beside background traffic at 1e9/s
    (gaps of 1 or 2 ns: ties with the chains at every turn), run as the engine's lane or as heap
    events, in uneven steps; with ``stop_after``, up to the event that makes the log that long."""
    rng = random.Random(seed)
    chains = _random_chains(rng, 4, 40, 20)
    eng = Engine()
    mem = Memory(512, 3)
    for i in range(256):
        mem.alloc_data(i % 3)
    log: list[Any] = []

    def chain(i: int, ts: list[int]) -> Any:
        def fire(j: int) -> None:
            log.append((i, eng.now, mem.free_count, mem.data_count, bytes(mem.state)))
            if j + 1 < len(ts):
                eng.call_at(ts[j + 1], fire, j + 1)

        return fire

    # Interleave the set-up of both kinds, as a simulation does.
    for i, ts in enumerate(chains[:2]):
        eng.call_at(ts[0], chain(i, ts), 0)
    if as_lane:
        eng.add_background(mem, random.Random(seed), 1e9, 3)
    else:
        _heap_background(eng, mem, random.Random(seed), 1e9, 3)
    for i, ts in enumerate(chains[2:], start=2):
        eng.call_at(ts[0], chain(i, ts), 0)
    t = 0
    while t < 400:
        t += rng.choice((1, 3, 7, 50))
        if stop_after:
            if eng.run_until_true(t, lambda: len(log) >= stop_after):
                break
        else:
            eng.run(t)
    log.append(("end", eng.now, mem.free_count, mem.data_pages(), [list(f) for f in mem.free_lists]))
    return log


@pytest.mark.parametrize("seed", range(12))
def test_lane_runs_in_exact_heap_order(seed: int) -> None:
    assert _lane_against_heap(seed, True) == _lane_against_heap(seed, False)


@pytest.mark.parametrize("seed", range(4))
def test_lane_stops_where_the_heap_does(seed: int) -> None:
    """run_until_true: the same loop, stopping right after the event that makes done() true."""
    assert _lane_against_heap(seed, True, stop_after=37) == _lane_against_heap(seed, False, stop_after=37)


def test_engine_next_time_and_events_see_the_lane() -> None:
    eng = Engine()
    mem = Memory(16, 1)
    lane = eng.add_background(mem, random.Random(3), 1e6, 1)  # gaps of about 1 us
    first = lane.next_t
    assert 0 < first < NEVER
    eng.call_at(first + 10_000_000, lambda _: None)
    assert eng.next_time() == first
    eng.run(first)
    assert eng.events == 1 and eng.next_time() == lane.next_t > first


def test_an_engine_without_background_runs_to_any_time() -> None:
    eng = Engine()
    log: list[Any] = []
    eng.call_at(5, log.append, "x")
    eng.run(NEVER)
    assert log == ["x"] and eng.now == NEVER and eng.events == 1


def test_exp_gap_is_expovariate() -> None:
    """The lane, the walks and the probes inline exp_gap's formula: it must be Python's own."""
    a, b = random.Random(12345), random.Random(12345)
    assert all(exp_gap(a, r) == int(b.expovariate(r) * 1e9) + 1 for r in (3.7, 20000.0, 1e9, 0.001) * 50)


def test_heap_reference_is_plain_heapq() -> None:
    """The tie rule the lane reproduces: time, then insertion order."""
    heap: list[tuple[int, int, str]] = []
    for seq, (t, name) in enumerate([(5, "a"), (3, "b"), (5, "c"), (3, "d")]):
        heapq.heappush(heap, (t, seq, name))
    assert [heapq.heappop(heap)[2] for _ in range(4)] == ["b", "d", "a", "c"]


@pytest.mark.parametrize("before", ["nothing", "a table freed", "data pages"])
def test_fill_data_is_alloc_data_in_turn(before: str) -> None:
    """The boot-time bulk fill gives exactly the pages, order and states of alloc_data on each CPU in
    turn (and falls back to it once a CPU has pages of its own to hand out first, or data pages are
    in the ring already)."""

    def memory() -> Memory:
        mem = Memory(300, 3)
        tables = [mem.alloc_table(i % 3, 1, True, i, "kernel") for i in range(7)]
        if before == "a table freed":
            mem.free(tables[2].page, 1)
        elif before == "data pages":
            for cpu in (2, 0, 1):
                mem.alloc_data(cpu)
            mem.free_oldest_data(0)
            mem.alloc_data(0)  # takes back the page just freed: CPU 0's list is empty again
        return mem

    bulk, loop = memory(), memory()
    bulk.fill_data(150)
    for i in range(150):
        loop.alloc_data(i % 3)

    def seen(m: Memory) -> tuple[Any, ...]:
        return (bytes(m.state), m.data_pages(), [m.allocated_by(p) for p in range(m.pages)], m.zone_next,
                m.free_lists, m.free_count, m.check())

    assert seen(bulk) == seen(loop)
    assert bulk.check() == []


def test_memory_check_catches_an_owner_left_on_a_free_page() -> None:
    mem = Memory(64, 2)
    table = mem.alloc_table(0, 1, True, 0, "test")
    mem.free(table.page, 0)
    assert mem.check() == []
    mem.owner[table.page] = table
    assert any("owner" in p for p in mem.check())


@pytest.mark.parametrize("name", QUICK)
def test_reading_the_metrics_does_not_change_them(name: str) -> None:
    # The TUI reads snapshots whenever it likes; the CLI reads once at the end. Both must agree,
    # so a read may not move lazily replayed state (device walks) that the next read reports.
    sim = Simulation(ALL[name], registry())
    first = sim.run()
    sim.snapshot()
    assert canonical(sim.metrics()) == canonical(first)


def test_a_snapshot_at_every_step_does_not_change_the_numbers() -> None:
    whole = Simulation(ALL["batched-uniform-1"], registry()).run()
    sim = Simulation(ALL["batched-uniform-1"], registry())
    step = max(1, sim.end_ns // 211)
    while not sim.finished:
        sim.advance(sim.now + step)
        sim.snapshot()
    assert canonical(sim.metrics()) == canonical(whole)


def _reference_trace_line(record: tuple[int, str, dict[str, Any]]) -> str:
    """trace_line as it was, before it kept a %-format per trace site."""
    t, what, fields = record
    cpu = fields.get("cpu", 0)
    rest = " ".join(f"{k}={v}" for k, v in fields.items() if k != "cpu")
    return f"[{cpu:03d}] {t / 1e9:12.6f}: {what}: {rest}"


@pytest.mark.parametrize("record", [
    (0, "flush_start", {"cpu": 3, "mms": 16, "source": "kworker"}),
    (1_234_567_891_500, "free", {"pfn": 7, "source": "script#1", "age_ns": 0, "by": "caller"}),
    (999_999_999_999_500, "violation", {"kind": "use_after_free", "ok": True, "x": 1.5, "none": None, "cpu": 127}),
    (5, "odd%event", {"cpu": 1, "a%": "100%", "weird key": "v", "s": "%(cpu)s"}),
    (7, "empty", {}),
])
def test_trace_lines_are_what_they_were(record: tuple[int, str, dict[str, Any]]) -> None:
    from explorer.sim.build import trace_line

    for _ in range(2):  # the first makes the site's format, the second uses it
        assert trace_line(record) == _reference_trace_line(record)
