"""The ``plugin new`` command (``pgtable-explorer plugin new NAME --kind strategy|iommu|workload``): a
plugin package from nothing.

It writes an installable package (``pyproject.toml`` with the ``pgtable_explorer`` entry point),
the plugin module with declared parameters and a working minimal implementation (a strategy is
the kernel's own deferred free, commented line by line against the C), a pytest test that uses
the testing kit (:mod:`explorer.testing`) and a README::

    pgtable-explorer-NAME/
      pyproject.toml
      README.md
      src/pgtx_NAME/__init__.py       the package
      src/pgtx_NAME/KIND.py           the plugin: one standalone file, so --plugins-dir loads it too
      tests/test_NAME.py

The plugin lives in a standalone module (no relative imports) so the same file works installed
(through the entry point) and while it is being written, with ``--plugins-dir src/pgtx_NAME``,
which is what the TUI's live reload watches.

Like every command module, this one imports only the standard library at import time.
"""

from __future__ import annotations

import argparse
import keyword
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from explorer.cli.errors import EXIT_OK, UserError

KINDS = ("strategy", "iommu", "workload")
_NAME_RE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
MAX_NAME = 40


@dataclass(frozen=True)
class Names:
    """Every name the package derives from the plugin's NAME."""

    name: str  # what configs call it: "delayed", "my-vtd"
    kind: str
    dist: str  # "pgtable-explorer-delayed"
    package: str  # "pgtx_delayed"
    cls: str  # "Delayed"

    @property
    def module(self) -> str:
        return f"{self.package}.{self.kind}"


def validate_name(name: str) -> str | None:
    """Why ``name`` cannot be a plugin name, or None when it can."""
    if not name:
        return "the name is empty"
    if len(name) > MAX_NAME:
        return f"{name!r} is longer than {MAX_NAME} characters"
    if not _NAME_RE.match(name):
        return (f"{name!r} is not a plugin name: use lowercase letters, digits and single hyphens, starting "
                "with a letter (e.g. delayed, my-vtd, burst2)")
    ident = name.replace("-", "_")
    if keyword.iskeyword(ident):
        return f"{name!r} is a Python keyword"
    return None


def names_for(name: str, kind: str) -> Names:
    """The distribution, package and class names of plugin ``name`` of ``kind``."""
    ident = name.replace("-", "_")
    cls = "".join(part.capitalize() for part in name.split("-"))
    if kind == "iommu" and not cls.lower().endswith("iommu"):
        cls += "Iommu"
    return Names(name=name, kind=kind, dist=f"pgtable-explorer-{name}", package=f"pgtx_{ident}", cls=cls)


# --------------------------------------------------------------------------- templates

_STRATEGY = '''\
"""{name}: a free strategy for pgtable-explorer (written with `pgtable-explorer plugin new`).

As generated it is the kernel's own deferred free (Linux 6.19, mm/pgtable-generic.c), line by line,
plus one parameter, `extra_delay`, that holds the worker back after the first table of a batch
(0, the default, schedules it at once, exactly as the kernel does). Change it into your strategy;
`pytest` checks it against the kernel's rules with pgtable-explorer's testing kit.

Edit it live: `pgtable-explorer --plugins-dir src/{package} tui` reloads it on every save.
"""

from explorer.api import FreeStrategy, Param, hookimpl

__version__ = "0.1.0"  # the one version: the package's (pyproject reads it) and the class's


class {cls}(FreeStrategy):
    name = "{name}"
    version = __version__  # bump it when the behaviour changes: configs record it
    help = "The kernel's deferred free: queue each table, one worker flushes the IOMMUs once, then frees the batch."
    params = (
        Param("extra_delay", "duration", "0ns", min=0, max=10**9,
              help="Wait this long after the first table of a batch before scheduling the worker "
                   "(0 = at once, as the kernel does)."),
    )

    def setup(self, k):
        # static struct {{ list; lock; work; }} kernel_pgtable_work;
        self.list = []
        self.lock = k.spinlock("{ident}.lock")
        self.work = k.work("{ident}_work", self.work_func)
        self.timer = None

    def work_func(self, k):
        """kernel_pgtable_work_func(): runs in a kworker, may sleep."""
        with k.spin_lock(self.lock):
            # list_splice_tail_init(): take the batch BEFORE the flush, so a table queued while
            # the flush runs waits for the next run (freeing it now would be a use-after-free)
            page_list, self.list = self.list, []
            self.timer = None
        # iommu_sva_invalidate_kva_range(PAGE_OFFSET, TLB_FLUSH_ALL): takes a mutex, takes time
        yield from k.iommu_sva_invalidate_kva_range()
        # list_for_each_entry_safe() ... __pagetable_free(): the newest table first, each reaching
        # the allocator when its own free ends; no IOMMU can still cache a pointer to it
        yield from k.free_each(reversed(page_list))

    def on_timer(self, k):
        """Softirq context (atomic): only schedule the worker, never flush here."""
        k.schedule_work(self.work)

    def pagetable_free_kernel(self, k, pt):
        """pagetable_free_kernel(): the caller's context, which may be atomic."""
        delay = self.values["extra_delay"]
        with k.spin_lock(self.lock):
            self.list.append(pt)  # list_add(): the end of the Python list is the kernel list's head
            if delay and self.timer is None:
                self.timer = k.start_timer(delay, self.on_timer)
        if not delay:
            k.schedule_work(self.work)  # schedule_work(): a no-op when already pending


@hookimpl
def register_strategies(register):
    register({cls})
'''

