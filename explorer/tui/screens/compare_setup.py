"""Choose what to compare: 2-4 strategies, or 2-4 IOMMU models, on the same workload and seed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, RadioButton, RadioSet, SelectionList, Static


class _Choices(SelectionList[str]):
    """The names to compare: space ticks one (as in any SelectionList), enter confirms the dialog.

    An OptionList's enter selects, and a SelectionList's select toggles: a user who ticks a few
    and presses enter to go would untick the last one instead."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "confirm", "Compare", show=False)]

    def action_confirm(self) -> None:
        screen = self.screen
        if isinstance(screen, CompareSetup):
            screen.action_ok()


class CompareSetup(ModalScreen[tuple[str, list[str]] | None]):
    """Returns ``("strategy" | "iommu", [names])``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+j,ctrl+enter", "ok", "Compare", show=False),
    ]

    def __init__(self, strategies: Sequence[str], models: Sequence[str], kind: str, chosen: Sequence[str]) -> None:
        super().__init__()
        self.names = {"strategy": list(strategies), "iommu": list(models)}
        self.kind = kind
        self.chosen = {kind: list(chosen)}

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Compare on the identical workload and seed", classes="dialog-title")
            with RadioSet(id="kind"):
                yield RadioButton("free strategies", value=self.kind == "strategy", id="strategy")
                yield RadioButton("IOMMU models", value=self.kind == "iommu", id="iommu")
            yield _Choices(id="names")
            yield Static("", id="problem")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Compare", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")
            yield Label("space ticks · pick 2 to 4 · enter compares · tab moves", classes="dialog-hint")

    def on_mount(self) -> None:
        self._fill()
        self.query_one(SelectionList).focus()

    def _fill(self) -> None:
        sl = self.query_one(SelectionList)
        sl.clear_options()
        chosen = self.chosen.get(self.kind, [])
        for n in self.names[self.kind]:
            sl.add_option((n, n, n in chosen))
        if sl.option_count:
            sl.highlighted = 0  # else the first space ticks nothing: a list starts with no highlight

    @on(RadioSet.Changed)
    def _kind(self, event: RadioSet.Changed) -> None:
        self.chosen[self.kind] = list(self.query_one(SelectionList).selected)
        self.kind = "iommu" if event.pressed.id == "iommu" else "strategy"
        self._fill()

    @on(Button.Pressed, "#ok")
    def action_ok(self) -> None:
        picked = [n for n in self.names[self.kind] if n in self.query_one(SelectionList).selected]
        if not 2 <= len(picked) <= 4:
            self.query_one("#problem", Static).update(Text(f"✗ pick 2 to 4 (now {len(picked)})", style="red"))
            return
        self.dismiss((self.kind, picked))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
