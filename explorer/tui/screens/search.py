"""``/``: search parameter names and help text; enter jumps to the hit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from explorer.tui.model import Entry, search


class SearchModal(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel"), Binding("down", "down", show=False),
                Binding("up", "up", show=False)]

    def __init__(self, entries: Sequence[Entry], query: str = "") -> None:
        super().__init__()
        self.entries = list(entries)
        self.query_text = query
        self.hits: list[Entry] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label("/ search names and help", classes="dialog-title")
            yield Input(self.query_text, placeholder="words (all must appear)", id="search-input")
            yield OptionList(id="search-hits")
            yield Label("enter jumps · ↑↓ choose · esc cancels", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        self._update(self.query_text)

    def _update(self, query: str) -> None:
        self.hits = search(self.entries, query)[:60]
        ol = self.query_one(OptionList)
        ol.clear_options()
        for e in self.hits:
            t = Text(e.key.split("@")[0], style="bold" if e.active else "dim")
            if not e.active:  # whose parameter it is: two models may both have a "batch"
                owner = f": {e.declarer.describe().split(' · ')[0]}" if e.group and e.declarer else ""
                t.append(f"  (inactive{owner})", style="dim italic")
            help_ = (e.param.help or "").strip().replace("\n", " ")
            if help_:
                t.append("\n  " + (help_[:110] + ("…" if len(help_) > 110 else "")), style="dim")
            ol.add_option(Option(t, id=e.key))
        if self.hits:
            ol.highlighted = 0
        self.query_one(".dialog-title", Label).update(
            f"/ search names and help: {len(self.hits)} hit{'s' if len(self.hits) != 1 else ''}" if query.strip()
            else "/ search names and help")

    @on(Input.Changed, "#search-input")
    def _changed(self, event: Input.Changed) -> None:
        self._update(event.value)

    @on(Input.Submitted, "#search-input")
    def _submitted(self, event: Input.Submitted) -> None:
        ol = self.query_one(OptionList)
        if ol.highlighted is not None and self.hits:
            self.dismiss(self.hits[ol.highlighted].key)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_down(self) -> None:
        self.query_one(OptionList).action_cursor_down()

    def action_up(self) -> None:
        self.query_one(OptionList).action_cursor_up()

    def action_cancel(self) -> None:
        self.dismiss(None)
