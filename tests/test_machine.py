"""The machine's boot image (explorer.sim.machine): a run copies the machine as it boots instead of
booting it table by table, and must not be able to tell the difference."""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from explorer.sim.build import BuildError, Simulation
from explorer.sim.engine import Engine
from explorer.sim.machine import IMAGE_MAX_PAGES, IMAGES_KEPT, boot_machine, forget_images, kept_shapes
from explorer.sim.memory import DATA, TABLE, Memory
from explorer.sim.space import AddressSpace
from tests.benchmarks.cases import canonical, cases, outcome, registry


@pytest.fixture(autouse=True)
def no_images() -> Iterator[None]:
    forget_images()
    yield
    forget_images()


def _long_boot(pages: int, cpus: int, slots: int) -> tuple[Memory, AddressSpace]:
    """The boot as the kernel did it before the image: every slot populated, then half the memory as data."""
    memory = Memory(pages, cpus)
    space = AddressSpace(memory, Engine(), slots, cpus, 1000, random.Random(1))
    memory.fill_data(pages // 2)
    return memory, space


def _seen(memory: Memory, space: AddressSpace) -> tuple[Any, ...]:
    tables = [(t.page, t.level, t.kernel, t.marked, t.slot, t.linked, t.freed, t.allocated_by) if t else None
              for t in space.slot_table]
    return (bytes(memory.state), [list(fl) for fl in memory.free_lists], memory.zone_next, memory.data_pages(),
            memory.free_count, sorted((p, t.page, t.slot) for p, t in memory.owner.items()),
            [memory.allocated_by(p) for p in range(memory.pages)], tables, list(space.linked_slots),
            list(space.slot_pos), list(space.slot_level), list(space.recent_unlinked), memory.check())


@pytest.mark.parametrize(("pages", "cpus", "slots"), [(16384, 8, 512), (300, 3, 40), (64, 1, 31), (4096, 128, 64)])
def test_a_copied_machine_is_the_machine_booted_the_long_way(pages: int, cpus: int, slots: int) -> None:
    long = _seen(*_long_boot(pages, cpus, slots))
    first = boot_machine(pages, cpus, slots, Engine(), 1000, random.Random(1))  # makes the image
    second = boot_machine(pages, cpus, slots, Engine(), 1000, random.Random(1))  # copies it
    assert _seen(*first) == long
    assert _seen(*second) == long
    assert kept_shapes() == [(pages, cpus, slots)]
    # numbers worked out by hand: slot s is page s, then pages // 2 data pages follow
    memory, space = second
    assert memory.zone_next == slots + pages // 2
    assert bytes(memory.state[:slots]) == bytes([TABLE]) * slots
    assert bytes(memory.state[slots:slots + pages // 2]) == bytes([DATA]) * (pages // 2)
    assert [t.page for t in space.slot_table if t is not None] == list(range(slots))


def test_copies_share_no_table_and_no_list() -> None:
    a_mem, a_space = boot_machine(300, 3, 40, Engine(), 1000, random.Random(1))
    b_mem, b_space = boot_machine(300, 3, 40, Engine(), 1000, random.Random(1))
    for a, b in zip(a_space.slot_table, b_space.slot_table, strict=True):
        assert a is not None and b is not None
        assert a is not b and a_mem.owner[a.page] is a and b_mem.owner[b.page] is b
    pristine = _seen(b_mem, b_space)
    # a run's worth of changes to the first copy: an unlink, a free, data traffic
    table = a_space.slot_table[5]
    assert table is not None
    table.linked = False
    a_space.take(table)
    a_mem.free(table.page, 2)
    for cpu in range(3):
        a_mem.alloc_data(cpu)
    a_mem.free_oldest_data(1)
    assert a_mem.check() == []
    assert _seen(b_mem, b_space) == pristine
    c_mem, c_space = boot_machine(300, 3, 40, Engine(), 1000, random.Random(1))
    assert _seen(c_mem, c_space) == pristine


def test_the_run_is_handed_its_own_engine_and_refill_stream() -> None:
    boot_machine(300, 3, 40, Engine(), 1000, random.Random(1))
    engine, rng = Engine(), random.Random(7)
    _memory, space = boot_machine(300, 3, 40, engine, 2500, rng)
    assert space.engine is engine and space.rng_refill is rng and space.slot_refill_ns == 2500


def test_the_process_keeps_a_few_images_and_none_of_a_huge_machine() -> None:
    shapes = [(64 * (i + 1), 2, 16) for i in range(IMAGES_KEPT + 1)]
    for pages, cpus, slots in shapes:
        boot_machine(pages, cpus, slots, Engine(), 1000, random.Random(1))
    assert kept_shapes() == shapes[1:]  # the oldest went
    huge = IMAGE_MAX_PAGES + 2
    memory, _space = boot_machine(huge, 2, 16, Engine(), 1000, random.Random(1))
    assert memory.zone_next == 16 + huge // 2 and memory.check() == []
    assert (huge, 2, 16) not in kept_shapes()


def test_a_machine_too_small_to_boot_fails_every_time() -> None:
    cfg = cases()["small-machine"]
    tiny = {**cfg, "kernel": {**cfg["kernel"], "pages": 64, "kernel_slots": 60}}
    for _ in range(2):
        with pytest.raises(BuildError, match=r"kernel\.pages = 64 is too small"):
            Simulation(tiny, registry())
    assert (64, tiny["kernel"]["cpus"], 60) not in kept_shapes()


@pytest.mark.parametrize("name", ["deferred-adversarial-1", "small-machine", "tie-storm", "test-buggy"])
def test_a_run_on_a_copied_machine_gives_the_same_results(name: str) -> None:
    cfg = cases()[name]
    booted = canonical(outcome(cfg))  # the first run of the shape boots the long way
    assert kept_shapes()
    assert canonical(outcome(cfg)) == booted  # the second copies the image


@pytest.mark.parametrize("seed", range(5))
def test_the_data_pages_ring_is_the_fifo_it_replaced(seed: int) -> None:
    """Memory's data pages (a ring in an array as long as the memory) against a deque, through
    many wrap-arounds: allocations, frees of the oldest, table traffic and a copy half-way."""
    from collections import deque

    rng = random.Random(seed)
    mem = Memory(24, 3)
    fifo: deque[int] = deque()
    for step in range(3000):
        op = rng.random()
        if op < 0.45 and mem.free_count:
            fifo.append(mem.alloc_data(rng.randrange(3)))
        elif op < 0.9:
            if fifo:
                fifo.popleft()
            mem.free_oldest_data(rng.randrange(3))
        elif mem.free_count:
            table = mem.alloc_table(rng.randrange(3), 1, False, -1, "t")
            mem.free(table.page, rng.randrange(3))
        if step == 1500:
            mem = mem.copy()
        assert mem.data_pages() == list(fifo)
        assert mem.data_count == len(fifo)
    assert mem.check() == []


def test_threads_booting_many_shapes_at_once_get_correct_machines() -> None:
    """Runs in threads of one process (a Dask worker, a hunt's rounds) share the images."""
    from concurrent.futures import ThreadPoolExecutor

    shapes = [(64 * (i % 7 + 1), 1 + i % 3, 8 + i % 5) for i in range(60)]
    expected = {shape: _seen(*_long_boot(*shape)) for shape in set(shapes)}

    def boot(shape: tuple[int, int, int]) -> bool:
        return _seen(*boot_machine(*shape, Engine(), 1000, random.Random(1))) == expected[shape]

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show up
    try:
        with ThreadPoolExecutor(8) as pool:
            assert all(pool.map(boot, shapes * 3))
    finally:
        sys.setswitchinterval(interval)
    assert len(kept_shapes()) <= IMAGES_KEPT


def test_a_closed_run_is_freed_without_the_cyclic_collector() -> None:
    """A worker closes each run after its metrics: its page tables and finished processes must then
    be freed by reference counting, not left as cyclic garbage that every collection walks again."""
    import gc

    from explorer.config import apply_overrides, default_config

    cfg = apply_overrides(default_config(registry(), "linux-6.19"), ["run.duration=10ms"], registry())
    gc.collect()
    gc.disable()
    try:
        with Simulation(cfg, registry()) as sim:
            metrics = sim.run()
        assert metrics["kernel_tables_freed"] > 0 and sim.closed
        with pytest.raises(RuntimeError, match="closed"):
            sim.metrics()
        sim.advance(sim.end_ns)  # a closed run stays where it is
        del sim
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        left = [type(o).__name__ for o in gc.garbage]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert "PageTable" not in left and not any(n.endswith("Process") for n in left), sorted(set(left))
    assert len(left) < 300, len(left)  # the kernel's own parts (they refer to one another), not its tables
