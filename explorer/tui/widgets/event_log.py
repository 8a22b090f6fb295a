"""The kernel trace of the run, filterable: ``[003] 0.001234: flush_start: ...`` lines."""

from __future__ import annotations

import re
from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Log, Static


def matches(line: str, words: Sequence[str]) -> bool:
    low = line.lower()
    for w in words:
        if w.startswith("-") and len(w) > 1:
            if w[1:] in low:
                return False
        elif w not in low:
            return False
    return True


class EventLog(Vertical):
    """A filter input over a :class:`Log` of the newest trace lines."""

    # Input's own ``Input:focus`` (a pseudo-class: more specific than ``EventLog > Input``) draws
    # its tall border on focus, which in one row leaves no room for the text: say none again there.
    DEFAULT_CSS = """
    EventLog { height: 1fr; }
    EventLog > Input { height: 1; border: none; padding: 0 1; background: $boost; }
    EventLog > Input:focus { border: none; }
    EventLog > #log-reach { height: auto; color: $text-muted; padding: 0 1; display: none; }
    EventLog > Log { height: 1fr; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.lines: tuple[str, ...] = ()
        self.shown: list[str] = []
        self.words: list[str] = []

    #: how many of the newest lines a snapshot brings (the session's ``trace_tail``)
    tail = 300

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter: words that must appear, -word to exclude (f)", id="log-filter")
        yield Static("", id="log-reach")
        yield Log(max_lines=2000, auto_scroll=True, id="log")

    def reach(self) -> str:
        """How far back the lines go, said plainly: the filter searches only these."""
        if len(self.lines) < self.tail:
            return ""
        m = re.match(r"\s*\[\d+\]\s+([\d.]+):", self.lines[0])
        since = f" (from t={m.group(1)}s on)" if m else ""
        return (f"the newest {len(self.lines)} lines{since}: the filter searches these only · the whole run's "
                "trace: pgtable-explorer run --trace FILE")

    def on_mount(self) -> None:
        self.query_one(Log).write_line("(no events yet: space runs, s steps)")

    def set_lines(self, lines: Sequence[str]) -> None:
        self.lines = tuple(lines)
        reach = self.reach()
        note = self.query_one("#log-reach", Static)
        note.update(reach)
        note.display = bool(reach)
        self._redraw()

    def _redraw(self) -> None:
        shown = [ln for ln in self.lines if matches(ln, self.words)] if self.words else list(self.lines)
        if shown == self.shown:
            return
        self.shown = shown
        log = self.query_one(Log)
        log.clear()
        if shown:
            log.write_lines(shown)
        else:
            log.write_line("(no trace lines match)" if self.lines else "(no events yet: space runs, s steps)")

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.words = event.value.lower().split()
        self._redraw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one(Log).focus()
