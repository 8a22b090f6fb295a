"""The Hunt action: search the current config for a memory-safety violation (``explorer.hunt``).

A modal runs the hunt in a worker thread (the candidates themselves run in worker processes when
there is more than one CPU, so the UI stays responsive) with a progress bar. A counterexample
becomes the app's config on the Run screen, paused at time zero, ready to play live; nothing
found leaves the modal open saying what was covered. Escape cancels a hunt in progress.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, ProgressBar, Static

#: What the TUI's hunt does (the CLI's defaults): any memory-safety kind, 60 s, seed 0.
BUDGET_S = 60.0
KIND = "any"
SEED = 0


class HuntCancelled(Exception):
    """Raised from the progress callback when the user cancels: ``hunt`` stops after the round."""


class HuntModal(ModalScreen[Any]):
    """Hunting on the app's config; on success the counterexample replaces it (see module doc)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "close", "Cancel / close")]

    def __init__(self, config: dict[str, Any], registry: Any, *, budget_s: float = BUDGET_S,
                 max_runs: int | None = None, workers: int | None = None) -> None:
        super().__init__()
        self.config = config
        self.registry = registry
        self.hunt_budget_s = budget_s
        self.hunt_max_runs = max_runs
        self.hunt_workers = workers
        self.hunt_cancel = threading.Event()
        self.hunt_done = False
        #: the outcome, for tests and the app: "found", "nothing", "failed" or "cancelled"
        self.outcome = ""

    def compose(self) -> ComposeResult:
        st = self.config["strategy"]["name"]
        io = self.config["iommu"]["model"]
        limit = f"{self.hunt_budget_s:g} s" + (f" or {self.hunt_max_runs:,} runs" if self.hunt_max_runs else "")
        with Vertical(classes="dialog wide", id="hunt-dialog"):
            yield Label(f"Hunt: strategy {st}, IOMMU {io}", classes="dialog-title")
            yield Static(Text(f"Searching event times, CPUs, bursts, device probes aimed at just-unlinked "
                              f"tables and flush durations for any memory-safety violation ({limit}, "
                              f"seed {SEED}, as `pgtable-explorer hunt`)."), id="hunt-what")
            yield ProgressBar(total=100, show_eta=False, id="hunt-progress")
            yield Static("starting…", id="hunt-status")
            with VerticalScroll(id="hunt-result-scroll"):
                yield Static("", id="hunt-result")
            yield Label("esc cancels", classes="dialog-hint", id="hunt-hint")

    def on_mount(self) -> None:
        self.run_hunt()

    @work(thread=True, exclusive=True, group="hunt")
    def run_hunt(self) -> None:
        from explorer.hunt import HuntError, hunt

        def progress(fraction: float, runs: int) -> None:
            if self.hunt_cancel.is_set():
                raise HuntCancelled
            self.app.call_from_thread(self._progress, fraction, runs)

        try:
            result = hunt(self.config, self.registry, kind=KIND, budget_s=self.hunt_budget_s,
                          max_runs=self.hunt_max_runs, seed=SEED, workers=self.hunt_workers, progress=progress)
        except HuntCancelled:
            self.app.call_from_thread(self._finish, "cancelled", None, "")
            return
        except HuntError as exc:
            self.app.call_from_thread(self._finish, "failed", None, f"{exc}\n\n{exc.traceback_text}".rstrip())
            return
        except Exception as exc:  # a surprise must not take the TUI down: show it
            self.app.call_from_thread(self._finish, "failed", None, f"{type(exc).__name__}: {exc}")
            return
        self.app.call_from_thread(self._finish, "found" if result.found else "nothing", result, "")

    def _progress(self, fraction: float, runs: int) -> None:
        if self.hunt_done or not self.is_mounted:
            return
        self.query_one("#hunt-progress", ProgressBar).update(progress=round(fraction * 100))
        self.query_one("#hunt-status", Static).update(f"{runs:,} runs, nothing yet")

    def _finish(self, outcome: str, result: Any, error: str) -> None:
        from explorer.units import human_duration

        if self.hunt_cancel.is_set() or not self.is_mounted:  # closed while it ran: nothing to show or open
            return
        self.hunt_done = True
        self.outcome = outcome
        self.query_one("#hunt-progress", ProgressBar).update(progress=100)
        status = self.query_one("#hunt-status", Static)
        body = self.query_one("#hunt-result", Static)
        self.query_one("#hunt-hint", Label).update("esc closes")
        if outcome == "found":
            self.dismiss(result)  # the app opens it once the modal is gone (its push_screen callback)
            return
        if outcome == "cancelled":
            status.update("cancelled")
            return
        if outcome == "failed":
            status.update("the hunt stopped: a plugin raised")
            body.update(Text(error))
            return
        status.update(f"nothing found in {result.runs:,} runs ({result.wall_s:.0f} s wall, "
                      f"{human_duration(float(result.simulated_ns))} simulated)")
        body.update(Text("Varied:\n  " + "\n  ".join(result.varied)
                         + "\n\nNot finding one is evidence, not proof: `pgtable-explorer hunt` with a longer "
                           "--budget or other --seed values searches further."))

    def action_close(self) -> None:
        if not self.hunt_done:
            self.hunt_cancel.set()
            self.query_one("#hunt-status", Static).update("cancelling after this round…")
            self.dismiss(None)
            return
        self.dismiss(None)


def counterexample_message(result: Any) -> str:
    """What the app says when it opens a counterexample."""
    return (f"hunt: {result.kind} in {result.events} scripted event(s) after {result.runs:,} runs. "
            "The counterexample is the config now (not saved; ^w saves it) · space plays it live")
