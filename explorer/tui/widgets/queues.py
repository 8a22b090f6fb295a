"""The queues themselves: the pending list with ages, the work items, and each IOMMU's cache."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.widgets import Static

from explorer.tui import fmt

STATE_STYLE = {"idle": "dim", "pending": "yellow", "running": "bold green", "running+pending": "bold yellow"}

Cell = str | tuple[str, str]  # text, or (text, style)


def bar(used: int, cap: int, width: int = 10) -> str:
    if cap <= 0:
        return ""
    n = round(width * min(1.0, used / cap))
    return "█" * n + "░" * (width - n)


def columns(out: Text, title: str, headers: Sequence[str], rows: Sequence[Sequence[Cell]], right: Sequence[bool],
            empty: str = "") -> None:
    """Append a titled table of aligned columns to ``out`` (plain text lines: cheap to draw at 10 Hz,
    unlike a Rich table, which measures every cell twice per frame)."""
    if title:
        out.append(title + "\n", style="bold")
    texts = [[c if isinstance(c, str) else c[0] for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in texts)]) for i, h in enumerate(headers)]
    for i, h in enumerate(headers):
        out.append((h.rjust(widths[i]) if right[i] else h.ljust(widths[i])) + ("\n" if i == len(headers) - 1 else " "),
                   style="bold")
    if not rows and empty:
        out.append(empty + "\n", style="dim")
    for row, text in zip(rows, texts, strict=True):
        for i, cell in enumerate(row):
            t = text[i].rjust(widths[i]) if right[i] else text[i].ljust(widths[i])
            out.append(t, style="" if isinstance(cell, str) else cell[1])
            out.append("\n" if i == len(row) - 1 else " ")


class QueuesView(Static):
    """Work items (idle / pending / running), IOMMU caches (occupancy, stale entries) and the
    pending list (each queued table with its age)."""

    DEFAULT_CSS = """
    QueuesView { height: auto; }
    """

    _key: Any = None
    _lines = -1

    def set_data(self, data: dict[str, Any], *, still: bool = False) -> None:
        """Draw ``data``; ``still`` (the run is paused, stopped or finished) fits the height to the
        content again, so what a still run shows does not depend on how long its lists once were."""
        work: list[list[Cell]] = [
            [str(w.get("name")), (str(w.get("state")), STATE_STYLE.get(str(w.get("state")), "")),
             fmt.count(w.get("runs"))]
            for w in data.get("work_items") or []
        ]
        io: list[list[Cell]] = []
        for u in data.get("iommus") or []:
            stale = int(u.get("stale_entries", 0))
            cap, used = int(u.get("capacity", 0)), int(u.get("entries", 0))
            io.append([str(u.get("index")), f"{bar(used, cap)} {fmt.count(used)}/{fmt.count(cap)}",
                       fmt.count(u.get("kernel_entries")),
                       (fmt.count(stale), "bold red" if stale else ""), fmt.pct(u.get("hit_rate")),
                       fmt.count(u.get("invalidations")), fmt.count(u.get("probes"))])
        pend = data.get("pending_list") or []
        total = int(data.get("tables_pending", len(pend)))
        pl: list[list[Cell]] = [[str(p.get("pfn")), str(p.get("slot")), str(p.get("level")), str(p.get("source")),
                                 fmt.ns(p.get("age_ns"))] for p in pend]
        title = (f"pending list: {fmt.count(total)} table{'s' if total != 1 else ''}"
                 + (f" (oldest {fmt.count(len(pend))} shown)" if total > len(pend) else ""))
        key = (work, io, pl, title, still)
        if key == self._key:  # nothing it shows changed
            return
        self._key = key
        out = Text(no_wrap=True, overflow="ellipsis")
        columns(out, "workqueue", ("work item", "state", "runs"), work, (False, False, True),
                "(none: this strategy uses no work item)")
        out.append("\n")
        columns(out, "IOMMU paging-structure caches",
                ("#", "occupancy", "kernel", "stale", "hit rate", "flushes", "probes"), io,
                (True, False, True, True, True, True, True), "(no IOMMU with an SVA-bound mm)")
        out.append("\n")
        columns(out, title, ("pfn", "slot", "level", "source", "age"), pl, (True, True, True, False, True))
        out.rstrip()
        # The height only grows (blank lines pad a shorter list): a new layout costs more than the
        # drawing, and the pending list changes length with nearly every snapshot at full speed.
        lines = out.plain.count("\n")
        if still and lines < self._lines:
            self._lines = -1  # one layout, now that the lists no longer change with every snapshot
        if lines < self._lines:
            out.append("\n" * (self._lines - lines))
        self.update(out, layout=lines > self._lines)
        self._lines = max(lines, self._lines)
