"""The simulated machine as it boots, built once per process per shape and copied for each run.

At boot the kernel maps each of its ``kernel_slots`` slots through a new page table (slot ``s``
allocated on CPU ``s % cpus``) and half the memory is handed out as other people's data. None of
that depends on the seed, the strategy or the IOMMU model, only on ``(pages, cpus, kernel_slots)``,
yet done table by table it was most of a short run's set-up (``make bench``, section 8: the path a
sweep's and a hunt's worker take thousands of times). So the first run of a shape boots it the
long way (:class:`Memory` and :class:`AddressSpace` exactly as before) and keeps that as the shape's
*boot image*; every run copies the image (flat lists copied at C speed, a fresh table per slot),
which gives the same pages, lists and tables, hence the same results bit for bit
(``tests/test_machine.py`` compares a copy with a machine booted the long way).
"""

from __future__ import annotations

import threading
from random import Random

from explorer.sim.engine import Engine
from explorer.sim.memory import Memory
from explorer.sim.space import AddressSpace

#: how many boot images a process keeps (a sweep over ``kernel.pages`` boots each shape anew)
IMAGES_KEPT = 4
#: larger machines are booted the long way every run: an image of 10**7 pages would hold about
#: 600 MB for the life of the process, and a run of such a machine is long beside its boot anyway
IMAGE_MAX_PAGES = 1 << 20

_images: dict[tuple[int, int, int], tuple[Memory, AddressSpace]] = {}
_lock = threading.Lock()


def _boot(pages: int, cpus: int, kernel_slots: int, engine: Engine, slot_refill_ns: int,
          rng_refill: Random) -> tuple[Memory, AddressSpace]:
    """Boot the machine the long way: map every kernel slot, then hand out half the memory as data
    (raises :class:`~explorer.sim.errors.OutOfMemory` when the pages do not suffice)."""
    memory = Memory(pages, cpus)
    space = AddressSpace(memory, engine, kernel_slots, cpus, slot_refill_ns, rng_refill)
    # Half the memory starts out as other people's data, so background frees have work.
    memory.fill_data(pages // 2)
    return memory, space


def boot_machine(pages: int, cpus: int, kernel_slots: int, engine: Engine, slot_refill_ns: int,
                 rng_refill: Random) -> tuple[Memory, AddressSpace]:
    """A machine of this shape as it boots, for one run on ``engine`` (see the module docstring)."""
    if pages > IMAGE_MAX_PAGES:
        return _boot(pages, cpus, kernel_slots, engine, slot_refill_ns, rng_refill)
    key = (pages, cpus, kernel_slots)
    with _lock:  # runs in threads of one process (a Dask worker, a hunt's rounds) share the images
        image = _images.get(key)
        if image is None:
            # the image's own engine and stream are never used: each copy gets the run's
            image = _boot(pages, cpus, kernel_slots, Engine(), 0, Random(0))
            if len(_images) >= IMAGES_KEPT:
                del _images[next(iter(_images))]
            _images[key] = image
    # an image is never changed once kept, so copies need no lock
    memory = image[0].copy()
    return memory, image[1].copy(memory, engine, slot_refill_ns, rng_refill)


def kept_shapes() -> list[tuple[int, int, int]]:
    """The ``(pages, cpus, kernel_slots)`` of the boot images this process keeps, oldest first."""
    with _lock:
        return list(_images)


def forget_images() -> None:
    """Drop every boot image this process keeps (tests; a long-lived process that wants the memory)."""
    with _lock:
        _images.clear()
