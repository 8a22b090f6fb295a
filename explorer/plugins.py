"""Plugin discovery and the registry of everything the plugins offer.

Discovery order: the built-in ``plugins/`` (shipped inside the wheel as
``explorer/builtin_plugins``), entry points of group ``pgtable_explorer``, then each directory
given with ``--plugins-dir`` (loose ``.py`` files). A plugin that fails to import, uses an unknown
hook or registers something invalid is recorded in :attr:`Registry.failures` and skipped; the
rest keeps working. ``PGTABLE_EXPLORER_NO_ENTRYPOINTS=1`` turns off entry-point autoloading.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import importlib.util
import os
import sys
import traceback
from collections.abc import Iterable, Mapping, Sequence
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
    #: things worth knowing that did not stop it loading (a hook function without @hookimpl)
    warnings: list[str] = field(default_factory=list)

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
        if self.warnings:
            out["warnings"] = list(self.warnings)
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
        tables: dict[str, dict[str, Any]] = {
            "strategy": self.strategies,
            "iommu": self.iommu_models,
            "workload": self.workloads,
            "scenario": self.scenarios,
        }
        return tables[kind]

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


def _load_module_from_path(path: Path, modname: str, source: str | None = None) -> ModuleType:
    if source is not None:  # a pinned earlier version of the file (see load_registry's ``pinned``)
        module = ModuleType(modname)
        module.__file__ = str(path)
        sys.modules[modname] = module
        try:
            exec(compile(source, str(path), "exec"), module.__dict__)
        except BaseException:
            sys.modules.pop(modname, None)
            raise
        return module
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


def iter_py_files(root: Path) -> list[Path]:
    """The plugin files under ``root``: ``*.py``, skipping any file or folder whose name starts
    with ``_`` or ``.`` (helpers, ``__pycache__``, a ``.venv`` or ``.git`` inside the folder)."""
    return sorted(
        p for p in root.rglob("*.py") if not any(part.startswith(("_", ".")) for part in p.relative_to(root).parts)
    )


#: The method each kind must override (an IOMMU model only when it is ``present``).
_REQUIRED_METHOD = {
    "strategy": "pagetable_free_kernel",
    "iommu": "invalidate_kernel_range",
    "workload": "process",
}


def _validate_params(owner: str, params: Any) -> None:
    if isinstance(params, Param):
        raise ValueError(
            f"{owner}: params must be a tuple of Param objects, got a single Param "
            "(a one-element tuple needs a trailing comma: params = (Param(...),))"
        )
    try:
        declared = list(params)
    except TypeError:
        raise ValueError(f"{owner}: params must be a tuple of Param objects, got {params!r}") from None
    seen: set[str] = set()
    for p in declared:
        if not isinstance(p, Param):
            raise ValueError(f"{owner}: params must be Param objects, got {p!r}")
        if not (isinstance(p.name, str) and p.name.isidentifier()):
            raise ValueError(f"{owner}: parameter name {p.name!r} is not an identifier (letters, digits, _)")
        if p.name in seen:
            raise ValueError(f"{owner}: parameter {p.name!r} declared twice")
        seen.add(p.name)
        if p.min is not None and p.max is not None and p.min > p.max:
            raise ValueError(f"{owner}: parameter {p.name!r}: min {p.min} is above max {p.max}")
        try:
            p.canonical_default()  # a default that does not validate is a plugin bug
        except ValueError as exc:
            raise ValueError(f"{owner}: parameter {p.name!r}: default {p.default!r}: {exc}") from None


def validate_registration(kind: str, obj: Any) -> str:
    """Check a registered object against the contract; return its name or raise ValueError."""
    if kind == "scenario":
        if not isinstance(obj, Scenario):
            raise ValueError(f"register_scenarios expects Scenario objects, got {obj!r}")
        if not (isinstance(obj.name, str) and obj.name):
            raise ValueError(f"a Scenario needs a non-empty string name, got {obj.name!r}")
        return obj.name
    base: Any = KINDS[kind]
    if isinstance(obj, base):
        raise ValueError(f"expected a subclass of {base.__name__}: register the class, not an instance ({obj!r})")
    if not (isinstance(obj, type) and issubclass(obj, base)):
        raise ValueError(f"expected a subclass of {base.__name__}, got {obj!r}")
    cls: Any = obj  # a subclass of one of the declared bases: has name, params, ...
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no 'name'")
    if not isinstance(cls.name, str):
        raise ValueError(f"{cls.__name__}: name must be a string, got {cls.name!r}")
    method = _REQUIRED_METHOD[kind]
    if getattr(cls, method) is getattr(base, method) and getattr(cls, "present", True):
        raise ValueError(f"{cls.name} ({cls.__name__}) does not implement {method}()")
    _validate_params(cls.name, cls.params)
    return cls.name


def _unmarked_hooks(module: object) -> list[str]:
    """Functions of ``module`` named like a hook (or nearly) but without ``@hookimpl``: pluggy
    ignores them, so the plugin silently registers nothing through them."""
    marker = f"{PROJECT}_impl"
    out = []
    for name, obj in sorted(vars(module).items()):
        if not (callable(obj) and getattr(obj, "__module__", None) == getattr(module, "__name__", object())):
            continue
        if hasattr(obj, marker) or not name.startswith("register"):
            continue
        close = name if name in _HOOK_KIND else next(iter(difflib.get_close_matches(name, _HOOK_KIND, n=1)), None)
        if close is None:
            continue
        what = f"{name}() looks like the hook {close!r}" if close != name else f"{name}() is a hook"
        out.append(f"{what} but has no @hookimpl, so it is never called; decorate it with "
                   "@hookimpl (from explorer.api import hookimpl)")
    return out


class _Loader:
    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.registry = Registry()
        self.loaded_files: set[Path] = set()
        self.pinned: Mapping[str, str] = {}

    def add(self, module: object, info: PluginInfo) -> None:
        """Register one plugin module and collect what it offers; on any error, skip it whole."""
        pm_name = f"{info.origin}:{info.location}:{info.name}"
        try:
            self.pm.register(module, name=pm_name)
        except BaseException as exc:  # pluggy rejects duplicate names and bad hookimpls
            if isinstance(exc, KeyboardInterrupt):
                raise
            # pluggy < 1.7 could leave a plugin half-registered when one of its hookimpls failed
            # validation; what it left would make check_pending() fail for every later plugin.
            if self.pm.get_name(module) == pm_name:
                self.pm.unregister(module, name=pm_name)
            self._fail(info, exc)
            return
        try:
            self._check_hook_names(module)
            self.pm.check_pending()
            collected: dict[tuple[str, str], Any] = {}
            for hook_name, kind in _HOOK_KIND.items():
                impls = [i for i in getattr(self.pm.hook, hook_name).get_hookimpls() if i.plugin is module]
                for impl in impls:
                    found: list[Any] = []
                    # call with the arguments it declares, as pluggy would (it may take none)
                    impl.function(**{a: found.append for a in impl.argnames})
                    for obj in found:
                        key = (kind, validate_registration(kind, obj))
                        if key in collected:
                            raise ValueError(f"{kind} {key[1]!r} is registered twice by {info.name}")
                        collected[key] = obj
            for kind, name in collected:
                if (kind, name) in self.registry.provider:
                    other = self.registry.provider[(kind, name)]
                    raise ValueError(
                        f"{kind} {name!r} of {info.name} ({info.origin}) is already registered by "
                        f"{other.name} ({other.origin}, {other.location})"
                    )
        except BaseException as exc:  # a hook may even call sys.exit()
            self.pm.unregister(module, name=pm_name)
            if isinstance(exc, KeyboardInterrupt):
                raise
            self._fail(info, exc)
            return
        info.warnings.extend(_unmarked_hooks(module))
        for (kind, name), obj in collected.items():
            self.registry.table(kind)[name] = obj
            self.registry.provider[(kind, name)] = info
            info.registers.append((kind, name))
        # One version shown: the `version` its classes declare (what configs record), when they
        # agree; the module's __version__ or the package's only when they declare none ("0").
        declared = {str(getattr(obj, "version", "") or "") for obj in collected.values()} - {"", "0"}
        if len(declared) == 1:
            info.version = declared.pop()
        self.registry.plugins.append(info)

    def _check_hook_names(self, module: object) -> None:
        """What ``check_pending()`` checks, for this module only, with a did-you-mean."""
        for caller in self.pm.get_hookcallers(module) or ():
            if caller.has_spec():
                continue
            if any(i.plugin is module and not i.optionalhook for i in caller.get_hookimpls()):
                close = difflib.get_close_matches(caller.name, _HOOK_KIND, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; the hooks are {', '.join(_HOOK_KIND)}"
                raise ValueError(f"unknown hook {caller.name!r}{hint}")

    def _fail(self, info: PluginInfo, exc: BaseException) -> None:
        info.error = f"{type(exc).__name__}: {exc}"
        info.traceback = "".join(traceback.format_exception(exc))
        self.registry.failures.append(info)

    def load_file(self, path: Path, origin: str, modname: str) -> None:
        path = path.resolve()
        if path in self.loaded_files:  # the same folder given twice, or the built-in folder again
            return
        self.loaded_files.add(path)
        info = PluginInfo(name=path.stem, origin=origin, location=str(path))
        try:
            module = _load_module_from_path(path, modname, self.pinned.get(str(path)))
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
    pinned: Mapping[str, str] | None = None,
) -> Registry:
    """Discover and load every plugin; never raises for a broken plugin.

    ``entry_points=None`` autoloads installed packages unless ``PGTABLE_EXPLORER_NO_ENTRYPOINTS``
    is set to a non-empty value other than ``0``. ``pinned`` maps the resolved path of a
    ``--plugins-dir`` file to the source to load instead of the file's current text (the TUI's
    live reload keeps the last version that loaded while the file on disk does not).
    """
    loader = _Loader()
    loader.pinned = dict(pinned or {})
    from explorer import __version__

    builtin = builtin_plugins_dir()
    for path in iter_py_files(builtin):
        rel = path.relative_to(builtin).with_suffix("")
        loader.load_file(path, "built-in", "pgtable_explorer_builtin." + ".".join(rel.parts))
    for info in loader.registry.plugins + loader.registry.failures:
        if info.origin == "built-in" and not info.version:
            info.version = __version__

    if entry_points is None:
        entry_points = os.environ.get(NO_ENTRYPOINTS_ENV, "") in ("", "0")
    if entry_points:
        try:
            eps = list(_entry_points())
        except Exception as exc:  # unreadable metadata of some installed distribution
            eps = []
            loader._fail(PluginInfo(name=ENTRY_POINT_GROUP, origin="installed package", location="entry points"), exc)
        for ep in eps:
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
            loader._fail(
                PluginInfo(name=str(d), origin="directory", location=str(root)),
                NotADirectoryError(f"no such directory: {d}"),
            )
            continue
        for path in iter_py_files(root):
            rel = path.relative_to(root).with_suffix("")
            loader.load_file(path, "directory", f"pgtable_explorer_dir{i}." + ".".join(rel.parts))
    loader.registry.plugins_dirs = tuple(dirs)
    return loader.registry


def _entry_points() -> Iterable[importlib.metadata.EntryPoint]:
    return importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
