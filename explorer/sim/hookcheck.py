"""Checks on what an IOMMU model's hooks return, so a wrong value fails the run as that model's
fault (exit 1, naming it) instead of a raw traceback or an error blamed on the strategy that
happened to be flushing when the kernel used the value."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from explorer.contract import CacheLevel, FlushCost, SharedCache
from explorer.sim.engine import PluginError

#: The largest cache a model may declare per level (a set list is allocated for it up front).
MAX_CACHE_ENTRIES = 1 << 20
_COUNTS = ("duration_ns", "effective_ns", "stall_ns", "stalls", "wait_ns")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _bad(name: str, message: str) -> PluginError:
    return PluginError("iommu", name, TypeError(message))


def check_flush_cost(cost: Any, name: str) -> FlushCost:
    """``cost`` as returned by ``invalidate_kernel_range()`` of model ``name``, or PluginError."""
    if not isinstance(cost, FlushCost):
        raise _bad(name, f"invalidate_kernel_range() must return a FlushCost, got {type(cost).__name__}: "
                   f"{_short(cost)}")
    for field in _COUNTS:
        v = getattr(cost, field)
        if not _is_number(v) or v < 0:
            raise _bad(name, f"invalidate_kernel_range() returned FlushCost.{field} = {_short(v)}: expected a "
                       "finite number >= 0")
    if not isinstance(cost.commands, Mapping) or not all(
        isinstance(k, str) and isinstance(n, int) and not isinstance(n, bool) for k, n in cost.commands.items()
    ):
        raise _bad(name, f"invalidate_kernel_range() returned FlushCost.commands = {_short(cost.commands)}: "
                   "expected a dict of command name -> count")
    if cost.scope not in ("pasid", "kernel"):
        raise _bad(name, f"invalidate_kernel_range() returned FlushCost.scope = {_short(cost.scope)}: "
                   "expected 'pasid' or 'kernel'")
    return cost


def _int_in(v: Any, low: int, high: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def check_geometry(value: Any, name: str) -> tuple[CacheLevel | SharedCache, ...]:
    """What ``cache_geometry()`` of model ``name`` returned, as a tuple of CacheLevel and
    SharedCache, or PluginError."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise _bad(name, f"cache_geometry() must return a sequence of CacheLevel, got {_short(value)}")
    items = tuple(value)
    seen: list[int] = []
    for g in items:
        if isinstance(g, SharedCache):
            levels = g.levels
            if not (isinstance(levels, tuple) and levels and all(_int_in(lv, 1, 5) for lv in levels)):
                raise _bad(name, f"cache_geometry() returned SharedCache.levels = {_short(levels)}: expected a "
                           "non-empty tuple of integers 1..5")
            seen.extend(levels)
        elif isinstance(g, CacheLevel):
            if not _int_in(g.level, 1, 5):
                raise _bad(name, f"cache_geometry() returned CacheLevel.level = {_short(g.level)}: expected an "
                           "integer 1..5")
            seen.append(g.level)
        else:
            raise _bad(name, f"cache_geometry() must return CacheLevel or SharedCache objects, got {_short(g)}")
        for field, low in (("entries", 1), ("ways", 0)):
            v = getattr(g, field)
            if not _int_in(v, low, MAX_CACHE_ENTRIES):
                raise _bad(name, f"cache_geometry() returned {type(g).__name__}.{field} = {_short(v)}: expected "
                           f"an integer {low}..{MAX_CACHE_ENTRIES}")
    if len(set(seen)) != len(seen):
        raise _bad(name, "cache_geometry() returned the same level twice")
    return items


def _short(value: Any, limit: int = 80) -> str:
    try:
        text = repr(value)
    except Exception:  # a plugin's own __repr__ may raise
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
