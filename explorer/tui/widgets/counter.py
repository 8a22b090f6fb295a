"""A big counter: a number in large digits under its name (one line in the narrow layout)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Digits, Label, Static


class BigCounter(Static):
    """``flushes`` / ``469`` in :class:`Digits`; ``-bad`` (red) when a violation count is not zero."""

    DEFAULT_CSS = """
    BigCounter { height: auto; border: round $primary 50%; padding: 0 1; width: 1fr; }
    BigCounter > Digits { width: auto; }
    BigCounter > .small { display: none; }
    BigCounter.-bad { border: round $error; }
    BigCounter.-bad > Digits, BigCounter.-bad > .small { color: $error; }
    """

    def __init__(self, title: str, *, short: str = "", alarm: bool = False, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.title = title
        self.short = short or title
        self.alarm = alarm
        self.value = 0
        self._small_len = -1

    def compose(self) -> ComposeResult:
        yield Digits("0")
        yield Label(f"{self.short} [b]0[/b]", classes="small")

    def on_mount(self) -> None:
        self.border_title = self.title

    def set_value(self, value: int) -> None:
        if value == self.value and self.is_mounted:
            return
        self.value = value
        self.query_one(Digits).update(f"{value:,}".replace(",", " ") if value < 10**9 else f"{value:.3g}")
        small = self.query_one(".small", Label)
        text = f"{self.short} [b]{value:,}[/b]"
        # A new layout only when the width may change (a layout costs more than drawing, at 10 Hz).
        small.update(text, layout=len(text) != self._small_len)
        self._small_len = len(text)
        if self.alarm:
            self.set_class(value > 0, "-bad")