_IOMMU = '''\
"""{name}: an IOMMU model for pgtable-explorer (written with `pgtable-explorer plugin new`).

As generated: for every SVA-bound mm, one invalidation per PASID, then one completion wait, on
each IOMMU; a paging-structure cache per table level. Every latency is assumed: say so in the
parameter's help until you have a published figure.
"""

from explorer.api import CacheLevel, FlushCost, IommuModel, Param, hookimpl

__version__ = "0.1.0"  # the one version: the package's (pyproject reads it) and the class's


class {cls}(IommuModel):
    name = "{name}"
    version = __version__  # bump it when the behaviour changes: configs record it
    help = "One invalidation per PASID of every SVA-bound mm, then one completion wait. Latencies assumed."
    params = (
        Param("per_pasid", "duration", "500ns", min=0, max=10**9,
              help="Time to submit and execute one PASID invalidation (assumed)."),
        Param("wait", "duration", "1us", min=0, max=10**9, help="Completion wait, once per flush (assumed)."),
        Param("entries", "int", 64, unit="entries", min=1, max=10**6,
              help="Paging-structure cache entries per level (assumed)."),
        Param("ways", "int", 4, min=0, max=10**6, help="Associativity, 0 = fully associative (assumed)."),
    )

    def cache_geometry(self):
        n, ways = self.values["entries"], self.values["ways"]
        return (CacheLevel(1, n, ways), CacheLevel(2, n, ways))

    def invalidate_kernel_range(self, now, topo, batch=None):
        # topo: sva_mms, pasids_per_mm, iommus, iommu_index; batch: the tables this flush covers
        pasids = topo.sva_mms * topo.pasids_per_mm
        submit = pasids * self.values["per_pasid"]
        return FlushCost(
            duration_ns=submit + self.values["wait"],
            effective_ns=submit,  # the cached entries are gone once the last invalidation ran
            commands={{"invalidate_pasid": pasids, "completion_wait": 1}},
            wait_ns=self.values["wait"],
            scope="kernel",
        )


@hookimpl
def register_iommu_models(register):
    register({cls})
'''

_WORKLOAD = '''\
"""{name}: a workload source for pgtable-explorer (written with `pgtable-explorer plugin new`).

As generated: bursts of kernel page tables unlinked and freed in a sleepable context, each after
a CPU TLB flush, at a Poisson rate.
"""

from explorer.api import Param, WorkloadSource, hookimpl, workload_params

__version__ = "0.1.0"  # the one version: the package's (pyproject reads it) and the class's


class {cls}(WorkloadSource):
    name = "{name}"
    version = __version__  # bump it when the behaviour changes: configs record it
    help = "Bursts of kernel PTE tables unlinked and freed from a sleepable context."
    params = workload_params(
        "200/s",
        burst=8,
        extra=(Param("cpu_flush", "duration", "2us", min=0, max=10**9,
                     help="CPU TLB flush before each free (assumed)."),),
    )

    def process(self, w):
        p = self.values
        while True:  # the simulator stops it at the end of the run
            yield w.interarrival(p["rate"])
            yield from w.free_kernel_tables(
                p["burst"], cpu=w.pick_cpu(p["cpus"]), atomic=False, cpu_flush_ns=p["cpu_flush"]
            )


@hookimpl
def register_workloads(register):
    register({cls})
'''

