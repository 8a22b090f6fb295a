"""Choose what to compare: 2-4 strategies, or 2-4 IOMMU models, on the same workload and seed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.segment import Segment
from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.strip import Strip
from textual.widgets import Button, Input, Label, RadioSet, SelectionList, Static
from textual.widgets._toggle_button import ToggleButton

from explorer.tui.screens.choice import fuzzy_order
from explorer.tui.widgets.radio import DotRadio

TICKED, UNTICKED = "✓", " "


class _Choices(SelectionList[str]):
    """The names to compare: space ticks one (as in any SelectionList), enter confirms the dialog,
    typing a letter filters (the filter box above shows it).

    An OptionList's enter selects, and a SelectionList's select toggles: a user who ticks a few
    and presses enter to go would untick the last one instead. The box is drawn ``▐✓▌`` ticked and
    ``▐ ▌`` not (Textual draws ``▐X▌`` for both, told apart only by colour)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "confirm", "Compare", show=False)]

    def action_confirm(self) -> None:
        screen = self.screen
        if isinstance(screen, CompareSetup):
            screen.action_ok()

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        segments = list(strip)
        index = self.scroll_offset.y + y
        if len(segments) < 3 or segments[1].text != ToggleButton.BUTTON_INNER or index >= self.option_count:
            return strip
        ticked = self.get_option_at_index(index).value in self.selected
        segments[1] = Segment(TICKED if ticked else UNTICKED, segments[1].style)
        return Strip(segments, strip.cell_length)

    def on_key(self, event: events.Key) -> None:
        # type-to-filter while the list has the focus (space stays the tick key)
        screen = self.screen
        if not isinstance(screen, CompareSetup):
            return
        box = screen.query_one("#names-filter", Input)
        if event.key == "backspace" and box.value:
            box.value = box.value[:-1]
        elif event.is_printable and event.character and event.character != " ":
            box.value += event.character
        else:
            return
        event.stop()
        event.prevent_default()


class CompareSetup(ModalScreen[tuple[str, list[str]] | None]):
    """Returns ``("strategy" | "iommu", [names])``."""

    # It fits 80x24 whole (the filter added a row of its own): a one-row filter (the gaps go too,
    # in app.tcss, whose rules outrank these).
    DEFAULT_CSS = """
    CompareSetup #names-filter { height: 1; border: none; padding: 0 1; background: $boost; }
    CompareSetup #names-filter:focus { border: none; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+j,ctrl+enter", "ok", "Compare", show=False),
    ]

    def __init__(self, strategies: Sequence[str], models: Sequence[str], kind: str, chosen: Sequence[str]) -> None:
        super().__init__()
        self.names = {"strategy": list(strategies), "iommu": list(models)}
        self.kind = kind
        self.ticked: dict[str, set[str]] = {kind: set(chosen)}
        self.shown: list[str] = []  # the names listed now (the filter's matches), in order

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Compare on the identical workload and seed", classes="dialog-title")
            with RadioSet(id="kind"):
                yield DotRadio("free strategies", value=self.kind == "strategy", id="strategy")
                yield DotRadio("IOMMU models", value=self.kind == "iommu", id="iommu")
            yield Input(placeholder="type to filter", id="names-filter")
            yield _Choices(id="names")
            yield Static("", id="problem")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Compare", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")
            yield Label("type filters · space ticks 2 to 4 · enter compares · tab moves",
                        classes="dialog-hint")

    def on_mount(self) -> None:
        self._fill()
        self.query_one(SelectionList).focus()

    def _sync(self) -> set[str]:
        """The ticked names of this kind: those the filter hides keep their tick."""
        sl = self.query_one(SelectionList)
        ticked = {n for n in self.ticked.get(self.kind, set()) if n not in self.shown} | set(sl.selected)
        self.ticked[self.kind] = ticked
        return ticked

    def _fill(self, query: str = "") -> None:
        sl = self.query_one(SelectionList)
        ticked = self.ticked.get(self.kind, set())
        names = self.names[self.kind]
        self.shown = [names[i] for i in fuzzy_order(query, names)]
        sl.clear_options()
        sl.add_options([(n, n, n in ticked) for n in self.shown])
        if sl.option_count:
            sl.highlighted = 0  # else the first space ticks nothing: a list starts with no highlight

    @on(Input.Changed, "#names-filter")
    def _filter(self, event: Input.Changed) -> None:
        self._sync()
        self._fill(event.value)

    @on(Input.Submitted, "#names-filter")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_ok()

    @on(RadioSet.Changed)
    def _kind(self, event: RadioSet.Changed) -> None:
        self._sync()
        self.kind = "iommu" if event.pressed.id == "iommu" else "strategy"
        self._fill(self.query_one("#names-filter", Input).value)

    @on(Button.Pressed, "#ok")
    def action_ok(self) -> None:
        ticked = self._sync()
        picked = [n for n in self.names[self.kind] if n in ticked]
        if not 2 <= len(picked) <= 4:
            self.query_one("#problem", Static).update(Text(f"✗ pick 2 to 4 (now {len(picked)})", style="red"))
            return
        self.dismiss((self.kind, picked))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
