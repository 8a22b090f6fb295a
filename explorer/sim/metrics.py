"""Streaming metrics in bounded memory: counters by source, log histograms, decimated series."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# Sub-buckets per power of two: relative error of a reported percentile is below 1/64.
_SUB_BITS = 6
_SUB = 1 << _SUB_BITS


class LogHistogram:
    """Percentiles of non-negative integers with bounded relative error and bounded memory.

    Values below 64 are exact; above, each power of two is split into 64 buckets. ``max`` and
    ``min`` are exact. A reported percentile is the upper edge of its bucket, capped at ``max``.
    """

    __slots__ = ("buckets", "count", "max", "min", "total")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.total = 0
        self.max = 0
        self.min = 0

    @staticmethod
    def _index(v: int) -> int:
        if v < _SUB:
            return v
        shift = v.bit_length() - _SUB_BITS - 1
        return ((shift + 1) << _SUB_BITS) + ((v >> shift) - _SUB)

    @staticmethod
    def _upper(idx: int) -> int:
        if idx < _SUB:
            return idx
        shift = (idx >> _SUB_BITS) - 1
        return (((idx & (_SUB - 1)) + _SUB + 1) << shift) - 1

    def record(self, v: int) -> None:
        if v < _SUB:
            if v < 0:
                v = 0
            idx = v
        else:  # _index(), inlined: this runs for every table freed
            shift = v.bit_length() - _SUB_BITS - 1
            idx = ((shift + 1) << _SUB_BITS) + ((v >> shift) - _SUB)
        b = self.buckets
        b[idx] = b.get(idx, 0) + 1
        if v < self.min or not self.count:
            self.min = v
        self.count += 1
        self.total += v
        if v > self.max:
            self.max = v

    @classmethod
    def merged(cls, hists: Iterable[LogHistogram]) -> LogHistogram:
        """One histogram of every value recorded in ``hists``: exactly what recording them all in one gives."""
        out = cls()
        b = out.buckets
        for h in hists:
            if not h.count:
                continue
            for idx, n in h.buckets.items():
                b[idx] = b.get(idx, 0) + n
            if h.min < out.min or not out.count:
                out.min = h.min
            out.count += h.count
            out.total += h.total
            if h.max > out.max:
                out.max = h.max
        return out

    def percentile(self, p: float) -> int:
        """The smallest bucket edge below which at least ``p`` percent of the values lie."""
        if self.count == 0:
            return 0
        rank = max(1, -(-int(p * self.count) // 100)) if p < 100 else self.count
        seen = 0
        for idx in sorted(self.buckets):
            seen += self.buckets[idx]
            if seen >= rank:
                return min(self._upper(idx), self.max)
        return self.max

    def summary(self) -> dict[str, int]:
        return {
            "count": self.count,
            "min": self.min,
            "p50": self.percentile(50),
            "p99": self.percentile(99),
            "max": self.max,
            "mean": self.total // self.count if self.count else 0,
        }


class TimeSeries:
    """Per-interval maximum (``max``) or sum (``sum``) over simulated time in at most ``size`` bins.

    When time runs past the last bin, neighbouring bins are merged and the bin width doubles,
    so memory stays fixed however long the run.
    """

    __slots__ = ("_is_max", "bins", "mode", "size", "width")

    def __init__(self, size: int = 256, width: int = 100_000, mode: str = "max") -> None:
        self.size = size
        self.width = width
        self.mode = mode
        self._is_max = mode == "max"
        self.bins: list[int] = [0]

    def add(self, t: int, v: int) -> None:
        i = t // self.width
        bins = self.bins
        if i >= len(bins):
            while i >= self.size:
                self._halve()
                i = t // self.width
            bins = self.bins
            if i >= len(bins):
                bins.extend([0] * (i + 1 - len(bins)))
        if self._is_max:
            if v > bins[i]:
                bins[i] = v
        else:
            bins[i] += v

    def _halve(self) -> None:
        b = self.bins
        if self.mode == "max":
            self.bins = [max(b[i : i + 2]) for i in range(0, len(b), 2)]
        else:
            self.bins = [sum(b[i : i + 2]) for i in range(0, len(b), 2)]
        self.width *= 2

    def as_dict(self) -> dict[str, Any]:
        return {"bin_ns": self.width, "values": list(self.bins)}


class BySource:
    """A counter with a per-source breakdown (every violation carries its workload source)."""

    __slots__ = ("by_source", "total")

    def __init__(self) -> None:
        self.total = 0
        self.by_source: dict[str, int] = {}

    def add(self, source: str, n: int = 1) -> None:
        self.total += n
        self.by_source[source] = self.by_source.get(source, 0) + n

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, "by_source": dict(sorted(self.by_source.items()))}
