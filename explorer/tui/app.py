"""The pgtable-explorer TUI.

``pgtable-explorer`` (no arguments) opens it on the default scenario; ``pgtable-explorer tui
FILE.toml`` on a saved config. The app owns the document (:class:`ConfigDocument`: the config, the
file it came from, where each value came from, no Textual) and the sessions (``explorer.session``)
that run it: one for the Run screen, two to four for Compare; it tells them, and the screens, when
the document changes, and asks the user before anything would lose unsaved edits. Sessions report
from their reader threads with :class:`SessionUpdated` messages (at most one outstanding per
session, so they never pile up); the screen on show draws the newest snapshot, a hidden one catches
up when shown.

Why ~600 lines: what is left here is what only the App can do (sessions and their messages, the
dialogs that guard unsaved edits, screen switching, the palette); the document, the screens'
shared base and each screen already live in their own modules.
"""

from __future__ import annotations

import copy
import importlib
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import App, SystemCommand
from textual.markup import escape
from textual.screen import Screen

from explorer.config import ConfigError
from explorer.plugins import Registry, load_registry
from explorer.tui import fmt
from explorer.tui.actions import ACTIONS, SCREEN_TITLES, Action, bindings_for, display_key
from explorer.tui.document import ConfigDocument, DocumentError, problems_text
from explorer.tui.keymap import keymap_path as default_keymap_path
from explorer.tui.keymap import load_keymap
from explorer.tui.messages import ConfigChanged, SessionUpdated
from explorer.tui.model import Tree
from explorer.tui.reload import PluginWatcher, ReloadResult
from explorer.tui.screens.base import ExplorerScreen
from explorer.tui.sweep_model import SweepState

if TYPE_CHECKING:  # explorer.session loads when the first session starts, after the first frame
    from explorer.session import RunError, Session

DEFAULT_COMPARE = ("sync", "deferred", "batched")


#: The screens (modes), each imported and built the first time it is shown or asked for, so the
#: first frame waits only for the start screen (start-up time, docs/performance.md).
SCREEN_CLASSES: dict[str, tuple[str, str]] = {
    "config": ("explorer.tui.screens.config", "ConfigScreen"),
    "run": ("explorer.tui.screens.run", "RunScreen"),
    "compare": ("explorer.tui.screens.compare", "CompareScreen"),
    "plugins": ("explorer.tui.screens.plugins", "PluginsScreen"),
    "sweep": ("explorer.tui.screens.sweep", "SweepScreen"),
}


class _Screens(dict[str, ExplorerScreen]):
    """The app's screens by name, built on first use: ``[name]`` builds it, ``get``/``items``
    see only the screens built so far."""

    def __missing__(self, name: str) -> ExplorerScreen:
        if name not in SCREEN_CLASSES:
            raise KeyError(name)
        module, cls = SCREEN_CLASSES[name]
        screen: ExplorerScreen = getattr(importlib.import_module(module), cls)()
        self[name] = screen
        return screen

    def mounted(self) -> list[ExplorerScreen]:
        """The screens built and mounted so far (the hooks of ExplorerScreen are called on these)."""
        return [screen for screen in self.values() if screen.is_mounted]

    def factory(self, name: str) -> Callable[[], Screen[Any]]:
        return lambda: self[name]


