"""Live reload of ``--plugins-dir`` plugins while the TUI runs: the authoring loop.

:class:`PluginWatcher` polls the folders' ``.py`` files (their modification time and size: a
``stat`` per file, cheap at the TUI's twice a second) and, when one changed, appeared or went,
loads the registry again. A file that no longer loads keeps its last good version in use (it is
*pinned*: the registry, and the run's process, load the source that last worked instead of the
file), and its error is reported until the file loads again.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from explorer.plugins import PluginInfo, Registry, iter_py_files, load_registry

Stamp = tuple[int, int]


@dataclass
class ReloadResult:
    """What one reload did: the new registry, what changed, and what kept its last good version."""

    registry: Registry
    changed: list[str]  # the files that changed, appeared or went (paths)
    reloaded: list[str] = field(default_factory=list)  # "delayed.py: strategy delayed" for each file now in use
    kept: dict[str, str] = field(default_factory=dict)  # path -> the error of the new text (last good in use)
    at: str = ""  # wall-clock time of the reload, HH:MM:SS

    def summary(self) -> str:
        """One line for a notification and the Plugins screen."""
        parts = []
        if self.reloaded:
            parts.append("reloaded " + "; ".join(self.reloaded))
        if self.kept:
            parts.append("kept the last good version of " + ", ".join(Path(p).name for p in self.kept))
        if not parts:
            parts.append("removed " + ", ".join(Path(p).name for p in self.changed))
        return f"{self.at} " + "; ".join(parts)


class PluginWatcher:
    """Watches ``dirs`` and reloads the registry when a plugin file changes."""

    def __init__(self, dirs: Sequence[str], registry: Registry, entry_points: bool | None = None) -> None:
        self.dirs = [Path(d) for d in dirs]
        self.entry_points = entry_points
        self.stamps = self._scan()
        #: path -> the source text of the version in use (the last that loaded)
        self.good: dict[str, str] = {}
        #: path -> the error of the file on disk, while its last good version stays in use
        self.kept: dict[str, str] = {}
        self._remember(registry, pinned={})

    def _files(self) -> list[Path]:
        return [p.resolve() for d in self.dirs if d.is_dir() for p in iter_py_files(d)]

    def _scan(self) -> dict[str, Stamp]:
        out: dict[str, Stamp] = {}
        for p in self._files():
            try:
                st = p.stat()
            except OSError:  # removed between the listing and the stat
                continue
            out[str(p)] = (st.st_mtime_ns, st.st_size)
        return out

    def _remember(self, registry: Registry, pinned: dict[str, str]) -> None:
        for info in registry.plugins:
            if info.origin == "directory" and info.location not in pinned:
                with contextlib.suppress(OSError):  # gone since it loaded: the next poll forgets it
                    self.good[info.location] = Path(info.location).read_text()

    @property
    def pinned(self) -> dict[str, str]:
        """The files whose last good version is in use instead of their text on disk."""
        return {p: self.good[p] for p in self.kept if p in self.good}

    def poll(self) -> ReloadResult | None:
        """Reload when a file changed since the last poll; None when nothing did."""
        stamps = self._scan()
        if stamps == self.stamps:
            return None
        changed = sorted(p for p in set(stamps) | set(self.stamps) if stamps.get(p) != self.stamps.get(p))
        self.stamps = stamps
        return self.reload(changed)

    def reload(self, changed: list[str]) -> ReloadResult:
        """Load the registry again; pin every file that fails now but loaded before."""
        for p in changed:  # a changed file gets a new chance; a removed one is forgotten
            self.kept.pop(p, None)
            if p not in self.stamps:
                self.good.pop(p, None)
        registry = load_registry([str(d) for d in self.dirs], entry_points=self.entry_points, pinned=self.pinned)
        failing = {f.location: f for f in registry.failures if f.origin == "directory"}
        newly = {p: f for p, f in failing.items() if p in self.good and p not in self.kept}
        if newly:
            for p, f in newly.items():
                self.kept[p] = f.error or "failed to load"
            registry = load_registry([str(d) for d in self.dirs], entry_points=self.entry_points,
                                     pinned=self.pinned)
        self._remember(registry, self.pinned)
        result = ReloadResult(registry, changed, kept=dict(self.kept), at=time.strftime("%H:%M:%S"))
        by_path: dict[str, PluginInfo] = {i.location: i for i in registry.plugins}
        for p in changed:
            info = by_path.get(p)
            if info is not None and p not in self.kept:
                provides = ", ".join(f"{k} {n}" for k, n in info.registers) or "nothing"
                result.reloaded.append(f"{Path(p).name}: {provides}")
        return result


def fit_config(config: Mapping[str, Any], old: Registry, new: Registry) -> dict[str, Any]:
    """``config`` validated against the reloaded plugins: the same choices and values, a parameter
    the new version declares gets its default, one it no longer declares is dropped. Raises
    :class:`explorer.config.ConfigError` when a plugin it names is gone."""
    from explorer.config import to_toml_dict, validate

    raw = to_toml_dict(config, old)

    def declared(kind: str, name: Any) -> set[str]:
        cls = new.table(kind).get(name) if isinstance(name, str) else None
        return {p.name for p in getattr(cls, "params", ())}

    st = raw.get("strategy", {})
    keep = declared("strategy", st.get("name"))
    st["params"] = {k: v for k, v in (st.get("params") or {}).items() if k in keep}
    io = raw.get("iommu", {})
    keep = declared("iommu", io.get("model"))
    io["params"] = {k: v for k, v in (io.get("params") or {}).items() if k in keep}
    raw["workload"] = [{k: v for k, v in w.items() if k == "name" or k in declared("workload", w.get("name"))}
                       for w in raw.get("workload", [])]
    return validate(raw, new, "the reloaded plugins", base=config, warnings=[])
