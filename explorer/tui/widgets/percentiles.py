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

    _key: tuple | None = None
    _shape: bool | None = None

    def set_data(self, data: dict[str, Any]) -> None:
        rows = [(label, fmt.count((data.get(key) or {}).get("count", 0)), fmt.ns((data.get(key) or {}).get("p50")),
                 fmt.ns((data.get(key) or {}).get("p99")), fmt.ns((data.get(key) or {}).get("max")))
                for key, label, _ in ROWS]
        extra = []
        cache = data.get("cache") or {}
        if cache:
            extra.append(f"cache hit {fmt.pct(cache.get('hit_rate'))}")
        queue = data.get("queue") or {}
        if queue:
            extra.append(f"peak queue {queue.get('peak', 0)}")
        if "worker_runs" in data:
            extra.append(f"worker runs {fmt.count(data['worker_runs'])}")
        key = (tuple(rows), tuple(extra))
        if key == self._key:  # what it shows has not changed: no redraw
            return
        self._key = key
        layout = self._shape != bool(extra)  # the height changes only with the extra line
        self._shape = bool(extra)
        t = Table(box=None, expand=True, pad_edge=False, header_style="bold")
        # the labels whole (the longest fits the 54-column side pane); the numbers are at most 6 wide
        t.add_column("percentiles", no_wrap=True, overflow="ellipsis", ratio=1,
                     min_width=max(len(label) for _, label, _ in ROWS))
        for col in ("n", "p50", "p99", "max"):
            t.add_column(col, justify="right", no_wrap=True, min_width=6 if col != "n" else 5)
        for row in rows:
            t.add_row(*row)
        if extra:
            from rich.console import Group
            from rich.text import Text

            self.update(Group(t, Text(" · ".join(extra), style="dim", overflow="ellipsis", no_wrap=True)),
                        layout=layout)
            return
        self.update(t, layout=layout)
