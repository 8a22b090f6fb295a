"""Every random stream of a run, how it is derived from ``run.seed``, and the exponential gap.

One place for both, so a stream is never derived twice or two ways by accident. A run's draws
are split into independent streams so that what one part of the model does never shifts another's
draws: a workload draws the same arrivals, CPUs and tables whatever the strategy or the IOMMU
model does with them, and two strategies compared on one seed see the identical unlinks.

How each stream's seed is made (three schemes, kept as they were so every result stays the same
bit for bit; a new stream should use :func:`stream_seed` with a new name):

==========================  ==============================================================
``kernel/refill``,          :func:`stream_seed` (``seed * 1_000_003 ^ crc32(name)``): named
``kernel/background``,      streams of the machine
``iommu/bind``,
``workload/<label>``
a workload's sub-streams    :func:`workload_streams`: its own seed ``^ 0x5EED_0001`` (arrival
                            times), ``^ 0x5EED_0002`` (CPUs), ``^ 0x5EED_0003`` (table picks);
                            the seed itself is the stream a plugin is handed (``w.rng``)
IOMMU ``i``'s devices       :func:`iommu_streams`: ``seed * 7919 + 1000 + i`` (user-address
                            walks) and ``+ 2000 + i`` (kernel probes)
==========================  ==============================================================

The gap of a Poisson stream is :func:`exp_gap`: an exponentially distributed number of
nanoseconds, at least 1. Its formula is ``Random.expovariate``'s own (CPython's since 3.0;
``tests/test_engine.py`` checks they agree), written out so the hot loops (the background lane in
``engine.py``, the device walks and probes in ``iommu.py``) can inline it exactly: a function call
costs more than the arithmetic there. Those inlined copies say ``exp_gap, inlined``; keep them in
step with this one.
"""

from __future__ import annotations

import random
import zlib
from math import log

# The seed arithmetic of each scheme (see the table above).
_SUB_TIME, _SUB_CPU, _SUB_PICK = 0x5EED_0001, 0x5EED_0002, 0x5EED_0003
_SUB_SEEDS = (0, _SUB_TIME, _SUB_CPU, _SUB_PICK)  # own (the seed itself), time, cpu, pick
_IOMMU_MUL, _IOMMU_WALK, _IOMMU_PROBE = 7919, 1000, 2000


def stream_seed(seed: int, name: str) -> int:
    """A seed for one named random stream: independent of every other stream and of hash salt."""
    return (seed * 1_000_003) ^ zlib.crc32(name.encode())


def named_stream(seed: int, name: str) -> random.Random:
    """The random stream ``name`` of the run with seed ``seed``."""
    return random.Random(stream_seed(seed, name))


class WorkloadStreams:
    """A workload source's streams: its own (handed to the plugin) and three the kernel draws from
    for it. Arrival times, CPUs and table picks each have their own stream, so an operation that
    draws more tables does not move the next arrival.

    Each is made when first asked for and then kept: seeding a Mersenne Twister costs about as
    much as a thousand draws, and a short run (a sweep's or a hunt's) never draws from several of
    them. A stream's draws depend only on its seed, so when it is made changes nothing.
    """

    __slots__ = ("_made", "seed")

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._made: list[random.Random | None] = [None, None, None, None]

    def _stream(self, i: int) -> random.Random:
        rng = self._made[i]
        if rng is None:
            rng = self._made[i] = random.Random(self.seed ^ _SUB_SEEDS[i])
        return rng

    @property
    def own(self) -> random.Random:
        """The source's own stream (``w.rng``)."""
        return self._stream(0)

    @property
    def time(self) -> random.Random:
        """Arrival times."""
        return self._stream(1)

    @property
    def cpu(self) -> random.Random:
        """The CPU of each operation."""
        return self._stream(2)

    @property
    def pick(self) -> random.Random:
        """Which linked tables an operation takes."""
        return self._stream(3)


def workload_streams(seed: int, label: str) -> WorkloadStreams:
    """The streams of the workload source labelled ``label`` (``vmalloc-huge``, ``script#1``)."""
    return WorkloadStreams(stream_seed(seed, "workload/" + label))


def iommu_streams(seed: int, index: int) -> tuple[random.Random, random.Random]:
    """IOMMU ``index``'s device streams: (user-address walks, kernel-address probes)."""
    base = seed * _IOMMU_MUL
    return random.Random(base + _IOMMU_WALK + index), random.Random(base + _IOMMU_PROBE + index)


def exp_gap(rng: random.Random, rate_per_s: float) -> int:
    """The gap in ns to the next event of a Poisson stream of ``rate_per_s`` (>= 1 ns):
    ``int(rng.expovariate(rate_per_s) * 1e9) + 1``, with ``expovariate``'s formula written out."""
    return int(-log(1.0 - rng.random()) / rate_per_s * 1e9) + 1
