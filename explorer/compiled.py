"""The optional compiled core: mypyc builds of the simulator's hot modules, used only when they are
exactly the sources in the checkout.

``make setup`` (``python -m explorer.compiled_build``) compiles the modules of :data:`MODULES` into
``build/core/`` next to the ``explorer`` package, with a manifest holding the SHA-256 of every source
the build read (the compiled modules and the explorer modules they import). This module decides
once per process, before the first of them is imported, which core runs:

- ``PGTABLE_EXPLORER_PURE=1`` (or any value but ``""`` and ``"0"``): the pure-Python modules, even
  when a compiled build is there (CI runs both in one go);
- no build, or one made for another Python: pure, silently (a machine without a C compiler);
- a build whose sources changed since (an edit in an editable install): pure, with one
  ``RuntimeWarning`` naming the changed files: a stale compiled module would silently give the old
  results;
- otherwise the compiled modules, through a finder placed first on ``sys.meta_path``.

The two cores give bit-identical results (``tests/test_compiled_core.py`` compares them). Compiled
classes cannot be subclassed by interpreted ones nor patched, so only modules whose classes no
plugin subclasses are compiled (plugins subclass ``explorer.api``, which stays interpreted).

This module is imported by ``explorer/__init__.py``: standard library only, and no work at import
beyond putting the finder in place.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import importlib.machinery
    from collections.abc import Sequence
    from pathlib import Path
    from types import ModuleType

# pathlib, hashlib, json, warnings and importlib.util are imported where used: `import explorer`
# (and so `--version`, which must stay fast) pays for none of them

#: The environment variable that forces the pure-Python core.
PURE_ENV = "PGTABLE_EXPLORER_PURE"

#: The modules the compiled build holds: the simulator's hot paths (the engine loop and its
#: background lane, the allocator, the address space, the random streams, the device probes and
#: caches, the metrics, the kernel's statistics, the kernel itself, its contexts and the build).
#: Nothing in them looks inside a generator's frame (a compiled generator has none): a service
#: marks itself started, and a bad yield's line is where its mistake is raised.
#: Not ``errors`` (other modules subclass its exceptions) nor ``hookcheck`` (once per run).
#: Nothing here is subclassed by plugins: they subclass ``explorer.contract``.
MODULES = (
    "explorer.sim.engine",
    "explorer.sim.memory",
    "explorer.sim.space",
    "explorer.sim.machine",
    "explorer.sim.streams",
    "explorer.sim.workqueue",
    "explorer.sim.checker",
    "explorer.sim.metrics",
    "explorer.sim.stats",
    "explorer.sim.iommu",
    "explorer.sim.sva",
    "explorer.sim.kernel",
    "explorer.sim.contexts",
    "explorer.sim.build",
)

#: The checkout (or site-packages) folder that holds the ``explorer`` package.
ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
#: Where ``python -m explorer.compiled_build`` puts the build.
BUILD_DIR = os.path.join(ROOT, "build", "core")
MANIFEST = "manifest.json"


class CoreStatus:
    """Which core this process runs, and why."""

    def __init__(self, compiled: bool, reason: str, stale: list[str] | None = None,
                 manifest: dict[str, Any] | None = None) -> None:
        self.compiled = compiled
        self.reason = reason
        #: the sources whose hash no longer matches the build (a stale build)
        self.stale = stale or []
        self.manifest = manifest or {}

    def __repr__(self) -> str:
        return f"CoreStatus(compiled={self.compiled}, reason={self.reason!r}, stale={self.stale})"

    def describe(self) -> str:
        """One phrase for ``--version`` and ``make bench``: ``compiled (mypyc 2.4.1)`` or
        ``pure Python (why)``."""
        if self.compiled:
            return f"compiled ({self.reason})"
        return f"pure Python ({self.reason})"


def source_digest(path: Path) -> str:
    """The SHA-256 of a source file (what the manifest records)."""
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pure_forced() -> bool:
    return os.environ.get(PURE_ENV, "") not in ("", "0")


def read_status(
    build_dir: str | Path = BUILD_DIR, root: str | Path = ROOT, env_pure: bool | None = None
) -> CoreStatus:
    """Decide which core a process would run (no import, no side effect)."""
    import json
    from pathlib import Path

    build_dir, root = Path(build_dir), Path(root)

    if _pure_forced() if env_pure is None else env_pure:
        return CoreStatus(False, f"{PURE_ENV}=1")
    try:
        manifest = json.loads((build_dir / MANIFEST).read_text())
    except FileNotFoundError:
        return CoreStatus(False, "not built")
    except (OSError, ValueError) as exc:
        return CoreStatus(False, f"unreadable build manifest {build_dir / MANIFEST}: {exc}")
    if manifest.get("cache_tag") != sys.implementation.cache_tag or manifest.get("format") != 1:
        return CoreStatus(False, f"built for {manifest.get('cache_tag')}, this is {sys.implementation.cache_tag}")
    stale = []
    for rel, digest in sorted(manifest.get("sources", {}).items()):
        try:
            if source_digest(root / rel) != digest:
                stale.append(rel)
        except OSError:
            stale.append(rel)
    missing = [rel for rel in manifest.get("extensions", {}).values() if not (build_dir / rel).is_file()]
    if stale:
        return CoreStatus(False, "the compiled build is stale: " + ", ".join(stale)
                          + " changed since; run make setup", stale, manifest)
    if missing or set(manifest.get("modules", ())) != set(MODULES):
        return CoreStatus(False, "the compiled build is incomplete; run make setup", [], manifest)
    return CoreStatus(True, f"mypyc {manifest.get('mypyc', '?')}", [], manifest)


class CompiledFinder:
    """A meta-path finder that loads the compiled build's extension modules by their real names.

    It decides at the first import of one of them (not at ``import explorer``: ``--version`` and
    the build itself never pay for it, nor warn): fresh build, compiled modules; else the ordinary
    finders load the ``.py`` files."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname in MODULES:
            st = status()  # the first one decides
        elif fullname.endswith("__mypyc") and _status is not None:
            st = _status  # the build's shared library, or another mypyc-compiled package's (mypy's own)
        else:
            return None
        if not st.compiled:
            return None
        rel = st.manifest["extensions"].get(fullname)
        if rel is None:
            return None
        import importlib.machinery
        import importlib.util

        file = os.path.join(BUILD_DIR, rel)
        return importlib.util.spec_from_file_location(
            fullname, file, loader=importlib.machinery.ExtensionFileLoader(fullname, file)
        )


