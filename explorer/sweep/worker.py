"""What runs in a sweep worker (a local process or a Dask worker), and what is sent to it.

Everything crosses as plain data: a *task* is ``{"index", "id", "config", "bundle", "explorer",
"attempt"}``. The *bundle* describes the plugins: whether to load entry points, and the text of every
``.py`` file under each ``--plugins-dir`` (never a pickled object, never just a path: a worker on
another machine has no such path). A worker writes the files into a private folder named by their
hash and loads them through the ordinary discovery (:func:`explorer.plugins.load_registry`), then
builds and runs the simulation exactly as ``run`` does (:func:`run_config`).

This module is imported by every worker process: keep its imports light.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from explorer import __version__
from explorer.failures import classify_failure
from explorer.plugins import NO_ENTRYPOINTS_ENV, Registry, load_registry
from explorer.sim.build import build_simulation
from explorer.sim.engine import PluginError

# --------------------------------------------------------------------------- the plugin bundle


def _plugin_files(root: Path) -> dict[str, str]:
    """Every ``.py`` file under ``root`` (relative POSIX path -> text), skipping hidden folders and
    ``__pycache__`` (the same files discovery would see, plus ``_helpers``)."""
    out: dict[str, str] = {}
    if not root.is_dir():
        return out
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        try:
            out[rel.as_posix()] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # discovery reports an unreadable plugin; the config cannot use it anyway
    return out


def make_bundle(
    plugins_dirs: Sequence[str | os.PathLike[str]] = (), entry_points: bool | None = None
) -> dict[str, Any]:
    """The plugins a sweep's workers load, as plain data (see the module docstring).

    ``entry_points=None`` resolves ``PGTABLE_EXPLORER_NO_ENTRYPOINTS`` here, in the process that
    starts the sweep, so the workers load what it loaded.
    """
    if entry_points is None:
        entry_points = os.environ.get(NO_ENTRYPOINTS_ENV, "") in ("", "0")
    dirs = [{"path": str(Path(d).resolve()), "files": _plugin_files(Path(d))} for d in plugins_dirs]
    digest = hashlib.sha256(
        json.dumps({"entry_points": entry_points, "dirs": [d["files"] for d in dirs]}, sort_keys=True).encode()
    ).hexdigest()[:20]
    return {"entry_points": bool(entry_points), "dirs": dirs, "digest": digest}


class CacheFolderError(RuntimeError):
    """The plugin cache folder cannot be trusted (another user owns it, or others can write it)."""


def cache_root() -> Path:
    """The folder under which workers write plugin bundles: ``$TMPDIR/pgtable-explorer-<uid>``."""
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"pgtable-explorer-{uid}"


def _private_folder(path: Path) -> None:
    """Create ``path`` with mode 0700, or check the one that is there: a real folder (not a
    symlink), owned by this user, writable by nobody else. Code is loaded from under it, so a
    folder another local user could create or write first would let them run code in the sweep."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise CacheFolderError(f"the plugin cache {path} is not a folder (a symlink or a file): remove it, "
                               "or point TMPDIR elsewhere")
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise CacheFolderError(f"the plugin cache {path} belongs to another user (uid {st.st_uid}): refusing to "
                               "load plugins from it; remove it, or point TMPDIR elsewhere")
    if st.st_mode & 0o022:
        raise CacheFolderError(f"the plugin cache {path} is writable by other users (mode "
                               f"{stat.S_IMODE(st.st_mode):o}): refusing to load plugins from it; remove it, "
                               "or point TMPDIR elsewhere")
    if st.st_mode & 0o077:  # ours and only readable by others: make it private, as a new one is
        os.chmod(path, 0o700)


def check_cache_folder() -> Path:
    """Create or check the plugin cache folders (see :func:`_private_folder`); return the folder
    the bundles go in. Raises :class:`CacheFolderError`."""
    root = cache_root()
    _private_folder(root)
    _private_folder(root / "plugins")
    return root / "plugins"


def _matches(root: Path, bundle: Mapping[str, Any]) -> bool:
    """True when the files under ``root`` are exactly the bundle's: nothing changed, nothing added."""
    try:
        names = {p.name for p in root.iterdir()}
    except OSError:
        return False
    if names != {".complete", *(str(i) for i in range(len(bundle["dirs"])))}:
        return False
    return all(_plugin_files(root / str(i)) == d["files"] for i, d in enumerate(bundle["dirs"]))


def _write_bundle(bundle: Mapping[str, Any], folder: Path) -> None:
    for i, d in enumerate(bundle["dirs"]):
        (folder / str(i)).mkdir(mode=0o700)
        for rel, text in d["files"].items():
            target = folder / str(i) / rel
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    (folder / ".complete").write_text("")


