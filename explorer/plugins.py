"""Plugin discovery and the registry of everything the plugins offer.

Discovery order: the built-in ``plugins/`` (shipped inside the wheel as
``explorer/builtin_plugins``), entry points of group ``pgtable_explorer``, then each directory
given with ``--plugins-dir`` (loose ``.py`` files). A plugin that fails to import, uses an unknown
hook or registers something invalid is recorded in :attr:`Registry.failures` and skipped; the
rest keeps working. ``PGTABLE_EXPLORER_NO_ENTRYPOINTS=1`` turns off entry-point autoloading.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from explorer import hookspecs
from explorer.api import PROJECT, FreeStrategy, IommuModel, Param, Scenario, WorkloadSource

ENTRY_POINT_GROUP = "pgtable_explorer"
NO_ENTRYPOINTS_ENV = "PGTABLE_EXPLORER_NO_ENTRYPOINTS"

KINDS: dict[str, type] = {
    "strategy": FreeStrategy,
    "iommu": IommuModel,
    "workload": WorkloadSource,
    "scenario": Scenario,
}
_HOOK_KIND = {
    "register_strategies": "strategy",
    "register_iommu_models": "iommu",
    "register_workloads": "workload",
    "register_scenarios": "scenario",
}


@dataclass
class PluginInfo:
    """One plugin module: where it came from and what it registered (or why it failed)."""

    name: str
    origin: str  # "built-in", "installed package", "directory"
    location: str
    version: str = ""
    registers: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None
    traceback: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "origin": self.origin,
            "location": self.location,
            "version": self.version,
            "registers": [{"kind": k, "name": n} for k, n in self.registers],
        }
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass
class Registry:
    """Everything the loaded plugins offer, by kind and name."""

    strategies: dict[str, type[FreeStrategy]] = field(default_factory=dict)
    iommu_models: dict[str, type[IommuModel]] = field(default_factory=dict)
    workloads: dict[str, type[WorkloadSource]] = field(default_factory=dict)
    scenarios: dict[str, Scenario] = field(default_factory=dict)
    plugins: list[PluginInfo] = field(default_factory=list)
    failures: list[PluginInfo] = field(default_factory=list)
    plugins_dirs: tuple[str, ...] = ()
    #: (kind, name) -> the plugin that registered it
    provider: dict[tuple[str, str], PluginInfo] = field(default_factory=dict)

    def table(self, kind: str) -> dict[str, Any]:
        """The registrations of one kind: ``strategy``, ``iommu``, ``workload`` or ``scenario``."""
        return {
            "strategy": self.strategies,
            "iommu": self.iommu_models,
            "workload": self.workloads,
            "scenario": self.scenarios,
        }[kind]

    def version_of(self, kind: str, name: str) -> str:
        obj = self.table(kind).get(name)
        return str(getattr(obj, "version", "")) if obj is not None else ""


def builtin_plugins_dir() -> Path:
    """The first-party plugins: inside the installed package, else the source checkout's."""
    here = Path(__file__).resolve().parent
    packaged = here / "builtin_plugins"
    if packaged.is_dir():
        return packaged
    return here.parent / "plugins"


def _load_module_from_path(path: Path, modname: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(modname, None)
        raise
    return module


def _iter_py_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if not p.name.startswith("_") and "__pycache__" not in p.parts)


def _validate_registration(kind: str, obj: Any) -> str:
    """Check a registered object against the contract; return its name or raise ValueError."""
    if kind == "scenario":
        if not isinstance(obj, Scenario):
            raise ValueError(f"register_scenarios expects Scenario objects, got {obj!r}")
        return obj.name
    base = KINDS[kind]
    if not (isinstance(obj, type) and issubclass(obj, base)):
        raise ValueError(f"expected a subclass of {base.__name__}, got {obj!r}")
    if not obj.name:
        raise ValueError(f"{obj.__name__} has no 'name'")
    seen: set[str] = set()
    for p in obj.params:
        if not isinstance(p, Param):
            raise ValueError(f"{obj.name}: params must be Param objects, got {p!r}")
        if p.name in seen:
            raise ValueError(f"{obj.name}: parameter {p.name!r} declared twice")
        seen.add(p.name)
        p.canonical_default()  # a default that does not validate is a plugin bug
    return str(obj.name)