class ExplorerApp(App[int]):
    """Config explorer, live run, compare and plugins: four screens (modes), keys 1-4."""

    CSS_PATH = "app.tcss"
    TITLE = "pgtable-explorer"
    BINDINGS = bindings_for("app")
    ENABLE_COMMAND_PALETTE = True

    def __init__(
        self,
        config_path: str | None = None,
        plugins_dirs: Sequence[str] = (),
        *,
        registry: Registry | None = None,
        config: Mapping[str, Any] | None = None,
        start: str = "run",
        hz: float = 10.0,
        stall_after: float = 2.0,
        entry_points: bool | None = None,
        keymap_path: str | Path | None = None,
        scenario: str | None = None,
    ) -> None:
        super().__init__()
        # the user's keys (explorer.tui.keymap): {} when there is no keymap file or it has problems
        self.keymap_path = keymap_path
        loaded = load_keymap(keymap_path)
        self.keymap: dict[str, str] = loaded.keymap
        self.keymap_problems: list[str] = loaded.problems
        self.plugins_dirs = tuple(str(Path(d).resolve()) for d in plugins_dirs)
        self.entry_points = entry_points
        if registry is None:
            registry = load_registry(self.plugins_dirs, entry_points=entry_points)
        # the config and its file; `tui --scenario NAME` with an unknown name is a ConfigError
        self.doc = ConfigDocument.start(registry, config=config, path=config_path, scenario=scenario)
        self.show_all = False
        self.start_screen = start
        self.hz = hz
        self.stall_after = stall_after
        self.step_ns = 10_000
        self.session: Session | None = None
        self.compare_kind = "strategy"
        self.compare_names: list[str] = [n for n in DEFAULT_COMPARE if n in self.registry.strategies] or sorted(
            self.registry.strategies)[:3]
        self.compare_sessions: list[Session] = []
        self.sweep_state = SweepState()  # the Sweep screen's axes and results (explorer.sweep loads on use)
        self._pending: set[str] = set()
        self._pending_lock = threading.Lock()
        self.screens_by_name = _Screens()
        # live reload of --plugins-dir files (explorer.tui.reload); what each reload did, newest last
        self.plugin_watcher: PluginWatcher | None = None
        self.reload_log: list[str] = []
        self.screen_history: list[str] = []  # the screens shown before this one, for esc
        # the Compare screen's own speed (+, -, m there), from run.speed until it is changed
        self.compare_speed = self.doc.speed

    # ------------------------------------------------------------------ screens
    def on_mount(self) -> None:
        for name in SCREEN_CLASSES:
            self.add_mode(name, self.screens_by_name.factory(name))
        if self.keymap:
            self.set_keymap(self.keymap)
        self.switch_mode(self.start_screen)
        if self.keymap_problems:
            self.notify("\n".join(self.keymap_problems) + "\nThe default keys are in effect.",
                        title="Keymap not applied", severity="error", timeout=20, markup=False)
        for w in self.doc.load_warnings:
            self.notify(str(w), severity="warning", timeout=8)
        if self.registry.failures:
            self.notify(f"{len(self.registry.failures)} plugin(s) failed to load: 4 shows them",
                        severity="warning", timeout=6)
        if self.plugins_dirs:
            self.plugin_watcher = PluginWatcher(self.plugins_dirs, self.registry, self.entry_points)
            self.set_interval(0.5, self.check_plugins)

    def check_plugins(self) -> ReloadResult | None:
        """Reload the plugins if a --plugins-dir file changed; restart the run with the new code."""
        watcher = self.plugin_watcher
        result = watcher.poll() if watcher is not None else None
        if watcher is None or result is None:
            return None
        self.reload_log.append(result.summary())
        problem = self.doc.refit(result.registry)
        if problem:  # a plugin the config names is gone: the config stays, and says so
            self.notify(problem, title="The config does not fit the reloaded plugins",
                        severity="error", timeout=10, markup=False)
        s = self.session
        if s is not None:
            s.reload_plugins(self.config, pinned=watcher.pinned, run=s.state == "running")
        if self.compare_sessions:  # new sessions: their processes load the new code
            self.start_compare()
        self.notify(result.summary() + "".join(f"\n{p}: {e}" for p, e in result.kept.items()),
                    title="Plugins reloaded", severity="warning" if result.kept else "information",
                    timeout=8, markup=False)
        self.post_message(ConfigChanged("reload"))
        for screen in self.screens_by_name.mounted():
            screen.plugins_reloaded()
        return result

    def reload_keymap(self) -> bool:
        """Read the keymap file again and apply it; a file with problems changes nothing."""
        loaded = load_keymap(self.keymap_path)
        if loaded.problems:
            self.notify("\n".join(loaded.problems) + "\nThe keys in effect stay.", title="Keymap not reloaded",
                        severity="error", timeout=20, markup=False)
            return False
        self.keymap = loaded.keymap
        self.set_keymap(self.keymap)
        for screen in self.screens_by_name.values():  # the narrow layout's wrapped footer too
            for line in screen.query("KeysLine"):
                line.redraw()  # type: ignore[attr-defined]
        changed = f"{len(self.keymap)} binding(s) remapped" if self.keymap else "no keymap: the default keys"
        self.notify(f"{changed} ({loaded.path})", title="Keymap reloaded", markup=False)
        return True

    def action_goto(self, name: str) -> None:
        if name in SCREEN_CLASSES and self.current_mode != name:
            self.screen_history.append(self.current_mode)
            del self.screen_history[:-20]
            self.switch_mode(name)

    def action_go_back(self) -> None:
        """esc on a screen (a dialog closes itself): back to the screen shown before this one."""
        while self.screen_history:
            name = self.screen_history.pop()
            if name != self.current_mode:
                self.switch_mode(name)
                return

    def action_help(self) -> None:
        from explorer.tui.screens.help import HelpScreen

        # what the focused widget shows comes first (the screen knows what has its focus)
        screen = self.screen
        self.push_screen(HelpScreen(self.current_mode, screen.focus_help() if isinstance(screen, ExplorerScreen)
                                    else None))

    # ------------------------------------------------------------------ the document
    # The document's state as the screens read it (self.doc is the one place it is kept).
    @property
    def registry(self) -> Registry:
        return self.doc.registry

    @property
    def config(self) -> dict[str, Any]:
        return self.doc.config

    @property
    def path(self) -> Path | None:
        return self.doc.path

    @path.setter
    def path(self, path: Path | None) -> None:
        self.doc.path = path

    @property
    def scenario(self) -> str | None:
        return self.doc.scenario

    @property
    def origins(self) -> dict[str, str]:
        return self.doc.origins

    @property
    def dirty(self) -> bool:
        return self.doc.dirty

    def file_label(self) -> str:
        return self.doc.file_label()

    def model(self) -> Tree:
        return self.doc.model()

    def set_config(self, new: Mapping[str, Any], reason: str = "edit", edited: Iterable[str] = ()) -> None:
        """Replace the config (a sweep point); ``edited`` origin keys are marked as edits."""
        self.doc.replace(new, edited)
        self._config_replaced(reason)

    def _config_replaced(self, reason: str) -> None:
        """The document's config changed: the Run screen's session follows it, the screens redraw."""
        s = self.session
        if s is not None:
            # The live speed is run.speed (set_speed keeps the two together); a config that replaces
            # this one (a scenario, a file, a sweep point) brings its own, which the Run screen shows
            # and a save writes, so the session must run at it too.
            speed = self.doc.speed
            if s.speed != speed:
                s.set_speed(speed)
        if s is not None and s.state in ("paused", "finished", "stopped", "failed", "starting"):
            snap = s.latest
            if s.state != "paused" or snap is None or snap.now_ns == 0:
                s.reset(self.config)
        self.post_message(ConfigChanged(reason))

    @on(ConfigChanged)
    def _config_changed(self, event: ConfigChanged) -> None:
        for screen in self.screens_by_name.mounted():
            screen.config_changed()

    def apply_edit(self, key: str, value: Any) -> str | None:
        """Set one value; None when it holds, else every problem as text (nothing changes)."""
        return self._changed_if(self.doc.edit(key, value))

    def reset_to_default(self, key: str) -> str | None:
        """``d``: set ``key`` back to its default, where its value then comes from (not an edit)."""
        return self._changed_if(self.doc.reset(key))

    def add_workload(self, name: str) -> str | None:
        return self._changed_if(self.doc.add_workload(name))

    def remove_workload(self, label: str) -> str | None:
        """Remove the workload instance ``label`` (``name``, or ``name#1`` for a second one of that source)."""
        return self._changed_if(self.doc.remove_workload(label))

    def _changed_if(self, problem: str | None) -> str | None:
        """After a document edit: tell the session and the screens when it happened (no problem)."""
        if problem is None:
            self._config_replaced("edit")
        return problem

    def load_scenario(self, name: str) -> None:
        """Replace the config with the preset ``name`` (not saved, not modified: it is the preset)."""
        problem = self.doc.load_scenario(name)
        if problem:
            self.notify(problem, severity="error")
            return
        self._config_replaced("scenario")
        sc = self.registry.scenarios[name]
        self.notify(f"scenario {name}: {sc.expected or sc.description}", timeout=6)

    def action_pick_scenario(self) -> None:
        options = [(n, n, f"{sc.description}  Expect: {sc.expected}" if sc.expected else sc.description)
                   for n, sc in sorted(self.registry.scenarios.items())]
        if not options:
            self.notify("no scenario is loaded", severity="warning")
            return
        from explorer.tui.screens.choice import ChoiceModal

        def picked(n: str | None) -> None:
            if n:
                self.unless_unsaved(f"load scenario {n}", lambda: self.load_scenario(n))

        self.push_screen(ChoiceModal("Load a scenario (replaces the config)", options, current=self.scenario),
                         picked)

    def action_hunt(self) -> None:
        """Hunt on the current config (explorer/tui/screens/hunt.py)."""
        from explorer.tui.screens.hunt import HuntModal

        # hunt_limits: what a test narrows (max_runs, workers, budget_s); a user gets the CLI's defaults
        self.push_screen(HuntModal(copy.deepcopy(self.config), self.registry, **getattr(self, "hunt_limits", {})),
                         lambda result: self.open_counterexample(result) if result is not None else None)

    def open_counterexample(self, result: Any) -> None:
        """A hunt's counterexample becomes the config (unsaved, no file: a save asks for a name),
        shown on the Run screen paused at time zero."""
        from explorer.tui.screens.hunt import counterexample_message

        self.doc.adopt(result.config)
        self._config_replaced("hunt")
        if self.session is not None and self.session.state != "starting":
            self.session.reset(self.config)
        self.action_goto("run")
        self.notify(counterexample_message(result), title="Counterexample found", timeout=12)

    def set_plugin(self, kind: str, name: str) -> None:
        key = "strategy.name" if kind == "strategy" else "iommu.model"
        problem = self.apply_edit(key, name)
        if problem:
            self.notify(problem, severity="error")
        else:
            self.notify(f"{key} = {name}", timeout=2)

    # ------------------------------------------------------------------ files
    def _save(self, path: str, minimal: bool) -> str | None:
        try:
            changed = self.doc.save(path, minimal)
        except DocumentError as exc:
            return str(exc)
        self.notify(f"saved {path}" + (" (minimal)" if minimal else "") if changed
                    else f"No change to configuration ({path})")
        self.post_message(ConfigChanged("save"))
        return None

    def action_save(self) -> None:
        self._save_to_own_file()

    def _save_to_own_file(self) -> bool:
        """Save to the config's file (asking for a name when it has none); True once saved there."""
        if self.path is None:
            self.action_save_as()
            return False
        problem = self._save(str(self.path), minimal=False)
        if problem:
            self.notify(problem, severity="error")
        return problem is None

    def action_save_as(self, minimal: bool = False, then: Callable[[], None] | None = None) -> None:
        """Ask for a file and save to it; ``then`` runs once it is saved (not when cancelled)."""
        title = "Save minimal config as (only values that differ from the defaults)" if minimal else "Save config as"
        from explorer.tui.files import looks_like_config
        from explorer.tui.screens.file_dialog import FileDialog

        doc = self.doc
        self.push_screen(FileDialog(title, doc.suggested_name(), "Save", self._save, minimal=minimal,
                                    folder=doc.folder(), refuse=doc.refuses, ask_replace=doc.asks_before_replacing,
                                    keep=looks_like_config),
                         (lambda p: then() if p else None) if then is not None else None)

    def action_save_minimal(self) -> None:
        self.action_save_as(minimal=True)

    def open_path(self, path: str) -> str | None:
        """Open the config file ``path`` (the open dialog's action); None, or why not (nothing changes)."""
        try:
            warnings = self.doc.open(path)
        except DocumentError as exc:
            return str(exc)
        self._config_replaced("open")
        for w in warnings:
            self.notify(str(w), severity="warning", timeout=8)
        self.notify(f"opened {path}")
        return None

    def action_open(self) -> None:
        self.unless_unsaved("open a file", self._open_dialog)

    def _open_dialog(self) -> None:
        from explorer.tui.screens.file_dialog import FileDialog

        self.push_screen(FileDialog("Open config", "", "Open", lambda p, _m: self.open_path(p),
                                    folder=self.doc.folder()))

    def unless_unsaved(self, doing: str, then: Callable[[], None]) -> None:
        """Run ``then`` (which replaces or drops the config) now, or, with unsaved changes, once the
        user has said so: save first (then go on), discard them, or cancel (nothing happens)."""
        if not self.dirty:
            then()
            return

        def answer(choice: str | None) -> None:
            if choice == "discard":
                then()
            elif choice == "save":
                if self.path is None:
                    self.action_save_as(then=then)  # goes on once saved; a cancelled name stays put
                elif self._save_to_own_file():
                    then()

        from explorer.tui.screens.confirm_quit import ConfirmQuit

        self.push_screen(ConfirmQuit(self.file_label(), doing), answer)

    async def action_quit(self) -> None:
        self.unless_unsaved("quit", self._quit_now)

    def _quit_now(self) -> None:
        self.shutdown_sessions()
        self.exit(0)

    def action_change_theme(self) -> None:
        self.search_themes()

    # ------------------------------------------------------------------ sessions
    def _callback(self, label: str) -> Any:
        def cb(_session: Session) -> None:
            with self._pending_lock:
                if label in self._pending:
                    return
                self._pending.add(label)
            self.post_message(SessionUpdated(label))

        return cb

    def ensure_session(self) -> Session:
        """The Run screen's session (created, paused at time zero, on first use)."""
        if self.session is None:
            from explorer.session import Session
            self.session = Session(self.config, self.plugins_dirs, speed=self.doc.speed,
                                   step_ns=self.step_ns, hz=self.hz, stall_after=self.stall_after,
                                   entry_points=self.entry_points, on_update=self._callback("main"), label="main",
                                   trace_file=True)  # the Log is the whole run (paged in from the file)
            self._pin(self.session)
            self.session.start(background=True)  # never block the event loop on starting a process
        return self.session

    def _pin(self, session: Session) -> None:
        """A new session's process loads the last good version of a plugin file that fails now."""
        if self.plugin_watcher is not None and self.plugin_watcher.pinned:
            session.opts["pinned"] = self.plugin_watcher.pinned

    def set_compare_speed(self, speed: float) -> None:
        """The Compare screen's speed, for every variant (run.speed and the Run screen keep theirs)."""
        self.compare_speed = float(speed)
        for s in self.compare_sessions:
            s.set_speed(self.compare_speed)

    def current_speed(self) -> float:
        return self.session.speed if self.session is not None else self.doc.speed

    def set_speed(self, speed: float) -> None:
        """Change the live speed; it is also ``run.speed`` of the config (saved with it)."""
        self.ensure_session().set_speed(speed)
        if self.doc.set_speed(speed):
            if self.session is not None:
                self.session.config["run"]["speed"] = float(speed)
            self.post_message(ConfigChanged("speed"))

    def start_compare(self, kind: str | None = None, names: Sequence[str] | None = None) -> None:
        """(Re)start the comparison: one session per variant, same workloads and seed, paused."""
        for s in self.compare_sessions:
            s.stop(timeout=0.2)
        self.compare_sessions = []
        if kind is not None:
            self.compare_kind = kind
        if names is not None:
            self.compare_names = list(names)
        key = "strategy.name" if self.compare_kind == "strategy" else "iommu.model"
        table = self.registry.strategies if self.compare_kind == "strategy" else self.registry.iommu_models
        names_ok = [n for n in self.compare_names if n in table]
        self.compare_names = names_ok
        for i, n in enumerate(names_ok):
            try:
                cfg = self.doc.variant(key, n)
            except ConfigError as exc:
                self.notify(f"{n}: {problems_text(exc)}", severity="error")
                continue
            from explorer.session import Session

            s = Session(cfg, self.plugins_dirs, speed=self.compare_speed, hz=self.hz,
                        stall_after=self.stall_after, trace_size=0, trace_tail=0, entry_points=self.entry_points,
                        on_update=self._callback(f"cmp{i}"), label=f"cmp-{n}")
            self._pin(s)
            s.start(background=True)
            self.compare_sessions.append(s)

    @on(SessionUpdated)
    def _session_updated(self, event: SessionUpdated) -> None:
        with self._pending_lock:
            self._pending.discard(event.label)
        # A snapshot can arrive between a screen becoming current and its widgets being composed
        # (is_mounted is set only after compose and mount): such a screen draws the newest snapshot
        # itself when it resumes, so it is skipped here rather than queried half-built.
        name = "run" if event.label == "main" else "compare"
        screen = self.screens_by_name.get(name)
        if screen is not None and screen.is_current and screen.is_mounted:
            screen.apply_latest()

    def describe_plugin(self, error: RunError | None) -> str:
        """``plugin raises 1.0 (directory: /path/raises.py)`` for a failed run's plugin."""
        if error is None:
            return ""
        info = self.registry.provider.get((error.kind, error.name))
        if info is None:
            return error.kind
        version = self.registry.version_of(error.kind, error.name)
        return f"plugin {info.name}, {error.kind} {error.name} {version} ({info.origin}: {info.location})"

    def shutdown_sessions(self) -> None:
        self.sweep_state.stop(wait=3.0)
        sessions = [s for s in (self.session, *self.compare_sessions) if s is not None]
        for s in sessions:
            s.on_update = None
        for s in sessions:
            s.stop(timeout=0.3)

    def on_unmount(self) -> None:
        self.shutdown_sessions()

    # ------------------------------------------------------------------ command palette
    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        current = self.current_mode
        for a in ACTIONS:
            if a.id in ("quit", "theme", "scenario_key", "quit_key", "back"):
                continue
            key = display_key(self.keymap.get(a.id, a.key))  # the user's keymap over the default
            yield SystemCommand(self._command_title(a, current), escape(f"{a.help} (key: {key})"),
                                lambda a=a: self._run_from_palette(a))
        where = self.keymap_path or default_keymap_path()
        yield SystemCommand("Reload keymap", escape(f"Read {where} again and apply it (a file with problems "
                                                    "changes nothing)"), self.reload_keymap)
        for name, sc in sorted(self.registry.scenarios.items()):
            yield SystemCommand(f"Load scenario: {name}", escape(sc.description),
                                lambda n=name: self.unless_unsaved(f"load scenario {n}", lambda: self.load_scenario(n)))
        for name, scls in sorted(self.registry.strategies.items()):
            yield SystemCommand(f"Strategy: {name}", escape((scls.help or "").strip()),
                                lambda n=name: self.set_plugin("strategy", n))
        for name, mcls in sorted(self.registry.iommu_models.items()):
            yield SystemCommand(f"IOMMU model: {name}", escape((mcls.help or "").strip()),
                                lambda n=name: self.set_plugin("iommu", n))
        for sp in fmt.SPEED_STEPS:
            yield SystemCommand(f"Speed: {fmt.speed(sp)}", "simulated time per wall second" if sp else
                                "as fast as possible", lambda sp=sp: self.set_speed(sp))

    @staticmethod
    def _command_title(a: Action, current: str) -> str:
        if a.screen in ("app", current) or a.title.startswith("Compare:"):
            return a.title
        return f"{SCREEN_TITLES.get(a.screen, a.screen)}: {a.title}"

    async def _run_from_palette(self, a: Action) -> None:
        if a.screen != "app" and a.screen != self.current_mode:
            self.switch_mode(a.screen)
        target = self.screens_by_name[a.screen] if a.screen in SCREEN_CLASSES else None
        action = a.action.split(".", 1)[1] if "." in a.action else a.action
        if target is not None:
            await self.run_action(action, target)
        else:
            await self.run_action(action)


def main(config_path: str | None = None, plugins_dirs: list[str] | None = None, scenario: str | None = None) -> int:
    """Run the TUI (``pgtable-explorer`` / ``pgtable-explorer tui FILE``); return the exit status."""
    dirs = list(plugins_dirs or [])
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print("error: the interactive explorer needs a terminal; "
              "use `pgtable-explorer run` (see --help) for output to a pipe or file", file=sys.stderr)
        return 2
    try:
        app = ExplorerApp(config_path, dirs, scenario=scenario)
    except ConfigError as exc:  # as the CLI prints them: one `error: ...` line each
        print("\n".join(f"error: {p}" for p in exc.problems), file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot read {config_path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    try:
        result = app.run()
    finally:
        app.shutdown_sessions()
    return int(result or 0)
