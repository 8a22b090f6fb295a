"""One table of every action: it feeds the key bindings, the footer, F1 help, the command palette
and docs/tui.md, so they never disagree.

``screen`` is ``app`` for actions that work everywhere, else the screen (``config``, ``run``,
``compare``, ``plugins``, ``sweep``) whose bindings carry it. ``footer`` says whether the footer shows it
(the footer must fit 80 columns); every action is in F1 help and the command palette.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding, BindingType


@dataclass(frozen=True)
class Action:
    id: str
    key: str  # Textual key spec, may list several ("plus,equals_sign")
    title: str  # the palette's command name
    short: str  # the footer's word
    action: str  # the Textual action string
    screen: str = "app"
    footer: bool = False
    help: str = ""
    priority: bool = False

    @property
    def display_key(self) -> str:
        return display_key(self.key)

    def binding(self) -> Binding:
        return Binding(self.key, self.action, self.short, show=self.footer, id=self.id, priority=self.priority,
                       tooltip=self.help)


ACTIONS: tuple[Action, ...] = (
    # everywhere
    # no key in a help text: the keymap may move it, and the footer, F1 help and palette show the key
    Action("help", "f1,question_mark", "Help", "Help", "app.help", footer=True,
           help="What the focused part of the screen shows, then the keys."),
    Action("back", "escape", "Back", "Back", "app.go_back",
           help="Close what is open, or go back to the screen shown before."),
    Action("screen.config", "1", "Go to Config", "Config", "app.goto('config')",
           help="The config explorer: kernel, strategy, IOMMU, workloads, run."),
    Action("screen.run", "2", "Go to Run", "Run", "app.goto('run')", help="The live run dashboard."),
    Action("screen.compare", "3", "Go to Compare", "Compare", "app.goto('compare')",
           help="Two to four strategies or IOMMU models side by side on the same workload and seed."),
    Action("screen.plugins", "4", "Go to Plugins", "Plugins", "app.goto('plugins')",
           help="Every loaded plugin, and every plugin that failed to load."),
    Action("screen.sweep", "5", "Go to Sweep", "Sweep", "app.goto('sweep')",
           help="Run the config over a grid of parameters and seeds; sort the results, open a point live."),
    Action("save", "ctrl+s", "Save config", "Save", "app.save", footer=True,
           help="Save the config to its file (atomic; the "
           "old file is kept as FILE~). Asks for a file name the first time."),
    Action("save_as", "ctrl+w", "Save config as…", "Save as", "app.save_as", help="Save the config to a new file."),
    Action("save_minimal", "ctrl+k", "Save minimal config as…", "Save minimal", "app.save_minimal",
           help="Save only the values that differ from the defaults."),
    Action("open", "ctrl+o", "Open config…", "Open", "app.open", help="Load a TOML config file."),
    Action("scenario", "ctrl+l", "Load scenario…", "Scenario", "app.pick_scenario",
           help="Replace the config with a preset scenario (the kernel's history of this bug)."),
    Action("hunt", "h", "Hunt for a use-after-free", "Hunt", "app.hunt",
           help="Search the current config for a memory-safety violation (event times, CPUs, bursts, device "
           "probes, flush durations; 60 s) and open the shrunk counterexample on the Run screen, ready to play."),
    Action("theme", "ctrl+t", "Change theme", "Theme", "app.change_theme", help="Pick one of the Textual themes."),
    Action("quit", "ctrl+q", "Quit", "Quit", "app.quit", help="Quit; asks first when there are unsaved changes.",
           priority=True),
    Action("quit_key", "q", "Quit", "Quit", "app.quit",
           help="Quit (as ctrl+q, but not while typing in a field); asks first when there are unsaved changes."),
    # config
    Action("edit", "enter", "Edit the selected value", "Edit", "screen.edit", "config", True,
           "Edit the selected value (a choice opens a list; a boolean toggles). Validated as you type."),
    Action("info", "question_mark", "Show parameter info", "Info", "screen.info", "config", True,
           "Type, unit, default, current value, where it came from, and which plugin declares it."),
    Action("search", "slash", "Search parameters", "Search", "screen.search", "config", True,
           "Search parameter names and help text, and jump to a hit."),
    Action("show_all", "a", "Toggle show-all", "All", "screen.toggle_all", "config", True,
           "Also show parameters that are inactive under the current choices (dimmed)."),
    Action("default", "d", "Reset value to default", "Default", "screen.reset_default", "config", False,
           "Set the selected parameter back to its default."),
    Action("add_workload", "plus", "Add a workload source", "Add", "screen.add_workload", "config", False,
           "Add a loaded workload source to the config (again: a second instance)."),
    Action("remove_workload", "minus,delete", "Remove the workload source", "Remove", "screen.remove_workload",
           "config", False, "Remove the selected workload source from the config."),
    Action("scenario_key", "l", "Load scenario…", "Scenario", "app.pick_scenario", "config", True,
           "Replace the config with a preset scenario."),
    Action("sweep_axis", "w", "Sweep this parameter…", "Sweep", "screen.sweep_axis", "config", False,
           "Make the selected parameter a sweep axis: values V1,V2,... or a range START:STOP:STEPS[:log] "
           "(as the CLI's --grid/--range), and the seeds. 5 shows the sweep."),
    # run
    Action("toggle", "space", "Run / pause", "Run/Pause", "screen.run_pause", "run", True,
           "Run the simulation, or pause it."),
    Action("step", "s,full_stop", "Step one batch", "Step", "screen.step", "run", True,
           "Advance one batch of events (the step size of simulated time), then pause."),
    Action("reset", "r", "Reset the run", "Reset", "screen.reset", "run", True,
           "Start over from time zero with the current config."),
    Action("faster", "plus,equals_sign", "Faster", "Faster", "screen.faster", "run", True,
           "More simulated time per wall second (up to as fast as possible)."),
    Action("slower", "minus", "Slower", "Slower", "screen.slower", "run", True,
           "Less simulated time per wall second (down to slow motion, 1 µs per second)."),
    Action("max_speed", "m", "As fast as possible", "Max", "screen.max_speed", "run", True,
           "Run as fast as the simulation process can."),
    Action("step_size", "t", "Cycle step size", "Size", "screen.cycle_step", "run", True,
           "Cycle the simulated time one step advances: 1 µs, 10 µs, 100 µs, 1 ms."),
    Action("stop", "x", "Stop the simulation process", "Stop", "screen.stop", "run", True,
           "Terminate the simulation process (a plugin that hangs); r starts a new one."),
    Action("filter", "f", "Filter the event log", "Filter", "screen.filter", "run", True,
           "Focus the event-log filter: words that must all appear, -word to exclude."),
    Action("export", "e", "Export metrics…", "Export", "screen.export", "run", True,
           "Write the current run's metrics as JSON or CSV."),
    Action("copy", "y", "Copy metrics to clipboard", "Copy", "screen.copy", "run", True,
           "Copy the current run's metrics (JSON) to the clipboard (OSC 52)."),
    Action("copy_trace", "c", "Copy the error's traceback", "Copy tb", "screen.copy_traceback", "run", False,
           "Copy the failed plugin's traceback to the clipboard."),
    # compare
    Action("cmp_toggle", "space", "Compare: run / pause all", "Run/Pause", "screen.run_pause", "compare", True,
           "Run or pause every variant."),
    Action("cmp_reset", "r", "Compare: reset all", "Reset", "screen.reset", "compare", True,
           "Start every variant over from time zero."),
    Action("cmp_faster", "plus,equals_sign", "Compare: faster", "Faster", "screen.faster", "compare", False,
           "More simulated time per wall second for every variant (the comparison's own speed)."),
    Action("cmp_slower", "minus", "Compare: slower", "Slower", "screen.slower", "compare", False,
           "Less simulated time per wall second for every variant."),
    Action("cmp_max", "m", "Compare: as fast as possible", "Max", "screen.max_speed", "compare", False,
           "Run every variant as fast as its simulation process can."),
    Action("cmp_choose", "c", "Compare: choose variants…", "Choose", "screen.choose", "compare", True,
           "Pick 2-4 strategies or IOMMU models to compare."),
    Action("cmp_stop", "x", "Compare: stop all", "Stop", "screen.stop", "compare", False,
           "Terminate every variant's simulation process."),
    Action("cmp_export", "e", "Compare: export…", "Export", "screen.export", "compare", False,
           "Write every variant's metrics as JSON or CSV."),
    Action("cmp_copy", "y", "Compare: copy to clipboard", "Copy", "screen.copy", "compare", False,
           "Copy the comparison (JSON) to the clipboard."),
    # plugins
    Action("plugin_detail", "i,enter", "Show plugin details", "Details", "screen.details", "plugins", True,
           "What the plugin registers, or the full traceback of a failure."),
    # sweep
    Action("sw_start", "space", "Start / stop the sweep", "Start/Stop", "screen.start_stop", "sweep", True,
           "Start the sweep over the current config on local worker processes (one per CPU unless Seeds "
           "says otherwise), or stop it (finished points are kept)."),
    Action("sw_open", "enter", "Open the point as a live run", "Open", "screen.open_point", "sweep", True,
           "Open the selected result's config on the Run screen, paused at time zero (it replaces the config). "
           "Enter on an axis edits it."),
    Action("sw_sort", "s", "Sort the results by this column", "Sort", "screen.sort", "sweep", True,
           "Sort the results by the cursor's column; again reverses. A click on a header does the same."),
    Action("sw_add", "a", "Add a sweep axis…", "Add axis", "screen.add_axis", "sweep", True,
           "Pick a parameter and its values (w on the Config screen does the same for the selected one)."),
    Action("sw_remove", "minus,delete", "Remove the sweep axis", "Remove", "screen.remove_axis", "sweep", False,
           "Stop sweeping the selected axis."),
    Action("sw_seeds", "n", "Seeds and workers…", "Seeds", "screen.seeds", "sweep", False,
           "Seeds per combination (the config's seed and the ones after it) and the local worker processes "
           "(as the CLI's --workers; by default one per CPU)."),
    Action("sw_out", "o", "Sweep results file…", "File", "screen.out_file", "sweep", False,
           "Also write the results as they finish to a CSV file (and JSON Lines beside it), as the CLI's --out."),
)


def display_key(key: str) -> str:
    """The first of the keys in a Textual key spec, as the footer and F1 help show it."""
    first = key.split(",")[0]
    names = {
        "space": "space", "enter": "enter", "question_mark": "?", "slash": "/", "plus": "+", "minus": "-",
        "full_stop": ".", "delete": "del", "escape": "esc", "greater_than_sign": ">", "less_than_sign": "<",
        "comma": ",", "equals_sign": "=",
    }
    if first in names:
        return names[first]
    if first.startswith("ctrl+"):
        return "^" + first[5:]
    return first


SCREEN_TITLES = {"config": "Config", "run": "Run", "compare": "Compare", "plugins": "Plugins", "sweep": "Sweep"}


def bindings_for(screen: str) -> list[BindingType]:
    return [a.binding() for a in ACTIONS if a.screen == screen]


def actions_for(screen: str) -> list[Action]:
    return [a for a in ACTIONS if a.screen == screen]