_TEST = {
    "strategy": '''\
"""Tests of the {name} strategy with pgtable-explorer's testing kit (the pytest plugin gives the fixtures)."""

from {package}.strategy import {cls}


def test_{ident}_follows_the_kernels_rules(check_strategy):
    check_strategy({cls})  # every scenario and IOMMU model the kit knows; AssertionError with a counterexample


def test_{ident}_against_deferred(compare_strategy):
    ours, kernel = compare_strategy({cls}, "deferred")
    # As generated it IS the kernel's deferred free: the same flushes on the same workload and seed.
    # Replace this with what your strategy promises (fewer flushes, a lower p99, a smaller queue).
    assert ours["flushes"] == kernel["flushes"]
''',
    "iommu": '''\
"""Tests of the {name} IOMMU model with pgtable-explorer's testing kit."""

from {package}.iommu import {cls}


def test_{ident}_costs_something_and_keeps_deferred_safe(run_strategy):
    metrics = run_strategy("deferred", iommu={cls})
    assert metrics["flushes"] > 0
    # one completion wait per flush on each IOMMU
    assert metrics["iommu_commands"]["completion_wait"] == metrics["flushes"] * len(metrics["iommus"])
    assert metrics["violations"]["use_after_free"]["total"] == 0
''',
    "workload": '''\
"""Tests of the {name} workload source with pgtable-explorer's testing kit."""

from {package}.workload import {cls}


def test_{ident}_frees_kernel_tables(run_strategy):
    metrics = run_strategy("deferred", workloads=[{cls}])
    assert metrics["unlinked_by_source"]["by_source"]["{name}"] > 0
    assert metrics["violations"]["use_after_free"]["total"] == 0
''',
}

_PYPROJECT = '''\
[build-system]
requires = ["hatchling>=1.24"]
build-backend = "hatchling.build"

[project]
name = "{dist}"
dynamic = ["version"]
description = "{what} for pgtable-explorer: {name}"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["pgtable-explorer"]

[project.optional-dependencies]
test = ["pytest>=8"]

# pgtable-explorer loads every module named in this group (see `pgtable-explorer plugins`)
[project.entry-points.pgtable_explorer]
{name} = "{module}"

[tool.hatch.version]
path = "src/{package}/{kind}.py"

[tool.hatch.build.targets.wheel]
packages = ["src/{package}"]
# `pip install -e .` puts src/ on the path (a .pth file): edits take effect without reinstalling
dev-mode-dirs = ["src"]

[tool.pytest.ini_options]
testpaths = ["tests"]
'''

_INIT = '''\
"""{dist}: the {what_lower} {name} for pgtable-explorer (the plugin, and its version, are in {kind}.py)."""
'''

_README = '''\
# {dist}

{what} `{name}` for [pgtable-explorer](https://github.com/), written with
`pgtable-explorer plugin new {name} --kind {kind}`.

## Work on it

```sh
pgtable-explorer --plugins-dir src/{package} tui          # edit src/{package}/{kind}.py: every save reloads
pgtable-explorer --plugins-dir src/{package} run {run_args}
pytest                                                    # the testing kit checks it (pip install -e '.[test]' first)
```

## Install it

```sh
pip install .            # or: pip install -e .   while you work on it
pgtable-explorer plugins # lists {name} with the origin "installed package"
```

Once installed, drop `--plugins-dir`: pgtable-explorer loads it through the `pgtable_explorer` entry
point (giving both loads it twice, and the second is rejected as a duplicate name).
'''

_WHAT = {"strategy": "A free strategy", "iommu": "An IOMMU model", "workload": "A workload source"}
_RUN_ARGS = {
    "strategy": "--set strategy.name={name}",
    "iommu": "--set iommu.model={name}",
    "workload": "--set 'workload.0.name={name}'",
}


def render(names: Names) -> dict[str, str]:
    """The files of the package, by path relative to its folder."""
    fields: dict[str, Any] = {
        "name": names.name,
        "kind": names.kind,
        "dist": names.dist,
        "package": names.package,
        "module": names.module,
        "cls": names.cls,
        "ident": names.name.replace("-", "_"),
        "what": _WHAT[names.kind],
        "what_lower": _WHAT[names.kind].split(" ", 1)[1],
    }
    fields["run_args"] = _RUN_ARGS[names.kind].format(**fields)
    body = {"strategy": _STRATEGY, "iommu": _IOMMU, "workload": _WORKLOAD}[names.kind]
    return {
        "pyproject.toml": _PYPROJECT.format(**fields),
        "README.md": _README.format(**fields),
        f"src/{names.package}/__init__.py": _INIT.format(**fields),
        f"src/{names.package}/{names.kind}.py": body.format(**fields),
        f"tests/test_{fields['ident']}.py": _TEST[names.kind].format(**fields),
    }


