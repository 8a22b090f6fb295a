"""F1: what the focused part of the screen shows, then the keys of this screen and of the whole app
(from the one action table)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from explorer.tui.actions import SCREEN_TITLES, actions_for, display_key
from explorer.tui.focus_help import Here

ABOUT = {
    "config": "The config explorer, like menuconfig: Kernel, Strategy, IOMMU, Workloads and Run. "
    "● marks a value that differs from the default; dim entries are inactive under the current choices "
    "(a shows them). Edits are checked as you type; a bad value is explained under the input.",
    "run": "The live run: the simulation runs in its own process and this screen samples it ten times a "
    "second. Counters, charts over simulated time, percentiles, violations with their source, the trace "
    "(filterable), and the queues: the pending list, the work items and each IOMMU's cache.",
    "compare": "Two to four strategies (or IOMMU models) on the identical workload and seed, each in its "
    "own process; ★ marks the best value of each metric.",
    "plugins": "Every loaded plugin with its kind, origin, version and what it registers; below, every "
    "plugin that failed to load, with its error (enter shows the traceback).",
    "sweep": "A sweep of the current config: on the Config screen, w marks the selected parameter as an axis "
    "(values 64,128,256 or a range 1:1000:4:log, as the CLI's --grid and --range) and sets the seeds. space "
    "runs every point on local worker processes; each row is a point as it finishes. s sorts by the cursor's "
    "column (or click a header); enter opens the point's config on the Run screen as a live run.",
}


def keys_table(screen: str, keymap: Mapping[str, str] | None = None) -> Table:
    """The screen's keys as in effect: the user's keymap (``explorer.tui.keymap``) over the defaults."""
    t = Table(box=None, pad_edge=False, expand=True, header_style="bold")
    t.add_column("key", no_wrap=True, style="bold cyan")
    t.add_column("action", no_wrap=True)
    t.add_column("what it does", ratio=1)
    for a in actions_for(screen):
        keys = " ".join(display_key(k) for k in (keymap or {}).get(a.id, a.key).split(","))
        t.add_row(keys, a.short, a.help)
    return t


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,f1,q", "close", "Close")]

    def __init__(self, screen: str, here: Here | None = None) -> None:
        super().__init__()
        self.screen_name = screen
        self.here = here

    def compose(self) -> ComposeResult:
        name = self.screen_name
        keymap = getattr(self.app, "keymap", None)
        with Vertical(classes="dialog wide tall"):
            yield Label(f"Help: {SCREEN_TITLES.get(name, name)}", classes="dialog-title")
            with VerticalScroll(id="help-body"):
                if self.here is not None:
                    yield Static(Text(f"Here: {self.here.title}", style="bold"), id="help-here-title")
                    yield Static(self.here.body, id="help-here")
                    yield Static(Text(f"\n{SCREEN_TITLES.get(name, name)}", style="bold"))
                yield Static(Text(ABOUT.get(name, "")))
                if name in SCREEN_TITLES:
                    yield Static(Text(f"\n{SCREEN_TITLES[name]} keys", style="bold"))
                    yield Static(keys_table(name, keymap))
                yield Static(Text("\nEverywhere", style="bold"))
                yield Static(keys_table("app", keymap))
                yield Static(Text("\nctrl+p opens the command palette: every action above, the scenarios, the "
                                  "strategies and IOMMU models, the speeds and the themes.", style="dim"))
            yield Label("esc closes", classes="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)
