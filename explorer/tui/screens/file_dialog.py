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

from explorer.tui.screens.choice import fuzzy_order
from explorer.tui.screens.confirm_quit import ConfirmReplace
from explorer.tui.screens.form_dialog import FormDialog


class TickBox(Checkbox):
    """A checkbox whose tick is a character, not only a colour: ``▐✓▌`` ticked, ``▐ ▌`` not."""

    @property
    def BUTTON_INNER(self) -> str:  # type: ignore[override]  # Textual's name for the tick character
        return "✓" if self.value else " "


def files_with_suffix(folder: Path, limit: int = 50, suffix: str = ".toml",
                      keep: Callable[[Path], bool] | None = None) -> list[str]:
    """The names of the files in ``folder`` that end in ``suffix`` (and pass ``keep``): what the dialog offers."""
    try:
        found = sorted(p for p in folder.iterdir() if p.suffix == suffix and p.is_file())
    except OSError:
        return []
    return [p.name for p in found if keep is None or keep(p)][:limit]


class FileDialog(FormDialog[str | None]):
    """A path to save to or open. For a save, ``refuse(path)`` says why a file must not be written
    (another program's TOML) and ``ask_replace`` makes an existing file need a yes first;
    ``keep`` filters the files offered."""

    def __init__(self, title: str, initial: str, button: str, submit: Callable[[str, bool], str | None], *,
                 minimal: bool | None = None, folder: Path | None = None, suffix: str = ".toml",
                 refuse: Callable[[str], str | None] | None = None,
                 ask_replace: Callable[[str], bool] | None = None,
                 keep: Callable[[Path], bool] | None = None) -> None:
        super().__init__()
        self.refuse = refuse
        self.ask_replace = ask_replace
        self.keep = keep
        self._replace_ok: str | None = None  # the path the user said yes to replacing
        self.title_text = title
        self.initial = initial
        self.button = button
        self.submit = submit
        self.minimal = minimal
        self.folder = folder or Path.cwd()
        self.suffix = suffix
        self.files: list[str] = []
        self.shown: list[str] = []  # the files listed now (those the typed name matches), in order

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(self.title_text, classes="dialog-title")
            yield Input(self.initial, placeholder=f"path/to/file{self.suffix}", id="path")
            if self.minimal is not None:
                yield TickBox("minimal: only values that differ from the defaults", self.minimal, id="minimal")
            with VerticalScroll(id="problems"):
                yield Static("", id="problem")
            self.files = self.shown = files_with_suffix(self.folder, suffix=self.suffix, keep=self.keep)
            if self.files:
                yield Label(f"{self.suffix[1:].upper()} files in {self.folder} (typing filters them):",
                            classes="dialog-hint")
                yield OptionList(*[Option(f, id=f) for f in self.files], id="files")
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
        refused = self.refuse(path) if self.refuse is not None else None
        if refused:
            self._problem(refused)
            return
        if self.ask_replace is not None and self._replace_ok != path and self.ask_replace(path):
            def answered(yes: bool | None) -> None:
                if yes:
                    self._replace_ok = path
                    self._do()
                else:
                    self._problem(f"{path} exists: not replaced; give another name")

            self.app.push_screen(ConfirmReplace(path), answered)
            return
        problem = self.submit(path, minimal)
        if problem:
            self._problem(problem)
        else:
            self.dismiss(path)

    def _problem(self, text: str) -> None:
        self.query_one("#problem", Static).update(Text("✗ " + text, style="red"))

    @on(Input.Changed, "#path")
    def _filter(self, event: Input.Changed) -> None:
        """The files the typed name matches, fuzzy, best first (all of them for the suggested name)."""
        lists = self.query("#files")
        if not lists:
            return
        typed = "" if event.value == self.initial else event.value.rsplit("/", 1)[-1]
        shown = [self.files[i] for i in fuzzy_order(typed, self.files)]
        if shown == self.shown:
            return
        self.shown = shown
        ol = lists.first(OptionList)
        ol.clear_options()
        if shown:
            ol.add_options([Option(f, id=f) for f in shown])
            ol.highlighted = 0  # enter in the list picks the best match
        else:
            ol.add_option(Option(Text(f"no file matches {typed!r}", style="dim italic"), disabled=True))

    @on(OptionList.OptionSelected, "#files")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        inp = self.query_one("#path", Input)
        inp.value = str(event.option.id)
        inp.focus()