def _materialise(bundle: Mapping[str, Any]) -> list[Path]:
    """Write the bundle's files under a folder named by its digest (once per machine); return the
    plugin folders, in ``--plugins-dir`` order.

    The folders are private (:func:`check_cache_folder`) and a bundle already there is used only
    when its files are exactly the bundle's; otherwise this worker writes a fresh private copy."""
    if not bundle["dirs"]:
        return []
    plugins = check_cache_folder()
    root = plugins / bundle["digest"]
    if not (root.is_dir() and not root.is_symlink() and _matches(root, bundle)):
        tmp = Path(tempfile.mkdtemp(prefix=f".{bundle['digest']}.", dir=plugins))  # mode 0700
        try:
            _write_bundle(bundle, tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        try:
            os.rename(tmp, root)
        except OSError:  # another worker got there first, or a copy that did not match is there
            if not _matches(root, bundle):
                root = tmp  # this worker's own copy (it stays: the loaded modules came from it)
            else:
                shutil.rmtree(tmp, ignore_errors=True)
    return [root / str(i) for i in range(len(bundle["dirs"]))]


_registries: dict[str, Registry] = {}
_lock = threading.Lock()


def registry_for(bundle: Mapping[str, Any]) -> Registry:
    """The registry a bundle describes, loaded once per worker process."""
    with _lock:
        reg = _registries.get(bundle["digest"])
        if reg is None:
            reg = load_registry(plugins_dirs=_materialise(bundle), entry_points=bundle["entry_points"])
            _registries[bundle["digest"]] = reg
        return reg


# --------------------------------------------------------------------------- running a point


class WorkerSetupError(RuntimeError):
    """The worker cannot run the point as the sweep defined it (another version, a missing plugin)."""


def run_config(config: Mapping[str, Any], registry: Registry) -> dict[str, Any]:
    """Run one config to the end and return its metrics: what ``run`` does, and so what a sweep does."""
    with build_simulation(config, registry) as sim:
        return sim.run()


def _check_plugins(config: Mapping[str, Any], registry: Registry) -> None:
    needed = [("strategy", config["strategy"]["name"]), ("iommu", config["iommu"]["model"])]
    needed += [("workload", w["name"]) for w in config.get("workload", [])]
    versions = config.get("plugins", {})
    for kind, name in needed:
        if name not in registry.table(kind):
            why = next((f" ({f.error})" for f in registry.failures if f.name == name), "")
            raise WorkerSetupError(f"{kind} {name!r} is not loaded on this worker{why}")
        want = versions.get(name)
        have = registry.version_of(kind, name)
        if want is not None and want != have:
            raise WorkerSetupError(f"this worker has {kind} {name!r} version {have}, the sweep needs {want}")


def worker_name() -> str:
    """Who runs this: a Dask worker's address, else ``host:pid``."""
    if "distributed" in sys.modules:
        with contextlib.suppress(Exception):
            from distributed import get_worker

            return str(get_worker().address)
    return f"{os.uname().nodename if hasattr(os, 'uname') else 'localhost'}:{os.getpid()}"


def run_point(task: Mapping[str, Any]) -> dict[str, Any]:
    """Run one point; never raises for a failing point (a plugin error comes back as data).

    Returns ``{"index", "id", "attempt", "status": "ok"|"failed", "metrics", "error", "traceback",
    "worker", "wall_s"}``, and a failed point's ``failure`` (:func:`explorer.failures.classify_failure`).
    """
    started = time.perf_counter()
    out: dict[str, Any] = {"index": task["index"], "id": task["id"], "attempt": task.get("attempt", 1),
                           "worker": worker_name(), "metrics": None, "error": None, "traceback": None}
    try:
        if task.get("explorer", __version__) != __version__:
            raise WorkerSetupError(
                f"this worker has pgtable-explorer {__version__}, the sweep needs {task['explorer']}"
            )
        # A plugin's print() must not land in the sweep's output (`sweep --json`): stderr, as in `run`.
        with contextlib.redirect_stdout(sys.stderr):
            try:
                registry = registry_for(task["bundle"])
            except CacheFolderError as exc:
                raise WorkerSetupError(str(exc)) from None
            _check_plugins(task["config"], registry)
            out["metrics"] = run_config(task["config"], registry)
        out["status"] = "ok"
    except PluginError as exc:
        out.update(status="failed", error=str(exc), traceback=exc.traceback_text, failure=classify_failure(exc).name)
    except (Exception, SystemExit, GeneratorExit) as exc:  # a plugin may even call sys.exit(); the worker lives on
        out.update(status="failed", error=f"{type(exc).__name__}: {exc}",
                   traceback="".join(traceback.format_exception(exc)), failure=classify_failure(exc).name)
    out["wall_s"] = time.perf_counter() - started
    return out


def worker_info() -> dict[str, Any]:
    """What a Dask worker reports before a sweep starts on it."""
    return {"explorer": __version__, "python": sys.version.split()[0], "pid": os.getpid()}


def init_local_worker() -> None:
    """Initializer of a local worker process: Ctrl-C is the parent's to handle (it stops the
    workers itself), so the point in progress is not torn with a KeyboardInterrupt."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def init_quiet_worker() -> None:
    """:func:`init_local_worker` for workers under a UI that draws on the terminal (the TUI's sweep):
    nothing a plugin prints reaches the terminal (:func:`explorer.procs.silence_stdio`)."""
    from explorer.procs import silence_stdio

    init_local_worker()
    silence_stdio()
