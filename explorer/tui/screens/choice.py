"""A modal list to pick one thing (a strategy, an IOMMU model, a scenario, a workload source)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option


class ChoiceModal(ModalScreen[str | None]):
    """``options`` are ``(value, name, description)``; enter picks, escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, options: Sequence[tuple[str, str, str]], current: str | None = None,
                 hint: str = "enter picks · esc cancels") -> None:
        super().__init__()
        self.title_text = title
        self.options = list(options)
        self.current = current
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            items = []
            for value, name, desc in self.options:
                t = Text()
                t.append(("● " if value == self.current else "  ") + name, style="bold")
                if desc:
                    t.append("\n    " + desc, style="dim")
                items.append(Option(t, id=value))
            yield OptionList(*items, id="choices")
            yield Label(self.hint, classes="dialog-hint")

    def on_mount(self) -> None:
        ol = self.query_one(OptionList)
        ids = [v for v, _, _ in self.options]
        if self.current in ids:
            ol.highlighted = ids.index(self.current)
        elif ids:
            ol.highlighted = 0
        ol.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
