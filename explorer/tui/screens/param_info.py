"""``?``: everything about one parameter."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from explorer.tui.model import Entry
from explorer.tui.widgets.param_detail import facts_table


class ParamInfo(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,question_mark,q,enter", "close", "Close")]

    def __init__(self, entry: Entry) -> None:
        super().__init__()
        self.entry = entry

    def compose(self) -> ComposeResult:
        e = self.entry
        with Vertical(classes="dialog wide"):
            yield Label(f"? {e.key.split('@')[0]}", classes="dialog-title")
            with VerticalScroll():
                yield Static(Text(e.param.help or "(no help text)"), id="info-help")
                yield Static("")
                yield Static(facts_table(e, long=True), id="info-facts")
            yield Label("esc closes", classes="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)
