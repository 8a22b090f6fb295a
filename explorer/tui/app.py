"""The pgtable-explorer TUI.

``pgtable-explorer`` (no arguments) opens it on the default scenario; ``pgtable-explorer tui
FILE.toml`` on a saved config. The app owns the config (canonical plain data, validated with
``explorer.config``), the file it came from, and the sessions (``explorer.session``) that run it:
one for the Run screen, two to four for Compare. Sessions report from their reader threads with
:class:`SessionUpdated` messages (at most one outstanding per session, so they never pile up);
the screen on show draws the newest snapshot, a hidden one catches up when shown.
"""

from __future__ import annotations

import copy
import importlib
import re
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import App, SystemCommand
from textual.markup import escape
from textual.screen import Screen

from explorer.config import (
    ConfigError,
    Problem,
    default_config,
    load_config,
    load_raw,
    save_config,
    value_origins,
)
from explorer.plugins import Registry, load_registry
from explorer.tui import fmt
from explorer.tui.actions import ACTIONS, SCREEN_TITLES, Action, bindings_for, display_key
from explorer.tui.keymap import keymap_path as default_keymap_path
from explorer.tui.keymap import load_keymap
from explorer.tui.messages import ConfigChanged, SessionUpdated
from explorer.tui.model import (
    Tree,
    add_workload,
    build_tree,
    edit_value,
    remove_workload,
    scenario_origins,
    workload_index,
)
from explorer.tui.reload import PluginWatcher, ReloadResult, fit_config
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


class _Screens(dict[str, Screen[Any]]):
    """The app's screens by name, built on first use: ``[name]`` builds it, ``get``/``items``
    see only the screens built so far."""

    def __missing__(self, name: str) -> Screen[Any]:
        if name not in SCREEN_CLASSES:
            raise KeyError(name)
        module, cls = SCREEN_CLASSES[name]
        screen: Screen[Any] = getattr(importlib.import_module(module), cls)()
        self[name] = screen
        return screen

    def factory(self, name: str) -> Callable[[], Screen[Any]]:
        return lambda: self[name]


def _problems_text(exc: ConfigError) -> str:
    return "\n".join(str(p) for p in exc.problems)


