"""A small line chart over simulated time from a bounded series (no dependencies).

The data is a decimated time series (``{"bin_ns": w, "values": [...]}``, at most a few hundred
bins); the x axis is simulated time from 0 to the run's span, so the chart fills from left to
right as the run goes. Each column is the maximum (``max`` mode, for a depth) or the total
(``sum`` mode, for a count) of the bins it covers, drawn with eighth blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.widget import Widget

from explorer.tui import fmt

BLOCKS = " ▁▂▃▄▅▆▇█"


def resample(values: Sequence[float], bin_ns: int, span_ns: int, columns: int, mode: str) -> list[float]:
    """Values per column for ``columns`` columns over ``[0, span_ns)``."""
    if columns <= 0 or span_ns <= 0 or bin_ns <= 0:
        return []
    out = [0.0] * columns
    col_ns = span_ns / columns
    for i, v in enumerate(values):
        if not v:
            continue
        start, end = i * bin_ns, (i + 1) * bin_ns
        if start >= span_ns:
            break
        c0 = int(start / col_ns)
        c1 = min(columns - 1, int((min(end, span_ns) - 1) / col_ns))
        for c in range(c0, c1 + 1):
            if mode == "max":
                out[c] = max(out[c], float(v))
            else:
                lo, hi = max(start, c * col_ns), min(end, (c + 1) * col_ns)
                out[c] += float(v) * max(0.0, hi - lo) / bin_ns
    return out


class TimeChart(Widget):
    """A titled chart; call :meth:`set_series` with a snapshot's series."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"timechart--bar", "timechart--title", "timechart--axis"}
    DEFAULT_CSS = """
    TimeChart { height: 1fr; min-height: 3; }
    TimeChart > .timechart--bar { color: $accent; }
    TimeChart > .timechart--title { text-style: bold; }
    TimeChart > .timechart--axis { color: $text-muted; }
    """

    def __init__(self, title: str, mode: str = "max", unit: str = "", **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.title = title
        self.mode = mode
        self.unit = unit
        self.values: list[float] = []
        self.bin_ns = 100_000
        self.span_ns = 0
        self.now_ns = 0
        self.current: float | None = None

    def set_series(self, series: dict | None, span_ns: int, now_ns: int, current: float | None = None) -> None:
        series = series or {}
        self.values = list(series.get("values", []))
        self.bin_ns = int(series.get("bin_ns", 100_000) or 100_000)
        self.span_ns = max(1, int(span_ns))
        self.now_ns = now_ns
        self.current = current
        self.refresh()

    def render(self) -> Text:
        width, height = self.size.width, self.size.height
        title_style = self.get_component_rich_style("timechart--title")
        axis_style = self.get_component_rich_style("timechart--axis")
        bar_style = self.get_component_rich_style("timechart--bar")
        cols = resample(self.values, self.bin_ns, self.span_ns, width, self.mode)
        peak = max(cols) if cols else 0.0
        total = sum(self.values) if self.mode == "sum" else None
        head = Text(self.title, style=title_style)
        facts = []
        if self.current is not None:
            facts.append(f"now {fmt.count(self.current)}")
        if self.mode == "max":
            facts.append(f"peak {fmt.count(max(self.values) if self.values else 0)}")
        elif total is not None:
            facts.append(f"total {fmt.count(int(total))}")
        facts.append(f"0–{fmt.ns(self.span_ns)}")
        head.append("  " + " · ".join(facts), style=axis_style)
        head.truncate(width)
        rows = max(1, height - 1)
        lines = [head]
        scale = (peak if peak > 0 else 1.0)
        levels = [round(v / scale * rows * 8) if v > 0 else 0 for v in cols]
        levels = [max(1, lv) if v > 0 else 0 for lv, v in zip(levels, cols, strict=True)]
        now_col = int(self.now_ns / self.span_ns * width) if self.span_ns else 0
        for r in range(rows):
            base = (rows - 1 - r) * 8
            line = Text()
            chars = []
            for c, lv in enumerate(levels):
                fill = min(8, max(0, lv - base))
                ch = BLOCKS[fill]
                if fill == 0 and r == rows - 1 and c > now_col:
                    ch = "·" if c % 4 == 0 else " "
                chars.append(ch)
            line.append("".join(chars), style=bar_style)
            if r == 0 and peak > 0:
                label = f"{fmt.count(peak if self.mode == 'max' else round(peak, 2))}"
                line = Text.assemble(line[: max(0, width - len(label) - 1)], (" " + label, axis_style))
            lines.append(line)
        return Text("\n").join(lines)
