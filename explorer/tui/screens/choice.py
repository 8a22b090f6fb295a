"""A modal list to pick one thing (a strategy, an IOMMU model, a scenario, a workload source, a
sweep axis), filtered as you type, fuzzy, as Textual's command palette matches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.fuzzy import Matcher
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option


def fuzzy_order(query: str, names: Sequence[str]) -> list[int]:
    """The indexes of ``names`` that match ``query`` (its letters in order, as the command palette
    matches), best first; every index in order for an empty query."""
    if not query.strip():
        return list(range(len(names)))
    matcher = Matcher(query.strip())
    scored = [(matcher.match(n), i) for i, n in enumerate(names)]
    return [i for score, i in sorted(scored, key=lambda s: (-s[0], s[1])) if score > 0]


class ChoiceModal(ModalScreen[str | None]):
    """``options`` are ``(value, name, description)``; typing filters them (fuzzy, on the name),
    ↑↓ choose, enter picks, escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("down", "move(1)", show=False),
        Binding("up", "move(-1)", show=False),
    ]

    def __init__(self, title: str, options: Sequence[tuple[str, str, str]], current: str | None = None,
                 hint: str = "type to filter · ↑↓ choose · enter picks · esc cancels") -> None:
        super().__init__()
        self.title_text = title
        self.options = list(options)
        self.current = current
        self.hint = hint
        self.shown: list[str] = []  # the values listed now, in order

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            if len(self.options) > 1:
                yield Input(placeholder="type to filter", id="choice-filter")
            yield OptionList(id="choices")
            yield Label(self.hint, classes="dialog-hint")

    def on_mount(self) -> None:
        self._fill("")
        inputs = self.query("#choice-filter")
        (inputs.first() if inputs else self.query_one(OptionList)).focus()

    def _fill(self, query: str) -> None:
        ol = self.query_one(OptionList)
        ol.clear_options()
        order = fuzzy_order(query, [name for _, name, _ in self.options])
        matcher = Matcher(query.strip()) if query.strip() else None
        self.shown = []
        for i in order:
            value, name, desc = self.options[i]
            t = Text("● " if value == self.current else "  ", style="bold")
            label = Text(name, style="bold")
            if matcher is not None:  # the matched letters underlined, as the palette marks them
                for span in matcher.highlight(name).spans:
                    label.stylize("underline", span.start, span.end)
            t.append_text(label)
            if desc:  # two lines at most: the list is for choosing, the help says the rest
                t.append("\n    " + (desc if len(desc) <= 130 else desc[:129] + "…"), style="dim")
            ol.add_option(Option(t, id=value))
            self.shown.append(value)
        if not self.shown:
            ol.add_option(Option(Text(f"  nothing matches {query.strip()!r}", style="dim italic"), disabled=True))
        elif self.current in self.shown and not query.strip():
            ol.highlighted = self.shown.index(self.current)
        else:
            ol.highlighted = 0

    @on(Input.Changed, "#choice-filter")
    def _filter(self, event: Input.Changed) -> None:
        self._fill(event.value)

    @on(Input.Submitted, "#choice-filter")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        ol = self.query_one(OptionList)
        if self.shown and ol.highlighted is not None:
            self.dismiss(self.shown[ol.highlighted])

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_move(self, by: int) -> None:
        ol = self.query_one(OptionList)
        if by > 0:
            ol.action_cursor_down()
        else:
            ol.action_cursor_up()

    def action_cancel(self) -> None:
        self.dismiss(None)
