"""Unsaved changes ask first: before quitting, loading a scenario or opening a file
(:class:`ConfirmQuit`), and a file that exists is replaced only when the user says so
(:class:`ConfirmReplace`)."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static


class ConfirmQuit(ModalScreen[str | None]):
    """Returns ``save``, ``discard`` or None (stay). ``doing`` names what the unsaved changes are
    in the way of (``quit``, ``load scenario before-fix``, ``open a file``)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "choose('save')", "Save first"),
        Binding("d,q", "choose('discard')", "Discard"),
        Binding("escape,c", "choose(None)", "Cancel"),
    ]

    def __init__(self, where: str, doing: str = "quit") -> None:
        super().__init__()
        self.where = where
        self.doing = doing

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Unsaved changes", classes="dialog-title")
            yield Static(f"The config has changes that are not saved ({self.where}). Save them before you "
                         f"{self.doing}, or discard them?")
            # short labels: the three buttons fit a 70-column dialog, so 80-column terminals
            verb = "quit" if self.doing == "quit" else "go on"
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"Save, {verb} (s)", variant="primary", id="save")
                yield Button("Discard (d)", variant="error", id="discard")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "cancel" else event.button.id)

    def action_choose(self, what: str | None) -> None:
        self.dismiss(what)


class ConfirmReplace(ModalScreen[bool]):
    """``FILE exists. Replace it?``: True replaces (y, enter on Replace), False keeps it (n, esc)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "choose(True)", "Replace"),
        Binding("n,escape", "choose(False)", "Keep"),
    ]

    def __init__(self, path: str, note: str = "") -> None:
        super().__init__()
        self.path = path
        self.note = note

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Replace the file?", classes="dialog-title")
            yield Static(f"{self.path} exists. Replace it? {self.note}".rstrip())
            with Horizontal(classes="dialog-buttons"):
                yield Button("Replace (y)", variant="error", id="replace")
                yield Button("Keep it (n, esc)", id="keep")

    def on_mount(self) -> None:
        self.query_one("#keep", Button).focus()  # the safe answer is the default

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "replace")

    def action_choose(self, what: bool) -> None:
        self.dismiss(what)
