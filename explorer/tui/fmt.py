"""Number formatting for the dashboards."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from explorer.units import human_duration

SPEED_STEPS: tuple[float, ...] = (1.0, 10.0, 100.0, 1_000.0, 10_000.0, 100_000.0, 1_000_000.0, 0.0)
STEP_SIZES: tuple[int, ...] = (1_000, 10_000, 100_000, 1_000_000)


def ns(value: Any) -> str:
    """Nanoseconds as ``36us``, ``1.23ms``; ``-`` for nothing."""
    if value is None:
        return "-"
    return human_duration(float(value))


def sim_time(value_ns: int) -> str:
    """Simulated time as seconds with microsecond resolution, as in a kernel trace."""
    return f"{value_ns / 1e9:.6f}s"


def speed(us_per_s: float) -> str:
    if us_per_s <= 0:
        return "max"
    if us_per_s >= 1_000_000:
        return f"{us_per_s / 1e6:g} s/s"
    if us_per_s >= 1_000:
        return f"{us_per_s / 1e3:g} ms/s"
    return f"{us_per_s:g} µs/s"


def count(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3g}"
    return f"{int(value):,}"


def pct(value: Any) -> str:
    if value is None:
        return "-"
    return f"{100 * float(value):.1f}%"


def faster(current: float) -> float:
    """The next speed up the ladder (0 = as fast as possible is the top)."""
    if current <= 0:
        return 0.0
    for s in SPEED_STEPS:
        if s <= 0 or s > current:
            return s
    return 0.0


def slower(current: float) -> float:
    if current <= 0:
        return SPEED_STEPS[-2]
    lower = [s for s in SPEED_STEPS if 0 < s < current]
    return lower[-1] if lower else SPEED_STEPS[0]


def violations_total(snapshot_data: dict[str, Any]) -> int:
    v = snapshot_data.get("violations", {})
    return sum(int(x.get("total", 0)) for x in v.values()) if isinstance(v, dict) else 0


def flushes_done(data: Mapping[str, Any]) -> tuple[int, int]:
    """(flushes finished, flushes in progress) of a snapshot. ``flushes`` counts a flush when it
    starts, the flush-latency histogram and the flush series when it ends: the screens count the
    finished ones, so the counter, the chart and the percentiles agree at every moment."""
    started = int(data.get("flushes", 0) or 0)
    hist = data.get("flush_ns")
    done = int(hist.get("count", started)) if isinstance(hist, Mapping) else started
    return done, max(0, started - done)
