"""A DataTable that says when columns are off-screen: ``◀ 2 · 3 more ▶ (← →)`` under it.

At 80 columns a results table is wider than the terminal. The table scrolls sideways with the
cursor (← →), and this cue on its bottom edge names how many columns are out of view on each side,
so nothing is cut without a word.
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import DataTable


class WideTable(DataTable[Any]):
    """A :class:`DataTable` with an overflow cue in its bottom border's subtitle, and the keys of
    less, vim and htop: j/k down and up, g/G the first and the last row."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("g", "scroll_top", "Top", show=False),
        Binding("G", "scroll_bottom", "Bottom", show=False),
    ]

    DEFAULT_CSS = """
    WideTable { border-bottom: hkey $primary 20%; border-subtitle-align: right;
                border-subtitle-color: $text-muted; }
    """

    def hidden_columns(self) -> tuple[int, int]:
        """How many columns are wholly or partly out of view on the left and on the right."""
        width = self.scrollable_content_region.width
        if width <= 0 or not self.columns:
            return 0, 0
        x0 = round(self.scroll_x)
        x1 = x0 + width
        left = right = 0
        x = 0
        for column in self.ordered_columns:
            w = column.get_render_width(self)
            if x < x0:
                left += 1
            elif x + w > x1:
                right += 1
            x += w
        return left, right

    def cue(self) -> str:
        """What the bottom edge should say now."""
        left, right = self.hidden_columns()
        if not (left or right):
            return ""
        parts = [f"◀ {left} more" if left else "", f"{right} more ▶" if right else ""]
        return " · ".join(p for p in parts if p) + " (← → scroll)"

    def update_cue(self) -> None:
        cue = self.cue()
        if self.border_subtitle != cue:
            self.border_subtitle = cue

    def watch_scroll_x(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_x(old_value, new_value)
        self.update_cue()

    def watch_virtual_size(self) -> None:
        self.call_after_refresh(self.update_cue)

    def _on_resize(self, event: Any) -> None:
        super()._on_resize(event)
        self.call_after_refresh(self.update_cue)
