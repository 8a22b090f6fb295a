"""The queues themselves: the pending list with ages, the work items, and each IOMMU's cache."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from explorer.tui import fmt

STATE_STYLE = {"idle": "dim", "pending": "yellow", "running": "bold green", "running+pending": "bold yellow"}


def bar(used: int, cap: int, width: int = 10) -> str:
    if cap <= 0:
        return ""
    n = round(width * min(1.0, used / cap))
    return "█" * n + "░" * (width - n)


class QueuesView(Static):
    """Work items (idle / pending / running), IOMMU caches (occupancy, stale entries) and the
    pending list (each queued table with its age)."""

    DEFAULT_CSS = """
    QueuesView { height: auto; }
    """

    def set_data(self, data: dict[str, Any]) -> None:
        parts: list[Any] = []
        work = Table(box=None, pad_edge=False, header_style="bold", title="workqueue", title_justify="left",
                     title_style="bold")
        work.add_column("work item")
        work.add_column("state")
        work.add_column("runs", justify="right")
        for w in data.get("work_items") or []:
            work.add_row(str(w.get("name")), Text(str(w.get("state")), style=STATE_STYLE.get(str(w.get("state")), "")),
                         fmt.count(w.get("runs")))
        if not data.get("work_items"):
            work.add_row(Text("(none: this strategy uses no work item)", style="dim"), "", "")
        parts.append(work)

        io = Table(box=None, pad_edge=False, header_style="bold", title="IOMMU paging-structure caches",
                   title_justify="left", title_style="bold")
        for col, just in (("#", "right"), ("occupancy", "left"), ("kernel", "right"), ("stale", "right"),
                          ("hit rate", "right"), ("flushes", "right"), ("probes", "right")):
            io.add_column(col, justify=just, no_wrap=True)  # type: ignore[arg-type]
        for u in data.get("iommus") or []:
            stale = int(u.get("stale_entries", 0))
            cap, used = int(u.get("capacity", 0)), int(u.get("entries", 0))
            io.add_row(str(u.get("index")), f"{bar(used, cap)} {used}/{cap}", fmt.count(u.get("kernel_entries")),
                       Text(fmt.count(stale), style="bold red" if stale else ""), fmt.pct(u.get("hit_rate")),
                       fmt.count(u.get("invalidations")), fmt.count(u.get("probes")))
        if not data.get("iommus"):
            io.add_row("", Text("(no IOMMU with an SVA-bound mm)", style="dim"), "", "", "", "", "")
        parts.append(Text(""))
        parts.append(io)

        pend = data.get("pending_list") or []
        total = int(data.get("tables_pending", len(pend)))
        pl = Table(box=None, pad_edge=False, header_style="bold", title_justify="left", title_style="bold",
                   title=f"pending list: {total} table{'s' if total != 1 else ''}"
                   + (f" (oldest {len(pend)} shown)" if total > len(pend) else ""))
        for col in ("pfn", "slot", "level", "source", "age"):
            pl.add_column(col, justify="right" if col != "source" else "left", no_wrap=True)
        for p in pend:
            pl.add_row(str(p.get("pfn")), str(p.get("slot")), str(p.get("level")), str(p.get("source")),
                       fmt.ns(p.get("age_ns")))
        parts.append(Text(""))
        parts.append(pl)
        self.update(Group(*parts))
