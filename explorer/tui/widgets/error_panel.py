"""The panel a failed run shows: which plugin raised what, and the traceback."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from explorer.failures import BY_NAME, SIMULATOR

if TYPE_CHECKING:
    from explorer.session import RunError


class ErrorPanel(Vertical):
    """Red-bordered: the plugin (name, version, origin), the error, and a scrollable traceback."""

    DEFAULT_CSS = """
    ErrorPanel { height: 1fr; border: heavy $error; padding: 0 1; display: none; }
    ErrorPanel.-visible { display: block; }
    ErrorPanel > #error-title { color: $error; text-style: bold; height: auto; }
    ErrorPanel > #error-plugin { height: auto; color: $text-muted; }
    ErrorPanel > #error-hint { height: auto; color: $text-muted; }
    ErrorPanel > VerticalScroll { height: 1fr; background: $boost; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.error: RunError | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="error-title")
        yield Static("", id="error-plugin")
        yield Static("r resets · 1 changes the config · c copies the traceback", id="error-hint")
        with VerticalScroll(id="error-scroll"):
            yield Static("", id="error-traceback")

    def on_mount(self) -> None:
        self.border_title = "the run failed"

    def show_error(self, error: RunError | None, plugin: str = "") -> None:
        self.error = error
        self.set_class(error is not None, "-visible")
        if error is None:
            return
        self.border_title = BY_NAME.get(error.failure, SIMULATOR).title  # the CLI's vocabulary (explorer.failures)
        phase = "while building the simulation" if error.phase == "build" else "while the simulation ran"
        self.query_one("#error-title", Static).update(Text(f"✗ {error.title}"))
        self.query_one("#error-plugin", Static).update(Text(f"{plugin or error.kind} · {phase}"))
        self.query_one("#error-traceback", Static).update(Text(error.traceback or "(no traceback)"))
