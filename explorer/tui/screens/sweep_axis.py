"""w on the config tree (or a on the Sweep screen): sweep this parameter over values, read as the CLI's
``--grid``/``--range`` read them, checked as you type; and the number of seeds (n on the Sweep screen:
the seeds and the local worker processes)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static

from explorer.tui.screens.base import UsesExplorerApp
from explorer.tui.screens.form_dialog import FormDialog
from explorer.tui.sweep_model import SweepState, axis_kind, parse_axis

if TYPE_CHECKING:
    from explorer.tui.app import ExplorerApp

HINT = ("a list V1,V2,... (as --grid: 64,128,256 · 20us,40us · intel-vtd,amd-vi) or a range "
        "START:STOP:STEPS[:log] (as --range: 1:1000:4:log)")


def sweep_state(app: ExplorerApp) -> SweepState:
    return app.sweep_state


class SweepAxisModal(UsesExplorerApp, FormDialog[bool]):
    """Values for ``key`` (none: only the seeds); dismissed with True once applied to the state."""


    def __init__(self, key: str | None, current: str = "", shown_value: str = "") -> None:
        super().__init__()
        self.key = key
        self.current = current
        self.shown_value = shown_value

    def compose(self) -> ComposeResult:
        from explorer.sweep.executors import default_workers

        state = sweep_state(self.xapp)
        with Vertical(classes="dialog wide", id="sweep-axis"):
            if self.key is not None:
                yield Label(f"Sweep {self.key}" + (f" (now {self.shown_value})" if self.shown_value else ""),
                            classes="dialog-title")
                yield Label(HINT, classes="dialog-hint")
                yield Input(self.current, placeholder="64,128,256  or  1:1000:4:log", id="values")
                yield Static("", id="axis-preview")
            else:
                yield Label("Seeds and workers of the sweep", classes="dialog-title")
            yield Label("seeds per combination (the config's seed and the ones after it)", classes="dialog-hint")
            yield Input(str(state.seeds), placeholder="1", id="seeds", type="integer")
            if self.key is None:
                yield Label(f"local worker processes (empty: one per CPU, {default_workers()} here)",
                            classes="dialog-hint")
                yield Input("" if state.workers is None else str(state.workers), placeholder="one per CPU",
                            id="workers", type="integer")
                yield Static("", id="axis-preview")  # what is wrong with a value, in place
            with Horizontal(classes="dialog-buttons"):
                yield Button("Sweep" if self.key is not None else "OK", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        first = self.query_one("#values" if self.key is not None else "#seeds", Input)
        first.focus()
        first.action_end()
        if self.key is not None:
            self._preview(self.current)

    def _preview(self, text: str) -> str | None:
        """Show the values the text gives (or why it gives none); return the problem."""
        if self.key is None:
            return None
        from explorer.sweep import SweepError

        out = self.query_one("#axis-preview", Static)
        if not text.strip():
            out.update("")
            return "give the values"
        try:
            axis = parse_axis(self.key, text, self.xapp.config, self.xapp.registry)
        except SweepError as exc:
            out.update(Text("✗ " + str(exc), style="red"))
            return str(exc)
        entry = self.xapp.model().by_key().get(self.key)
        values = list(axis.values)
        if entry is not None:
            from explorer.config import parse_override_value

            with contextlib.suppress(Exception):
                values = [entry.param.show(entry.param.parse(parse_override_value(v))) for v in values]
        shown = ", ".join(values[:12]) + (", …" if len(axis.values) > 12 else "")
        out.update(Text(f"--{axis_kind(text)}: {len(axis.values)} values: {shown}", style="green"))
        return None

    @on(Input.Changed, "#values")
    def _changed(self, event: Input.Changed) -> None:
        self._preview(event.value)

    def _do(self) -> None:
        from explorer.sweep import SweepError

        state = sweep_state(self.xapp)
        seeds_text = self.query_one("#seeds", Input).value.strip() or "1"
        try:
            seeds = int(seeds_text)
        except ValueError:
            seeds = 0
        if seeds < 1:
            self._problem(f"seeds must be a whole number of at least 1, got {seeds_text!r}")
            return
        if self.key is None:
            workers_text = self.query_one("#workers", Input).value.strip()
            workers: int | None = None
            if workers_text:
                try:
                    workers = int(workers_text)
                except ValueError:
                    workers = 0
                if workers < 1:
                    self._problem(f"workers must be a whole number of at least 1 (or empty: one per CPU), "
                                  f"got {workers_text!r}")
                    return
            state.seeds = seeds
            state.workers = workers
            self.dismiss(True)
            return
        text = self.query_one("#values", Input).value.strip()
        problem = self._preview(text)
        if problem:
            self._problem(problem)
            return
        old_axes, old_seeds = list(state.axes), state.seeds
        state.set_axis(self.key, text)
        state.seeds = seeds
        try:  # the whole product: every combination must make a valid config
            state.plan_for(self.xapp.config, self.xapp.registry)
        except SweepError as exc:
            state.axes, state.seeds = old_axes, old_seeds
            self._problem(str(exc))
            return
        self.dismiss(True)

    def _problem(self, text: str) -> None:
        self.query_one("#axis-preview", Static).update(Text("✗ " + text, style="red"))



def ask_axis(app: ExplorerApp, key: str, shown_value: str = "", then: Callable[[], None] | None = None) -> None:
    """Open the modal for ``key`` (prefilled with its axis, if it has one); notify what was added."""
    state = sweep_state(app)
    existing = state.axis(key)

    def done(ok: bool | None) -> None:
        if not ok:
            return
        points = ""
        with contextlib.suppress(Exception):  # only a note: the sweep screen says what is wrong
            points = f"; {len(state.plan_for(app.config, app.registry).points)} points"
        n = len(state.axes)
        spec = state.axis(key)
        seeds = f"{state.seeds} seed{'s' if state.seeds != 1 else ''}"
        app.notify(f"sweep axis {key}: {spec.text if spec else ''} ({n} axis{'es' if n != 1 else ''}, {seeds}"
                   f"{points}); 5 shows the sweep", timeout=5)
        if then is not None:
            then()

    app.push_screen(SweepAxisModal(key, existing.text if existing else "", shown_value), done)
