"""The kernel trace of the run, filterable: ``[003] 0.001234: flush_start: ...`` lines.

With the session's trace file (the TUI's run has one) the view is the whole run, paged in from
the file, and the filter searches all of it (:mod:`explorer.tui.widgets.trace_view`); without
one, the newest lines a snapshot brings, and a line above them says how far back they go.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Static
from textual.worker import get_current_worker

from explorer.tui import fmt
from explorer.tui.widgets.trace_view import TraceIndex, TraceView, matches

if TYPE_CHECKING:
    from explorer.session import TraceFile

__all__ = ["EventLog", "matches"]

EMPTY = "(no events yet: space runs, s steps)"


class EventLog(Vertical):
    """A filter input over a :class:`TraceView` of the run's trace."""

    # Input's own ``Input:focus`` (a pseudo-class: more specific than ``EventLog > Input``) draws
    # its tall border on focus, which in one row leaves no room for the text: say none again there.
    DEFAULT_CSS = """
    EventLog { height: 1fr; }
    EventLog > Input { height: 1; border: none; padding: 0 1; background: $boost; }
    EventLog > Input:focus { border: none; }
    EventLog > #log-reach { height: auto; color: $text-muted; padding: 0 1; display: none; }
    EventLog > TraceView { height: 1fr; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.lines: tuple[str, ...] = ()
        self.shown: list[str] = []
        self.words: list[str] = []
        self.trace_file: TraceFile | None = None
        self.index: TraceIndex | None = None  # what the view shows (the filter's lines of the file)
        self.scanning = False  # a worker reads the file (the filter is new, or the run wrote more)

    #: how many of the newest lines a snapshot brings (the session's ``trace_tail``)
    tail = 300

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter: words that must appear, -word to exclude (f)", id="log-filter")
        yield Static("", id="log-reach")
        yield TraceView(id="log")

    def on_mount(self) -> None:
        view = self.query_one(TraceView)
        view.placeholder = EMPTY
        view.refresh()

    # -- a session without a trace file: the lines the snapshot brings
    def reach(self) -> str:
        """How far back the lines go, said plainly: the filter searches only these."""
        if len(self.lines) < self.tail:
            return ""
        m = re.match(r"\s*\[\d+\]\s+([\d.]+):", self.lines[0])
        since = f" (from t={m.group(1)}s on)" if m else ""
        return (f"the newest {len(self.lines)} lines{since}: the filter searches these only · the whole run's "
                "trace: pgtable-explorer run --trace FILE")

    def set_lines(self, lines: Sequence[str]) -> None:
        self.trace_file = None
        self.index = None
        self.lines = tuple(lines)
        self._note(self.reach())
        self._redraw()

    def _redraw(self) -> None:
        if self.trace_file is not None:
            return
        shown = [ln for ln in self.lines if matches(ln, self.words)] if self.words else list(self.lines)
        view = self.query_one(TraceView)
        if shown == self.shown and view.index is None:
            return
        self.shown = shown
        view.placeholder = "(no trace lines match)" if self.lines else EMPTY
        view.show_lines(shown)

    # -- a session with a trace file: the whole run
    def set_trace(self, lines: Sequence[str], trace_file: TraceFile | None) -> None:
        """A snapshot's trace: the whole run from ``trace_file`` when there is one, else ``lines``."""
        if trace_file is None:
            self.set_lines(lines)
            return
        new_run = self.trace_file is None or trace_file.path != self.trace_file.path
        self.trace_file = trace_file
        if new_run or self.index is None:
            self._rescan()
        else:
            self._scan_more()
        self._note(self._file_note())

    def _rescan(self) -> None:
        """A new index for the filter as it is now, scanned from the start of the file."""
        assert self.trace_file is not None
        self.index = TraceIndex(self.trace_file.path, tuple(self.words))
        view = self.query_one(TraceView)
        view.placeholder = "(searching…)"
        view.show_index(self.index)
        self.scanning = False
        self._scan_more()

    def _scan_more(self) -> None:
        if self.scanning or self.index is None or self.trace_file is None:
            return
        if self.index.scanned >= self.trace_file.size:
            return
        self.scanning = True
        self._scan(self.index, self.trace_file.size)

    @work(thread=True, exclusive=True, group="trace-scan")
    def _scan(self, index: TraceIndex, upto: int) -> None:
        worker = get_current_worker()
        last = time.monotonic()

        def progress() -> None:  # what has been found so far, a few times a second on a long scan
            nonlocal last
            if time.monotonic() - last > 0.2:
                last = time.monotonic()
                with contextlib.suppress(RuntimeError):  # the app is closing
                    self.app.call_from_thread(self._found, index, False)

        index.extend(upto, cancelled=lambda: worker.is_cancelled or index is not self.index, progress=progress)
        if not worker.is_cancelled:
            with contextlib.suppress(RuntimeError):
                self.app.call_from_thread(self._found, index, True)

    def _found(self, index: TraceIndex, done: bool) -> None:
        if index is not self.index:  # a newer filter or run took its place
            return
        view = self.query_one(TraceView)
        view.placeholder = "(searching…)" if not done else \
            ("(no trace lines match)" if index.total else EMPTY)
        view.show_index(index)
        if done:
            self.scanning = False
            self._scan_more()  # the run wrote more meanwhile
        self._note(self._file_note())

    def _file_note(self) -> str:
        tf, idx = self.trace_file, self.index
        if tf is None or idx is None:
            return ""
        if not tf.lines:
            return ""
        searching = idx.scanned < tf.size
        if searching:
            pct = 100 * idx.scanned // max(1, tf.size)
            head = f"searching the whole run… {pct}% ({fmt.count(idx.count)} found so far)"
        elif self.words:
            head = f"{fmt.count(idx.count)} of {fmt.count(idx.total)} lines match (the whole run)"
        else:
            head = f"the whole run: {fmt.count(idx.total)} lines"
        if tf.capped:
            head += (f" · the trace stopped at {tf.size >> 20} MiB (t={fmt.sim_time(tf.capped_at_ns)}): "
                     "later lines are not kept; run --trace FILE keeps them all")
        return head

    def _note(self, text: str) -> None:
        note = self.query_one("#log-reach", Static)
        note.update(text)
        note.display = bool(text)

    # -- the filter
    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        words = event.value.lower().split()
        if words == self.words:
            return
        self.words = words
        if self.trace_file is not None:
            self._rescan()
            self._note(self._file_note())
        else:
            self._redraw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one(TraceView).focus()
