"""Export the metrics as JSON or CSV to a file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, RadioSet, Static

from explorer.tui.screens.form_dialog import FormDialog
from explorer.tui.widgets.radio import DotRadio


class ExportDialog(FormDialog[str | None]):
    """``write(path, fmt)`` returns None on success or the problem text (shown in place)."""


    def __init__(self, stem: str, write: Callable[[str, str], str | None], folder: Path | None = None) -> None:
        super().__init__()
        self.stem = stem
        self.write = write
        self.folder = folder or Path.cwd()
        self.fmt = "json"

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label("Export metrics", classes="dialog-title")
            with RadioSet(id="format"):
                yield DotRadio("JSON (metrics and the config that produced them)", value=True, id="json")
                yield DotRadio("CSV (metric,value rows; series left out)", id="csv")
            yield Input(f"{self.stem}.json", id="path")
            yield Static("", id="problem")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Export", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()

    @on(RadioSet.Changed)
    def _format(self, event: RadioSet.Changed) -> None:
        self.fmt = "csv" if event.pressed.id == "csv" else "json"
        inp = self.query_one("#path", Input)
        p = Path(inp.value or self.stem)
        inp.value = str(p.with_suffix("." + self.fmt))

    def _do(self) -> None:
        text = self.query_one("#path", Input).value.strip()
        if not text:
            self.query_one("#problem", Static).update(Text("✗ give a file name", style="red"))
            return
        path = Path(text).expanduser()
        if not path.is_absolute():
            path = self.folder / path
        fmt = "csv" if path.suffix.lower() == ".csv" else ("json" if path.suffix.lower() == ".json" else self.fmt)
        problem = self.write(str(path), fmt)
        if problem:
            self.query_one("#problem", Static).update(Text("✗ " + problem, style="red"))
        else:
            self.dismiss(str(path))