_status: CoreStatus | None = None


def status() -> CoreStatus:
    """The core this process runs (or would run, before the simulator is imported); warns once
    when the build is stale."""
    global _status
    if _status is None:
        _status = read_status()
        if _status.stale:
            import warnings

            warnings.warn_explicit(f"pgtable-explorer: {_status.reason}; running the pure-Python core",
                                   RuntimeWarning, os.path.join(BUILD_DIR, MANIFEST), 0)
        elif _status.compiled and any(m in sys.modules for m in MODULES):
            # imported before the finder was in place (pure): never mix the two
            _status = CoreStatus(False, "the pure modules were imported first")
    return _status


def install() -> None:
    """Put the compiled build's finder first on ``sys.meta_path`` (see the module docstring)."""
    if _pure_forced() or any(isinstance(f, CompiledFinder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, CompiledFinder())


def running_compiled() -> bool:
    """True when the simulator modules imported in this process are the compiled ones."""
    mod = sys.modules.get(MODULES[0])
    if mod is None:
        return status().compiled
    return not str(getattr(mod, "__file__", "")).endswith(".py")


def summary() -> str:
    """Which core runs, for ``--version``, ``plugins -v`` and ``make bench``: ``compiled (mypyc
    2.4.1)`` or ``pure Python (why)``. Reads the build's state without importing the simulator."""
    if any(m in sys.modules for m in MODULES):
        st = status()
        if running_compiled() != st.compiled:  # cannot happen through install(); say what is true
            return "compiled" if running_compiled() else "pure Python"
        return st.describe()
    return (_status or read_status()).describe()
