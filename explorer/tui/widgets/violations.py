"""Violations the checker found, by kind and by the workload source they came from (and, for an
unflushed free, by the context that freed the table too early)."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from explorer.tui import fmt
from explorer.tui.widgets.atoms import Atoms, counted
from explorer.violations import KINDS

LABELS = {k.name: k.label for k in KINDS}
SHORT = {k.name: k.short for k in KINDS}


class ViolationsView(Static):
    """Each violation kind with its total and sources (red when not zero); with ``examples``,
    the first few occurrences with their details (which table, slot, IOMMU, who reused it)."""

    DEFAULT_CSS = """
    ViolationsView { height: auto; }
    """

    def __init__(self, examples: bool = False, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.examples = examples
        self._key: Any = None
        self._lines: Any = -2

    def set_data(self, data: dict[str, Any]) -> None:
        # Redraw only when what it shows changed; a new layout only when the number of lines did.
        key = (data.get("violations"), data.get("stale_walk_queued"),
               (data.get("examples") or [])[:20] if self.examples else None)
        if key == self._key:
            return
        self._key = key
        self._draw(data)

    def update(self, content: Any = "", *, layout: bool = True) -> None:
        # The height can change with the number of rows or with a source list that wraps onto
        # another line (its text got longer): a new layout then, not on every count that changes.
        shape: Any = -1
        if isinstance(content, Table):
            shape = (len(content.rows), tuple(len(str(c)) for col in content.columns[2:] for c in col._cells))
        super().update(content, layout=layout and (shape == -1 or shape != self._lines))
        self._lines = shape

    def _sources(self, by_source: Any) -> list[tuple[str, str, str]]:
        """``cpa-collapse 77, vmalloc-huge 1,102`` (counts as everywhere else) as items that wrap
        between sources, never inside one; in the narrow side column one source a line."""
        pairs = [(str(s), fmt.count(c)) for s, c in sorted((by_source or {}).items())]
        return counted(pairs, "\n", ", " if self.examples else "\n")

    def _draw(self, data: dict[str, Any]) -> None:
        v = data.get("violations") or {}
        total = fmt.violations_total(data)
        t = Table(box=None, expand=True, pad_edge=False, show_header=True, header_style="bold")
        # the tab has room to wrap a long kind; the side column does not, and gives the sources the
        # room its short kinds leave
        t.add_column("violations" if total else "violations: none", ratio=3 if self.examples else None,
                     min_width=None if self.examples else 20, no_wrap=not self.examples, overflow="ellipsis")
        t.add_column("n", justify="right", no_wrap=True)
        t.add_column("from source", ratio=2 if self.examples else 1)  # wraps between sources, never inside one (Atoms)
        for kind, label in (LABELS if self.examples else SHORT).items():
            entry = v.get(kind) or {}
            n = int(entry.get("total", 0))
            if not n and not self.examples:
                continue
            by = self._sources(entry.get("by_source"))
            if entry.get("by_context"):  # which code path freed too early: "freed by caller 1,542, timer 3"
                by.append((" · " if self.examples and by else "\n", "freed by", ""))
                by += counted([(str(s), fmt.count(c)) for s, c in sorted(entry["by_context"].items())], " ", ", ")
            style = "bold red" if n else "dim"
            t.add_row(Text(label, style=style), Text(fmt.count(n), style=style), Atoms(by, style=style))
        sq = data.get("stale_walk_queued") or {}
        queued = sq.get("total", 0)
        if queued or self.examples:
            by = self._sources(sq.get("by_source"))
            t.add_row(Text("stale walk into a queued page (harmless)" if self.examples else "stale walk, queued (ok)",
                           style="dim"),
                      Text(fmt.count(queued), style="dim"), Atoms(by, style="dim"))
        if not self.examples:
            self.update(t)
            return
        ex = Table(box=None, expand=True, pad_edge=False, header_style="bold", title="first occurrences",
                   title_justify="left", title_style="bold")
        ex.add_column("time", no_wrap=True)
        ex.add_column("kind", no_wrap=True)
        ex.add_column("source", no_wrap=True)
        ex.add_column("detail")
        for e in (data.get("examples") or [])[:20]:
            detail = " ".join(f"{k}={val}" for k, val in e.items() if k not in ("kind", "time_ns", "source"))
            ex.add_row(fmt.sim_time(int(e.get("time_ns", 0))), Text(str(e.get("kind")), style="red"),
                       str(e.get("source")), detail)
        from rich.console import Group

        self.update(Group(t, Text(""), ex) if data.get("examples") else t)