def _shift_workload_origin(key: str, removed: int) -> str:
    """``workload[J].K`` as it is once ``workload[removed]`` is gone (J > removed moves up one)."""
    m = re.match(r"^workload\[(\d+)\]\.(.+)$", key)
    if m is None or int(m.group(1)) < removed:
        return key
    return f"workload[{int(m.group(1)) - 1}].{m.group(2)}"


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
        self.registry = registry if registry is not None else load_registry(self.plugins_dirs,
                                                                             entry_points=entry_points)
        self.reference = default_config(self.registry)
        self.path: Path | None = None
        self.origins: dict[str, str] = {}
        self.scenario: str | None = None
        self.load_warnings: list[Problem] = []
        if config is not None:
            self.config: dict[str, Any] = copy.deepcopy(dict(config))
        elif config_path is not None:
            self.path = Path(config_path).resolve()
            self.config = load_config(self.path, self.registry, warnings=self.load_warnings)
            self.origins = value_origins(load_raw(self.path), config=self.config)
        elif scenario is not None:  # `tui --scenario NAME`; an unknown name is a ConfigError
            self.config = default_config(self.registry, scenario)
            self.scenario = scenario
            self.origins = scenario_origins(self.registry, scenario)
        else:
            self.config = copy.deepcopy(self.reference)
            self.scenario = "linux-6.19" if "linux-6.19" in self.registry.scenarios else None
            self.origins = scenario_origins(self.registry, self.scenario)
        self.clean_config = copy.deepcopy(self.config)
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
        self.compare_speed = float(self.config["run"].get("speed", 0.0))

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
        for w in self.load_warnings:
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
        old, self.registry = self.registry, result.registry
        self.reload_log.append(result.summary())
        try:
            self.config = fit_config(self.config, old, self.registry)
        except ConfigError as exc:  # a plugin the config names is gone: keep the config, say so
            self.notify(_problems_text(exc), title="The config does not fit the reloaded plugins",
                        severity="error", timeout=10, markup=False)
        self.reference = default_config(self.registry)
        s = self.session
        if s is not None:
            s.reload_plugins(self.config, pinned=watcher.pinned, run=s.state == "running")
        if self.compare_sessions:  # new sessions: their processes load the new code
            self.start_compare()
        self.notify(result.summary() + "".join(f"\n{p}: {e}" for p, e in result.kept.items()),
                    title="Plugins reloaded", severity="warning" if result.kept else "information",
                    timeout=8, markup=False)
        self.post_message(ConfigChanged("reload"))
        screen = self.screens_by_name.get("plugins")
        if screen is not None and screen.is_mounted and hasattr(screen, "populate"):
            screen.populate()
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
        here_of = getattr(self.screen, "focus_help", None)
        self.push_screen(HelpScreen(self.current_mode, here_of() if callable(here_of) else None))

    # ------------------------------------------------------------------ config state
    @property
    def dirty(self) -> bool:
        return self.config != self.clean_config

    def file_label(self) -> str:
        if self.path is not None:
            try:
                return str(self.path.relative_to(Path.cwd()))
            except ValueError:
                return str(self.path)
        return f"scenario {self.scenario} (not saved)" if self.scenario else "(not saved)"

    def model(self) -> Tree:
        return build_tree(self.config, self.registry, self.reference, self.origins)

    def set_config(self, new: Mapping[str, Any], reason: str = "edit", edited: Iterable[str] = ()) -> None:
        self.config = copy.deepcopy(dict(new))
        for key in edited:
            self.origins[key] = "edited"
        s = self.session
        if s is not None:
            # The live speed is run.speed (set_speed keeps the two together); a config that replaces
            # this one (a scenario, a file, a sweep point) brings its own, which the Run screen shows
            # and a save writes, so the session must run at it too.
            speed = float(self.config["run"].get("speed", 0.0))
            if s.speed != speed:
                s.set_speed(speed)
        if s is not None and s.state in ("paused", "finished", "stopped", "failed", "starting"):
            snap = s.latest
            if s.state != "paused" or snap is None or snap.now_ns == 0:
                s.reset(self.config)
        self.post_message(ConfigChanged(reason))

    @on(ConfigChanged)
    def _config_changed(self, event: ConfigChanged) -> None:
        for name, screen in self.screens_by_name.items():
            if not screen.is_mounted:
                continue
            if name == "config" and hasattr(screen, "refresh_config"):
                screen.refresh_config()
            elif hasattr(screen, "refresh_top"):
                screen.refresh_top()

    def _origin_key(self, key: str) -> str:
        """The key of ``self.origins`` (``workload[I].K``, as value_origins keys files) for an entry key
        (``workload.LABEL.K``, where LABEL is ``name#1`` for the second instance of a source)."""
        if key.startswith("workload."):
            _, label, param = key.split(".", 2)
            i = workload_index(self.config, label)
            if i is not None:
                return f"workload[{i}].{param}"
        return key

    def apply_edit(self, key: str, value: Any) -> str | None:
        """Set one value; None when it holds, else every problem as text (nothing changes)."""
        entry = self.model().by_key().get(key)
        if entry is None:
            return f"unknown parameter {key}"
        try:
            new = edit_value(self.config, self.registry, key, entry.param, value)
        except ConfigError as exc:
            return "; ".join(p.message if p.key in (key, "") else f"{p.key}: {p.message}" for p in exc.problems)
        self.set_config(new, edited=[self._origin_key(key)])
        return None

    def reset_to_default(self, key: str) -> str | None:
        """``d``: set ``key`` back to its default, where its value then comes from (not an edit)."""
        entry = self.model().by_key().get(key)
        if entry is None:
            return f"unknown parameter {key}"
        problem = self.apply_edit(key, entry.default)
        if problem is None:
            self.origins.pop(self._origin_key(key), None)  # no origin recorded: "default"
        return problem

    def add_workload(self, name: str) -> str | None:
        try:
            new = add_workload(self.config, self.registry, name)
        except ConfigError as exc:
            return _problems_text(exc)
        self.set_config(new)
        return None

    def remove_workload(self, label: str) -> str | None:
        """Remove the workload instance ``label`` (``name``, or ``name#1`` for a second one of that source)."""
        i = workload_index(self.config, label)
        try:
            new = remove_workload(self.config, self.registry, label)
        except ConfigError as exc:
            return _problems_text(exc)
        if i is not None:  # origins are kept by index: the instances after the removed one move up
            self.origins = {_shift_workload_origin(k, i): v for k, v in self.origins.items()
                            if not k.startswith(f"workload[{i}].")}
        self.set_config(new)
        return None

    def load_scenario(self, name: str) -> None:
        """Replace the config with the preset ``name`` (not saved, not modified: it is the preset)."""
        try:
            new = default_config(self.registry, name)
        except ConfigError as exc:
            self.notify(_problems_text(exc), severity="error")
            return
        self.scenario = name
        self.path = None  # a save must not write the preset over the file the old config came from
        self.origins = scenario_origins(self.registry, name)
        self.clean_config = copy.deepcopy(new)
        self.set_config(new, reason="scenario")
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

        self.path, self.scenario, self.origins = None, None, {}
        self.set_config(result.config, reason="hunt")
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
            changed = save_config(self.config, path, self.registry, minimal=minimal)
        except OSError as exc:
            return f"cannot write {path}: {exc.strerror or exc}"
        except ConfigError as exc:
            return _problems_text(exc)
        self.path = Path(path).resolve()
        self.clean_config = copy.deepcopy(self.config)
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

    def _suggested_name(self) -> str:
        if self.path is not None:
            return self.path.name
        return f"{self.scenario or 'pgtable-explorer'}.toml"

    def action_save_as(self, minimal: bool = False, then: Callable[[], None] | None = None) -> None:
        """Ask for a file and save to it; ``then`` runs once it is saved (not when cancelled)."""
        folder = self.path.parent if self.path is not None else Path.cwd()
        title = "Save minimal config as (only values that differ from the defaults)" if minimal else "Save config as"
        from explorer.tui.files import looks_like_config, not_a_config
        from explorer.tui.screens.file_dialog import FileDialog

        own = self.path

        def ask_replace(path: str) -> bool:  # the config's own file is what ctrl+s writes anyway
            return Path(path).exists() and Path(path).resolve() != own

        self.push_screen(FileDialog(title, self._suggested_name(), "Save", self._save, minimal=minimal,
                                    folder=folder, refuse=not_a_config, ask_replace=ask_replace,
                                    keep=looks_like_config),
                         (lambda p: then() if p else None) if then is not None else None)

    def action_save_minimal(self) -> None:
        self.action_save_as(minimal=True)

    def open_path(self, path: str) -> str | None:
        warnings: list[Problem] = []
        try:
            new = load_config(path, self.registry, warnings=warnings)
            raw = load_raw(path)
        except ConfigError as exc:
            return _problems_text(exc)
        except OSError as exc:
            return f"cannot read {path}: {exc.strerror or exc}"
        self.path = Path(path).resolve()
        self.scenario = None
        self.origins = value_origins(raw, config=new)
        self.clean_config = copy.deepcopy(new)
        self.set_config(new, reason="open")
        for w in warnings:
            self.notify(str(w), severity="warning", timeout=8)
        self.notify(f"opened {path}")
        return None

    def action_open(self) -> None:
        self.unless_unsaved("open a file", self._open_dialog)

    def _open_dialog(self) -> None:
        folder = self.path.parent if self.path is not None else Path.cwd()
        from explorer.tui.screens.file_dialog import FileDialog

        self.push_screen(FileDialog("Open config", "", "Open", lambda p, _m: self.open_path(p), folder=folder))

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
            self.session = Session(self.config, self.plugins_dirs, speed=float(self.config["run"].get("speed", 0.0)),
                                   step_ns=self.step_ns, hz=self.hz, stall_after=self.stall_after,
                                   entry_points=self.entry_points, on_update=self._callback("main"), label="main")
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
        return self.session.speed if self.session is not None else float(self.config["run"].get("speed", 0.0))

    def set_speed(self, speed: float) -> None:
        """Change the live speed; it is also ``run.speed`` of the config (saved with it)."""
        self.ensure_session().set_speed(speed)
        if float(self.config["run"].get("speed", 0.0)) != float(speed):
            new = copy.deepcopy(self.config)
            new["run"]["speed"] = float(speed)
            self.config = new
            self.origins["run.speed"] = "edited"
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
            entry = self.model().by_key()[key]
            try:
                cfg = edit_value(self.config, self.registry, key, entry.param, n)
            except ConfigError as exc:
                self.notify(f"{n}: {_problems_text(exc)}", severity="error")
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
        if screen is not None and screen.is_current and screen.is_mounted and hasattr(screen, "apply_latest"):
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
