"""A modal with a title and scrollable text (a plugin's details or its load traceback)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static


class TextModal(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,enter,q", "close", "Close"), Binding("c", "copy", "Copy")]

    def __init__(self, title: str, body: str) -> None:
        super().__init__()
        self.title_text = title
        self.body = body

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide tall"):
            yield Label(self.title_text, classes="dialog-title")
            with VerticalScroll():
                yield Static(Text(self.body), id="text-body")
            yield Label("c copies · esc closes", classes="dialog-hint")

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.body)
        self.notify("copied to the clipboard")

    def action_close(self) -> None:
        self.dismiss(None)
