"""The explorer's document: the config being edited, where each value came from, and its file.

Plain data and functions, no Textual (an import-linter contract, ``tui-document-plain``, keeps it
so): the app owns one :class:`ConfigDocument` and adds what only a face can do, such as telling the
running session, notifying, asking. Every change is validated whole (``explorer.config``) before
it is made: a method either changes the document or says why not and changes nothing.

The never-lose-work rules live here too: :attr:`ConfigDocument.dirty` (the config differs from
what was last opened, loaded or saved), :meth:`~ConfigDocument.refuses` (a save never replaces a
file that is not a config, such as ``pyproject.toml``) and :meth:`~ConfigDocument.asks_before_replacing`
(an existing file other than the config's own is replaced only once the user says so). Saving goes
through :func:`explorer.config.save_config` (a temporary file renamed over the old one, which is
kept as ``FILE~``).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from explorer.config import ConfigError, Problem, default_config, load_config, load_raw, save_config, value_origins
from explorer.tui.files import not_a_config
from explorer.tui.model import (
    Tree,
    add_workload,
    build_tree,
    edit_value,
    remove_workload,
    scenario_origins,
    workload_index,
)
from explorer.tui.reload import fit_config

if TYPE_CHECKING:
    from explorer.plugins import Registry

#: The scenario the explorer starts on when it is given neither a file nor a scenario.
START_SCENARIO = "linux-6.19"


class DocumentError(Exception):
    """Opening or saving did not happen; ``str()`` is what to tell the user (nothing changed)."""


def problems_text(exc: ConfigError) -> str:
    """Every problem of ``exc``, one a line."""
    return "\n".join(str(p) for p in exc.problems)


def _shift_workload_origin(key: str, removed: int) -> str:
    """``workload[J].K`` as it is once ``workload[removed]`` is gone (J > removed moves up one)."""
    m = re.match(r"^workload\[(\d+)\]\.(.+)$", key)
    if m is None or int(m.group(1)) < removed:
        return key
    return f"workload[{int(m.group(1)) - 1}].{m.group(2)}"


class ConfigDocument:
    """The config the explorer shows and edits (canonical plain data, always valid), the plugins it
    is validated against, its file or scenario, and the origin of each value.

    ``origins`` maps a key as :func:`explorer.config.value_origins` spells it (``kernel.cpus``,
    ``workload[1].rate``) to ``"file"``, ``"scenario"``, ``"override"`` or ``"edited"``; a key
    without an entry has its default. ``reference`` is the default config (what ``d`` resets to).
    """

    def __init__(self, registry: Registry, config: Mapping[str, Any] | None = None, *, path: Path | None = None,
                 scenario: str | None = None, origins: Mapping[str, str] | None = None,
                 warnings: Iterable[Problem] = ()) -> None:
        self.registry = registry
        self.reference = default_config(registry)
        self.config: dict[str, Any] = copy.deepcopy(dict(config) if config is not None else self.reference)
        self.clean_config = copy.deepcopy(self.config)  # as last opened, loaded or saved
        self.path = path
        self.scenario = scenario
        self.origins: dict[str, str] = dict(origins or {})
        self.load_warnings: list[Problem] = list(warnings)  # what reading the file had to say

    @classmethod
    def start(cls, registry: Registry, *, config: Mapping[str, Any] | None = None, path: str | Path | None = None,
              scenario: str | None = None) -> ConfigDocument:
        """The document the explorer opens on: ``config`` as given (no file), else the file ``path``,
        else the scenario ``scenario``, else the default scenario (``linux-6.19`` when it is loaded).

        Raises :class:`ConfigError` (a bad file, an unknown scenario) and ``OSError`` (an unreadable
        file), which the command line reports before the TUI starts.
        """
        if config is not None:
            return cls(registry, config)
        if path is not None:
            resolved = Path(path).resolve()
            warnings: list[Problem] = []
            loaded = load_config(resolved, registry, warnings=warnings)
            return cls(registry, loaded, path=resolved, origins=value_origins(load_raw(resolved), config=loaded),
                       warnings=warnings)
        if scenario is not None:
            return cls(registry, default_config(registry, scenario), scenario=scenario,
                       origins=scenario_origins(registry, scenario))
        name = START_SCENARIO if START_SCENARIO in registry.scenarios else None
        return cls(registry, scenario=name, origins=scenario_origins(registry, name))

    # ------------------------------------------------------------------ reading
    @property
    def dirty(self) -> bool:
        """Whether the config has changes that are in no file (a save or a discard would settle them)."""
        return self.config != self.clean_config

    @property
    def speed(self) -> float:
        """``run.speed``: simulated microseconds per wall second (0: as fast as possible)."""
        return float(self.config["run"].get("speed", 0.0))

    def file_label(self) -> str:
        """Where the config comes from, for the top bar and the dialogs: its file (relative to the
        current folder when inside it) or its scenario, or that it is in no file."""
        if self.path is not None:
            try:
                return str(self.path.relative_to(Path.cwd()))
            except ValueError:
                return str(self.path)
        return f"scenario {self.scenario} (not saved)" if self.scenario else "(not saved)"

    def suggested_name(self) -> str:
        """The file name a save dialog proposes: the config's own, else the scenario's."""
        if self.path is not None:
            return self.path.name
        return f"{self.scenario or 'pgtable-explorer'}.toml"

    def folder(self) -> Path:
        """Where the file dialogs start: the config file's folder, else the current one."""
        return self.path.parent if self.path is not None else Path.cwd()

    def model(self) -> Tree:
        """Every parameter as an entry (:mod:`explorer.tui.model`), with its value, default and origin."""
        return build_tree(self.config, self.registry, self.reference, self.origins)

    def origin_key(self, key: str) -> str:
        """The key of :attr:`origins` (``workload[I].K``, as value_origins keys files) for an entry key
        (``workload.LABEL.K``, where LABEL is ``name#1`` for the second instance of a source)."""
        if key.startswith("workload."):
            _, label, param = key.split(".", 2)
            i = workload_index(self.config, label)
            if i is not None:
                return f"workload[{i}].{param}"
        return key

    def variant(self, key: str, value: Any) -> dict[str, Any]:
        """The config with the entry ``key`` set to ``value`` (text or canonical), validated; the
        document does not change. Raises :class:`ConfigError`, and ``KeyError`` for an unknown key."""
        entry = self.model().by_key()[key]
        return edit_value(self.config, self.registry, key, entry.param, value)

    # ------------------------------------------------------------------ editing
    def replace(self, new: Mapping[str, Any], edited: Iterable[str] = ()) -> None:
        """Make ``new`` (a validated config) the config; the ``edited`` origin keys become "edited"."""
        self.config = copy.deepcopy(dict(new))
        for key in edited:
            self.origins[key] = "edited"

    def edit(self, key: str, value: Any) -> str | None:
        """Set the entry ``key``; None when the config holds, else every problem as text (nothing changes)."""
        entry = self.model().by_key().get(key)
        if entry is None:
            return f"unknown parameter {key}"
        try:
            new = edit_value(self.config, self.registry, key, entry.param, value)
        except ConfigError as exc:
            return "; ".join(p.message if p.key in (key, "") else f"{p.key}: {p.message}" for p in exc.problems)
        self.replace(new, edited=[self.origin_key(key)])
        return None

    def reset(self, key: str) -> str | None:
        """``d``: set ``key`` back to its default, which is then where its value comes from (not an edit)."""
        entry = self.model().by_key().get(key)
        if entry is None:
            return f"unknown parameter {key}"
        problem = self.edit(key, entry.default)
        if problem is None:
            self.origins.pop(self.origin_key(key), None)  # no origin recorded: "default"
        return problem

    def set_speed(self, speed: float) -> bool:
        """Set ``run.speed`` (an edit); False when it already is ``speed``."""
        if self.speed == float(speed):
            return False
        new = copy.deepcopy(self.config)
        new["run"]["speed"] = float(speed)
        self.config = new
        self.origins["run.speed"] = "edited"
        return True

    def add_workload(self, name: str) -> str | None:
        """Add an instance of workload source ``name`` with its defaults; None, or why not."""
        try:
            new = add_workload(self.config, self.registry, name)
        except ConfigError as exc:
            return problems_text(exc)
        self.replace(new)
        return None

    def remove_workload(self, label: str) -> str | None:
        """Remove the workload instance ``label`` (``name``, or ``name#1`` for a second one of that source)."""
        i = workload_index(self.config, label)
        try:
            new = remove_workload(self.config, self.registry, label)
        except ConfigError as exc:
            return problems_text(exc)
        if i is not None:  # origins are kept by index: the instances after the removed one move up
            self.origins = {_shift_workload_origin(k, i): v for k, v in self.origins.items()
                            if not k.startswith(f"workload[{i}].")}
        self.replace(new)
        return None

    # ------------------------------------------------------------------ replacing the whole config
    def load_scenario(self, name: str) -> str | None:
        """Replace the config with the preset ``name``: not modified (it is the preset) and in no file,
        so a save must not write the preset over the file the old config came from. None, or why not."""
        try:
            new = default_config(self.registry, name)
        except ConfigError as exc:
            return problems_text(exc)
        self.scenario = name
        self.path = None
        self.origins = scenario_origins(self.registry, name)
        self.clean_config = copy.deepcopy(new)
        self.replace(new)
        return None

    def adopt(self, config: Mapping[str, Any]) -> None:
        """Make ``config`` (a hunt's counterexample) the config: in no file and unsaved, so a save asks
        for a name and leaving asks first."""
        self.path, self.scenario, self.origins = None, None, {}
        self.replace(config)

    def refit(self, registry: Registry) -> str | None:
        """The plugins were reloaded: validate the config against ``registry`` (a parameter a plugin
        no longer declares is dropped, a new one takes its default). When a plugin the config names is
        gone the config stays as it was and the problems are returned."""
        old, self.registry = self.registry, registry
        problem = None
        try:
            self.config = fit_config(self.config, old, registry)
        except ConfigError as exc:
            problem = problems_text(exc)
        self.reference = default_config(registry)
        return problem

    # ------------------------------------------------------------------ files
    def open(self, path: str) -> list[Problem]:
        """Replace the config with the file ``path`` (then clean: it is that file); return the warnings
        of reading it. Raises :class:`DocumentError` (a missing, unreadable or invalid file: nothing changes)."""
        warnings: list[Problem] = []
        try:
            new = load_config(path, self.registry, warnings=warnings)
            raw = load_raw(path)
        except ConfigError as exc:
            raise DocumentError(problems_text(exc)) from None
        except OSError as exc:
            raise DocumentError(f"cannot read {path}: {exc.strerror or exc}") from None
        self.path = Path(path).resolve()
        self.scenario = None
        self.origins = value_origins(raw, config=new)
        self.clean_config = copy.deepcopy(new)
        self.replace(new)
        return warnings

    def save(self, path: str, minimal: bool = False) -> bool:
        """Write the config to ``path`` (atomically, the old file kept as ``path~``), which becomes its
        file; False when the file already held exactly this. Raises :class:`DocumentError` when it
        cannot be written (nothing changes). Whether to write over an existing file is the caller's
        question to ask first (:meth:`refuses`, :meth:`asks_before_replacing`)."""
        try:
            changed = save_config(self.config, path, self.registry, minimal=minimal)
        except OSError as exc:
            raise DocumentError(f"cannot write {path}: {exc.strerror or exc}") from None
        except ConfigError as exc:
            raise DocumentError(problems_text(exc)) from None
        self.path = Path(path).resolve()
        self.clean_config = copy.deepcopy(self.config)
        return changed

    @staticmethod
    def refuses(path: str) -> str | None:
        """Why a save must not write ``path`` (it exists and is not a pgtable-explorer config), or None."""
        return not_a_config(path)

    def asks_before_replacing(self, path: str) -> bool:
        """Whether saving to ``path`` replaces a file other than the config's own (which a plain save
        writes anyway), so the user must say yes first."""
        return Path(path).exists() and Path(path).resolve() != self.path
