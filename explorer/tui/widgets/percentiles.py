"""Latency and caller-time percentiles of the current run."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from textual.widgets import Static

from explorer.tui import fmt

ROWS = (
    ("latency_ns", "unlink → free", "time a kernel table waits between unlink and the allocator"),
    ("caller_ns", "caller in free path", "time the caller spends in pagetable_free()"),
    ("flush_ns", "IOMMU flush", "duration of one kernel-range invalidation (all IOMMUs)"),
)


class Percentiles(Static):
    """A small table: count, p50, p99, max and mean of each latency histogram."""

    DEFAULT_CSS = """
    Percentiles { height: auto; }
    """

    def set_data(self, data: dict[str, Any]) -> None:
        t = Table(box=None, expand=True, pad_edge=False, header_style="bold")
        t.add_column("percentiles", no_wrap=True, overflow="ellipsis", ratio=1)
        for col in ("n", "p50", "p99", "max"):
            t.add_column(col, justify="right", no_wrap=True, min_width=7 if col != "n" else 5)
        for key, label, _ in ROWS:
            h = data.get(key) or {}
            t.add_row(label, fmt.count(h.get("count", 0)), fmt.ns(h.get("p50")), fmt.ns(h.get("p99")),
                      fmt.ns(h.get("max")))
        extra = []
        cache = data.get("cache") or {}
        if cache:
            extra.append(f"cache hit {fmt.pct(cache.get('hit_rate'))}")
        queue = data.get("queue") or {}
        if queue:
            extra.append(f"peak queue {queue.get('peak', 0)}")
        if "worker_runs" in data:
            extra.append(f"worker runs {fmt.count(data['worker_runs'])}")
        if extra:
            from rich.console import Group
            from rich.text import Text

            self.update(Group(t, Text(" · ".join(extra), style="dim", overflow="ellipsis", no_wrap=True)))
            return
        self.update(t)