def _builtin_names(kind: str) -> set[str]:
    """The names the built-in plugins already take (a plugin of the same name would be rejected)."""
    from explorer.plugins import load_registry

    return set(load_registry(entry_points=False).table(kind))


def create(name: str, kind: str, directory: str | Path | None = None) -> tuple[Path, list[str]]:
    """Write the package for plugin ``name`` of ``kind`` into ``directory`` (default
    ``./pgtable-explorer-NAME``); return the folder and the files written.

    Raises :class:`UserError` for a bad name, a name a built-in takes, or a target that exists and
    is not an empty folder. Files are written only once every check passed.
    """
    if kind not in KINDS:
        raise UserError(f"--kind {kind}: expected one of {', '.join(KINDS)}")
    why = validate_name(name)
    if why:
        raise UserError(why)
    taken = _builtin_names(kind)
    if name in taken:
        raise UserError(f"{kind} {name!r} is a built-in: a plugin may not take its name; built-in: "
                        + ", ".join(sorted(taken)))
    names = names_for(name, kind)
    target = Path(directory) if directory is not None else Path(names.dist)
    if target.is_symlink() and not target.exists():
        raise UserError(f"{target}: is a symbolic link to {os.readlink(target)}, which does not exist; "
                        "choose another --dir (nothing was written)")
    if target.exists():
        if not target.is_dir():
            raise UserError(f"{target}: exists and is not a folder; choose another --dir")
        if any(target.iterdir()):
            raise UserError(f"{target}: exists and is not empty; choose another --dir (nothing was written)")
    parent = target.resolve().parent
    if not parent.is_dir():
        raise UserError(f"{target}: its folder {parent} does not exist; create it first or choose another --dir")
    files = render(names)
    # The whole package is written into a private folder beside the target and renamed into place
    # (rename replaces an empty folder): an error half-way (a full disk) leaves nothing behind.
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=parent))
    except OSError as exc:
        raise UserError(f"{target}: cannot write in {parent}: {exc.strerror or exc}") from None
    written = []
    try:
        for rel, text in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(rel)
        staging.chmod(0o755)  # mkdtemp's 0700 is for the staging only: a package folder is shared
        os.rename(staging, target.resolve() if target.is_symlink() else target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise UserError(f"{target}: could not write the package ({exc.strerror or exc}); nothing was written") from None
    return target, written


# --------------------------------------------------------------------------- the command


def add_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``plugin new`` to the CLI's subparsers."""
    p = sub.add_parser("plugin", parents=[common], help="start a new plugin package (plugin new NAME)",
                       description="Start a new plugin: an installable package with a working minimal "
                       "implementation, a test that uses the testing kit, and a README.")
    psub = p.add_subparsers(dest="plugin_command", metavar="ACTION", required=True)
    n = psub.add_parser("new", parents=[common], help="write a new plugin package",
                        description="Write an installable plugin package: pyproject.toml with the "
                        "pgtable_explorer entry point, the plugin module, a pytest test and a README.")
    n.add_argument("name", metavar="NAME", help="the plugin's name, as configs call it (e.g. delayed)")
    n.add_argument("--kind", choices=KINDS, default="strategy", help="what the plugin is (default: strategy)")
    n.add_argument("--dir", metavar="DIR", help="where to write it (default: ./pgtable-explorer-NAME); "
                   "must not exist or be empty")
    return p


def cmd_plugin(args: argparse.Namespace) -> int:
    """``plugin new``: write the package, then say what to do next."""
    target, written = create(args.name, args.kind, args.dir)
    names = names_for(args.name, args.kind)
    out = [f"wrote {target}/"]
    out += [f"  {rel}" for rel in written]
    out += [
        "",
        "next:",
        f"  cd {target}",
        f"  pgtable-explorer --plugins-dir src/{names.package} tui     # edit {names.kind}.py; every save reloads",
        "  pip install -e '.[test]' && pytest                 # the testing kit checks it",
        "  pgtable-explorer plugins                            # listed as an installed package",
    ]
    sys.stdout.write("\n".join(out) + "\n")
    return EXIT_OK


__all__ = ["KINDS", "Names", "add_parser", "cmd_plugin", "create", "names_for", "render", "validate_name"]
