"""A small line chart over simulated time from a bounded series (no dependencies).

The data is a decimated time series (``{"bin_ns": w, "values": [...]}``, at most a few hundred
bins); the x axis is simulated time from 0 to the run's span, so the chart fills from left to
right as the run goes. Each column is the maximum (``max`` mode, for a depth) or the total
(``sum`` mode, for a count) of the whole bins it covers, drawn with eighth blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.widget import Widget

from explorer.tui import fmt

BLOCKS = " ▁▂▃▄▅▆▇█"


def column_ns(bin_ns: int, span_ns: int, columns: int) -> float:
    """The simulated time one column covers: a whole number of bins (a bin is never split, so a
    column's count is a whole count), or, when there are fewer bins than columns, a whole fraction
    of one bin (a bin drawn as several equal columns)."""
    if columns <= 0 or span_ns <= 0 or bin_ns <= 0:
        return 0.0
    per_col = span_ns / columns
    if per_col >= bin_ns:
        return float(-(-int(per_col) // bin_ns) * bin_ns)  # ceil to whole bins
    return bin_ns / max(1, int(bin_ns / per_col))  # floor: the bins fit in the width


def resample(values: Sequence[float], bin_ns: int, span_ns: int, columns: int, mode: str) -> list[float]:
    """Values per column for ``columns`` columns from time 0 (:func:`column_ns` each): the maximum
    (``max``) or the total (``sum``) of the whole bins a column covers, or the value of the bin a
    column is part of. A ``sum`` of counts stays a whole count."""
    col_ns = column_ns(bin_ns, span_ns, columns)
    if col_ns <= 0:
        return []
    out = [0.0] * columns
    if col_ns >= bin_ns:
        per = round(col_ns / bin_ns)
        for i, v in enumerate(values):
            c = i // per
            if c >= columns:
                break
            out[c] = max(out[c], float(v)) if mode == "max" else out[c] + float(v)
        return out
    split = round(bin_ns / col_ns)
    for c in range(columns):
        i = c // split
        if i >= len(values):
            break
        out[c] = float(values[i])
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
        self.columns: list[float] = []  # what each column drew last (for the width it had then)

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
        cols = self.columns = resample(self.values, self.bin_ns, self.span_ns, width, self.mode)
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
        col_ns = column_ns(self.bin_ns, self.span_ns, width)
        if self.mode == "sum" and col_ns >= self.bin_ns:
            facts.append(f"per {fmt.ns(col_ns)}")  # what one column counts
        facts.append(f"0–{fmt.ns(self.span_ns)}")
        head.append("  " + " · ".join(facts), style=axis_style)
        head.truncate(width)
        rows = max(1, height - 1)
        lines = [head]
        scale = (peak if peak > 0 else 1.0)
        levels = [round(v / scale * rows * 8) if v > 0 else 0 for v in cols]
        levels = [max(1, lv) if v > 0 else 0 for lv, v in zip(levels, cols, strict=True)]
        now_col = int(self.now_ns / col_ns) if col_ns else 0
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
                label = fmt.count(int(peak) if float(peak).is_integer() else peak)
                line = Text.assemble(line[: max(0, width - len(label) - 1)], (" " + label, axis_style))
            lines.append(line)
        return Text("\n").join(lines)
