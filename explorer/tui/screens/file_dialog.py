"""Save as / open / save minimal: a path (with the TOML files here to pick from), checked in place.

``submit(path, minimal)`` does the work and returns None on success or the problem text, which
is shown under the input; the dialog stays open until it works or is cancelled.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Checkbox, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from explorer.tui.screens.form_dialog import FormDialog


def files_with_suffix(folder: Path, limit: int = 50, suffix: str = ".toml") -> list[str]:
    """The names of the files in ``folder`` that end in ``suffix`` (what the dialog offers)."""
    try:
        return sorted(str(p.name) for p in folder.iterdir() if p.suffix == suffix and p.is_file())[:limit]
    except OSError:
        return []


class FileDialog(FormDialog[str | None]):

    def __init__(self, title: str, initial: str, button: str, submit: Callable[[str, bool], str | None], *,
                 minimal: bool | None = None, folder: Path | None = None, suffix: str = ".toml") -> None:
        super().__init__()
        self.title_text = title
        self.initial = initial
        self.button = button
        self.submit = submit
        self.minimal = minimal
        self.folder = folder or Path.cwd()
        self.suffix = suffix

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(self.title_text, classes="dialog-title")
            yield Input(self.initial, placeholder=f"path/to/file{self.suffix}", id="path")
            if self.minimal is not None:
                yield Checkbox("minimal: only values that differ from the defaults", self.minimal, id="minimal")
            with VerticalScroll(id="problems"):
                yield Static("", id="problem")
            files = files_with_suffix(self.folder, suffix=self.suffix)
            if files:
                yield Label(f"{self.suffix[1:].upper()} files in {self.folder}:", classes="dialog-hint")
                yield OptionList(*[Option(f, id=f) for f in files], id="files")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.button, variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        inp = self.query_one("#path", Input)
        inp.focus()
        # The suggested name is selected (as the export dialog's is): typing a name replaces it
        # instead of appending to it; an arrow key keeps it to edit.
        inp.select_all()

    def _path(self) -> str:
        text = self.query_one("#path", Input).value.strip()
        if text and not Path(text).expanduser().is_absolute():
            text = str(self.folder / Path(text).expanduser())
        return str(Path(text).expanduser()) if text else ""

    def _do(self) -> None:
        path = self._path()
        if not path:
            self._problem("give a file name")
            return
        minimal = self.query_one("#minimal", Checkbox).value if self.minimal is not None else False
        problem = self.submit(path, minimal)
        if problem:
            self._problem(problem)
        else:
            self.dismiss(path)

    def _problem(self, text: str) -> None:
        self.query_one("#problem", Static).update(Text("✗ " + text, style="red"))

    @on(OptionList.OptionSelected, "#files")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        inp = self.query_one("#path", Input)
        inp.value = str(event.option.id)
        inp.focus()