class _Loader:
    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.registry = Registry()

    def add(self, module: object, info: PluginInfo) -> None:
        """Register one plugin module and collect what it offers; on any error, skip it."""
        try:
            self.pm.register(module, name=f"{info.origin}:{info.location}:{info.name}")
        except Exception as exc:  # pluggy rejects duplicate names and bad hookimpls
            self._fail(info, exc)
            return
        try:
            self.pm.check_pending()
            collected: list[tuple[str, str, Any]] = []
            for hook_name, kind in _HOOK_KIND.items():
                impls = [i for i in getattr(self.pm.hook, hook_name).get_hookimpls() if i.plugin is module]
                for impl in impls:
                    found: list[Any] = []
                    impl.function(register=found.append)
                    for obj in found:
                        collected.append((kind, _validate_registration(kind, obj), obj))
            for kind, name, _ in collected:
                if (kind, name) in self.registry.provider:
                    other = self.registry.provider[(kind, name)]
                    raise ValueError(f"{kind} {name!r} is already registered by {other.name} ({other.origin})")
        except Exception as exc:
            self.pm.unregister(module)
            self._fail(info, exc)
            return
        for kind, name, obj in collected:
            self.registry.table(kind)[name] = obj
            self.registry.provider[(kind, name)] = info
            info.registers.append((kind, name))
        self.registry.plugins.append(info)

    def _fail(self, info: PluginInfo, exc: BaseException) -> None:
        info.error = f"{type(exc).__name__}: {exc}"
        info.traceback = "".join(traceback.format_exception(exc))
        self.registry.failures.append(info)

    def load_file(self, path: Path, origin: str, modname: str) -> None:
        info = PluginInfo(name=path.stem, origin=origin, location=str(path))
        try:
            module = _load_module_from_path(path, modname)
        except BaseException as exc:  # a plugin may even call sys.exit(); never let it kill us
            if isinstance(exc, KeyboardInterrupt):
                raise
            self._fail(info, exc)
            return
        info.version = str(getattr(module, "__version__", "") or "")
        self.add(module, info)


def load_registry(
    plugins_dirs: Sequence[str | os.PathLike[str]] = (),
    *,
    entry_points: bool | None = None,
) -> Registry:
    """Discover and load every plugin; never raises for a broken plugin.

    ``entry_points=None`` autoloads installed packages unless ``PGTABLE_EXPLORER_NO_ENTRYPOINTS``
    is set to a non-empty value other than ``0``.
    """
    loader = _Loader()
    from explorer import __version__

    builtin = builtin_plugins_dir()
    for path in _iter_py_files(builtin):
        rel = path.relative_to(builtin).with_suffix("")
        loader.load_file(path, "built-in", "pgtable_explorer_builtin." + ".".join(rel.parts))
    for info in loader.registry.plugins + loader.registry.failures:
        if info.origin == "built-in" and not info.version:
            info.version = __version__

    if entry_points is None:
        entry_points = os.environ.get(NO_ENTRYPOINTS_ENV, "") in ("", "0")
    if entry_points:
        for ep in _entry_points():
            dist = getattr(ep, "dist", None)
            info = PluginInfo(
                name=ep.name,
                origin="installed package",
                location=f"{ep.value}" + (f" ({dist.name})" if dist is not None else ""),
                version=str(getattr(dist, "version", "") or ""),
            )
            try:
                module = ep.load()
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt):
                    raise
                loader._fail(info, exc)
                continue
            loader.add(module, info)

    dirs: list[str] = []
    for i, d in enumerate(plugins_dirs):
        root = Path(d)
        dirs.append(str(root.resolve()))
        if not root.is_dir():
            loader._fail(PluginInfo(name=str(d), origin="directory", location=str(root)), NotADirectoryError(f"no such directory: {d}"))
            continue
        for path in _iter_py_files(root):
            rel = path.relative_to(root).with_suffix("")
            loader.load_file(path, "directory", f"pgtable_explorer_dir{i}." + ".".join(rel.parts))
    loader.registry.plugins_dirs = tuple(dirs)
    return loader.registry


def _entry_points() -> Iterable[importlib.metadata.EntryPoint]:
    return importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
