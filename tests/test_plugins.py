"""Plugin discovery, validation and failure reporting (explorer/plugins.py), the sample plugins
under tests/plugins/, and meta-tests that keep the hooks and the API documented.

Every test states its origins explicitly: ``make test`` runs with PGTABLE_EXPLORER_NO_ENTRYPOINTS=1
and a developer's environment may have real entry points installed.
"""

from __future__ import annotations

import ast
import importlib.metadata
import inspect
import json
import re
import sys
import textwrap
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any, get_args

import pytest

import explorer
from explorer import api, hookspecs, plugins
from explorer.plugins import ENTRY_POINT_GROUP, NO_ENTRYPOINTS_ENV, Registry, load_registry

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = Path(__file__).resolve().parent / "plugins"
RUNTIME = SAMPLES / "runtime"
BROKEN = SAMPLES / "broken"
SHADOW = SAMPLES / "shadow"
INSTALLED = SAMPLES / "installed"
WRITING_PLUGINS = ROOT / "docs" / "writing-plugins.md"

RUNTIME_NAMES = {
    "strategy": {"test-good", "test-raises", "test-never-frees", "test-buggy-late-free"},
    "iommu": {"test-fixed-cost"},
    "workload": {"test-steady"},
    "scenario": {"test-buggy", "test-never-frees"},
}

# What issue 2 says the first-party plugins/ must offer.
FIRST_PARTY = {
    "strategy": {"sync-unsafe", "sync", "deferred", "batched"},
    "iommu": {"none", "generic"},
    "workload": {"vmalloc-huge", "cpa-collapse", "hot-remove", "user-teardown"},
    "scenario": {"linux-6.19", "before-fix"},
}

TRUE_ENTRY_POINTS: Callable[[], Any] = plugins._entry_points  # before the autouse fixture replaces it

_MODULE_PREFIXES = ("pgtx_", "pgtable_explorer_dir", "pgtable_explorer_builtin")


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No real entry points unless a test asks, and no plugin modules left behind in sys.modules."""
    monkeypatch.setattr(plugins, "_entry_points", lambda: [])
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith(_MODULE_PREFIXES):
            del sys.modules[name]


@pytest.fixture
def empty_builtin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point the built-in origin at an empty directory, so a test sees only what it loads."""
    d = tmp_path / "builtin"
    d.mkdir()
    monkeypatch.setattr(plugins, "builtin_plugins_dir", lambda: d)
    return d


def write(path: Path, source: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


def strategy_source(name: str, module: str = "", body: str = "") -> str:
    """A plugin registering one strategy ``name``; ``body`` goes in the class, ``module`` after it."""
    return "\n".join(
        [
            "from explorer.api import FreeStrategy, Param, hookimpl",
            "",
            "class S(FreeStrategy):",
            f"    name = {name!r}",
            textwrap.indent(textwrap.dedent(body).strip(), "    "),
            "",
            "    def pagetable_free_kernel(self, k, pt):",
            "        k.free_now(pt)",
            "",
            textwrap.dedent(module).strip(),
            "",
            "@hookimpl",
            "def register_strategies(register):",
            "    register(S)",
            "",
        ]
    )


def fake_entry_point(name: str, value: str) -> importlib.metadata.EntryPoint:
    return importlib.metadata.EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


def names(reg: Registry, kind: str) -> set[str]:
    return set(reg.table(kind))


def failure(reg: Registry, name: str) -> plugins.PluginInfo:
    found = [f for f in reg.failures if f.name == name]
    assert found, f"{name} not reported; failures: {[f.as_dict() for f in reg.failures]}"
    assert len(found) == 1
    return found[0]


def no_failures(reg: Registry) -> None:
    assert not reg.failures, [f.as_dict() for f in reg.failures]


# --------------------------------------------------------------------------- built-in origin


def test_builtin_origin_is_reported_for_what_loads_from_the_builtin_dir(empty_builtin: Path) -> None:
    write(empty_builtin / "strategies" / "mine.py", strategy_source("bi-mine"))
    write(empty_builtin / "iommu" / "versioned.py", strategy_source("bi-versioned", module='__version__ = "7.0"'))
    reg = load_registry(entry_points=False)
    no_failures(reg)
    assert names(reg, "strategy") == {"bi-mine", "bi-versioned"}
    by_name = {p.name: p for p in reg.plugins}
    assert {p.origin for p in reg.plugins} == {"built-in"}
    assert Path(by_name["mine"].location) == empty_builtin / "strategies" / "mine.py"
    assert by_name["mine"].version == explorer.__version__  # built-ins carry the tool's version
    assert by_name["versioned"].version == "7.0"  # unless the module says otherwise
    assert reg.provider[("strategy", "bi-mine")] is by_name["mine"]
    assert reg.version_of("strategy", "bi-mine") == "0"  # the class's declared version (default)


def test_broken_builtin_plugin_is_reported_as_builtin_and_skipped(empty_builtin: Path) -> None:
    write(empty_builtin / "a_broken.py", "import no_such_module_pgtx\n")
    write(empty_builtin / "b_fine.py", strategy_source("bi-fine"))
    reg = load_registry(entry_points=False)
    f = failure(reg, "a_broken")
    assert f.origin == "built-in"
    assert "no_such_module_pgtx" in (f.error or "")
    assert names(reg, "strategy") == {"bi-fine"}


def test_first_party_plugins_all_load_from_the_builtin_origin() -> None:
    """The real plugins/ directory: everything issue 2 asks for, nothing failing."""
    reg = load_registry(entry_points=False)
    no_failures(reg)
    for kind, expected in FIRST_PARTY.items():
        assert expected <= names(reg, kind), f"{kind}: missing {expected - names(reg, kind)}"
    assert reg.plugins and {p.origin for p in reg.plugins} == {"built-in"}
    for (kind, name), info in reg.provider.items():
        assert info.origin == "built-in", (kind, name)


def _explorer_imports(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
        elif isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
    return [m for m in out if m == "explorer" or m.startswith(("explorer.", "plugins"))]


@pytest.mark.parametrize("root", [pytest.param(None, id="first-party"), pytest.param(SAMPLES, id="tests/plugins")])
def test_plugins_import_nothing_but_explorer_api(root: Path | None) -> None:
    """Plugins are written only against explorer.api, exactly as a user's would be."""
    base = root or plugins.builtin_plugins_dir()
    files = sorted(base.rglob("*.py"))
    if root is None and not files:
        pytest.skip("no first-party plugins yet")
    assert files
    bad = {str(p.relative_to(base)): m for p in files for m in _explorer_imports(p) if m != "explorer.api"}
    assert not bad, f"plugins importing more than explorer.api: {bad}"


# --------------------------------------------------------------------------- entry points


def test_entry_point_plugins_load_with_installed_package_origin(
    monkeypatch: pytest.MonkeyPatch, empty_builtin: Path
) -> None:
    monkeypatch.syspath_prepend(str(INSTALLED))
    monkeypatch.setattr(plugins, "_entry_points", lambda: [fake_entry_point("sample", "pgtx_installed_sample")])
    reg = load_registry(entry_points=True)
    no_failures(reg)
    assert names(reg, "strategy") == {"test-installed"}
    (info,) = reg.plugins
    assert (info.name, info.origin) == ("sample", "installed package")
    assert "pgtx_installed_sample" in info.location
    assert reg.version_of("strategy", "test-installed") == "2.5"


def test_entry_point_from_a_real_dist_info_on_sys_path(
    monkeypatch: pytest.MonkeyPatch, empty_builtin: Path, tmp_path: Path
) -> None:
    """Nothing faked but the path: importlib.metadata finds the distribution and its entry point."""
    site = tmp_path / "site"
    write(site / "pgtx_realdist_plugin.py", strategy_source("test-real-dist"))
    dist_info = site / "pgtx_realdist-3.1.dist-info"
    write(dist_info / "METADATA", "Metadata-Version: 2.1\nName: pgtx-realdist\nVersion: 3.1\n")
    write(dist_info / "entry_points.txt", f"[{ENTRY_POINT_GROUP}]\nrealdist = pgtx_realdist_plugin\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(plugins, "_entry_points", TRUE_ENTRY_POINTS)
    reg = load_registry(entry_points=True)
    info = reg.provider[("strategy", "test-real-dist")]
    assert (info.name, info.origin, info.version) == ("realdist", "installed package", "3.1")
    assert "pgtx_realdist_plugin" in info.location and "pgtx-realdist" in info.location


@pytest.mark.parametrize(
    ("env", "arg", "loads"),
    [
        ("1", None, False),
        ("yes", None, False),
        ("0", None, True),
        ("", None, True),
        (None, None, True),
        ("1", True, True),  # an explicit argument wins over the environment
        (None, False, False),
    ],
)
def test_environment_variable_disables_entry_point_autoloading(
    monkeypatch: pytest.MonkeyPatch, empty_builtin: Path, env: str | None, arg: bool | None, loads: bool
) -> None:
    calls: list[int] = []

    def eps() -> list[importlib.metadata.EntryPoint]:
        calls.append(1)
        return [fake_entry_point("sample", "pgtx_installed_sample")]

    monkeypatch.syspath_prepend(str(INSTALLED))
    monkeypatch.setattr(plugins, "_entry_points", eps)
    if env is None:
        monkeypatch.delenv(NO_ENTRYPOINTS_ENV, raising=False)
    else:
        monkeypatch.setenv(NO_ENTRYPOINTS_ENV, env)
    reg = load_registry(entry_points=arg)
    assert ("test-installed" in reg.strategies) is loads
    assert bool(calls) is loads  # disabled means not even looked up


def test_broken_entry_point_is_reported_and_the_rest_still_loads(
    monkeypatch: pytest.MonkeyPatch, empty_builtin: Path
) -> None:
    monkeypatch.syspath_prepend(str(INSTALLED))
    monkeypatch.setattr(
        plugins,
        "_entry_points",
        lambda: [
            fake_entry_point("missing", "pgtx_no_such_module:plugin"),
            fake_entry_point("sample", "pgtx_installed_sample"),
        ],
    )
    reg = load_registry(entry_points=True)
    f = failure(reg, "missing")
    assert f.origin == "installed package"
    assert "pgtx_no_such_module" in f.location
    assert "ModuleNotFoundError" in (f.error or "") and "pgtx_no_such_module" in (f.error or "")
    assert f.traceback and "Traceback" in f.traceback
    assert "test-installed" in reg.strategies


def test_entry_point_lookup_that_raises_is_reported(monkeypatch: pytest.MonkeyPatch, empty_builtin: Path) -> None:
    def eps() -> list[importlib.metadata.EntryPoint]:
        raise RuntimeError("corrupt metadata")

    monkeypatch.setattr(plugins, "_entry_points", eps)
    reg = load_registry([RUNTIME], entry_points=True)
    assert any("corrupt metadata" in (f.error or "") and f.origin == "installed package" for f in reg.failures)
    assert RUNTIME_NAMES["strategy"] <= names(reg, "strategy")


# --------------------------------------------------------------------------- --plugins-dir


def test_plugins_dir_loads_loose_files(empty_builtin: Path) -> None:
    reg = load_registry(plugins_dirs=[RUNTIME], entry_points=False)
    no_failures(reg)
    for kind, expected in RUNTIME_NAMES.items():
        assert names(reg, kind) == expected, kind
    assert {p.origin for p in reg.plugins} == {"directory"}
    assert {Path(p.location) for p in reg.plugins} == set(RUNTIME.glob("*.py"))
    assert reg.plugins_dirs == (str(RUNTIME),)
    assert issubclass(reg.strategies["test-good"], api.FreeStrategy)
    assert issubclass(reg.iommu_models["test-fixed-cost"], api.IommuModel)
    assert issubclass(reg.workloads["test-steady"], api.WorkloadSource)
    assert isinstance(reg.scenarios["test-buggy"], api.Scenario)


def test_plugins_dir_location_is_absolute_even_for_a_relative_dir(
    monkeypatch: pytest.MonkeyPatch, empty_builtin: Path
) -> None:
    monkeypatch.chdir(SAMPLES)
    reg = load_registry(plugins_dirs=["runtime"], entry_points=False)
    assert reg.plugins
    assert all(Path(p.location).is_absolute() for p in reg.plugins)


def test_all_three_origins_in_discovery_order(monkeypatch: pytest.MonkeyPatch, empty_builtin: Path) -> None:
    write(empty_builtin / "first.py", strategy_source("bi-first"))
    monkeypatch.syspath_prepend(str(INSTALLED))
    monkeypatch.setattr(plugins, "_entry_points", lambda: [fake_entry_point("sample", "pgtx_installed_sample")])
    reg = load_registry(plugins_dirs=[RUNTIME], entry_points=True)
    no_failures(reg)
    origins = [p.origin for p in reg.plugins]
    assert origins == sorted(origins, key=["built-in", "installed package", "directory"].index)
    assert set(origins) == {"built-in", "installed package", "directory"}
    assert reg.provider[("strategy", "bi-first")].origin == "built-in"
    assert reg.provider[("strategy", "test-installed")].origin == "installed package"
    assert reg.provider[("strategy", "test-good")].origin == "directory"


def test_missing_plugins_dir_is_reported_not_raised(empty_builtin: Path, tmp_path: Path) -> None:
    reg = load_registry(plugins_dirs=[tmp_path / "nope", RUNTIME], entry_points=False)
    f = failure(reg, str(tmp_path / "nope"))
    assert f.origin == "directory" and "no such directory" in (f.error or "")
    assert "test-good" in reg.strategies


def test_same_plugins_dir_twice_loads_each_file_once(empty_builtin: Path) -> None:
    reg = load_registry(plugins_dirs=[RUNTIME, RUNTIME / ".." / "runtime"], entry_points=False)
    no_failures(reg)
    assert len(reg.plugins) == len(list(RUNTIME.glob("*.py")))


def test_plugins_dir_that_is_the_builtin_dir_adds_nothing(empty_builtin: Path) -> None:
    write(empty_builtin / "mine.py", strategy_source("bi-mine"))
    reg = load_registry(plugins_dirs=[empty_builtin], entry_points=False)
    no_failures(reg)
    assert [p.origin for p in reg.plugins] == ["built-in"]


def test_private_hidden_and_cache_paths_are_not_loaded(empty_builtin: Path, tmp_path: Path) -> None:
    d = tmp_path / "mine"
    write(d / "visible.py", strategy_source("dir-visible"))
    write(d / "sub" / "nested.py", strategy_source("dir-nested"))
    for skipped in ("_helper.py", "__init__.py", "_private/x.py", ".venv/lib/site.py", "__pycache__/y.py"):
        write(d / skipped, "raise SystemExit('must not be imported')\n")
    reg = load_registry(plugins_dirs=[d], entry_points=False)
    no_failures(reg)
    assert names(reg, "strategy") == {"dir-visible", "dir-nested"}


def test_loading_twice_gives_the_same_registry(empty_builtin: Path) -> None:
    a = load_registry(plugins_dirs=[RUNTIME, BROKEN], entry_points=False)
    b = load_registry(plugins_dirs=[RUNTIME, BROKEN], entry_points=False)
    for kind in plugins.KINDS:
        assert names(a, kind) == names(b, kind)
    assert [p.as_dict() for p in a.plugins] == [p.as_dict() for p in b.plugins]
    assert [p.as_dict() for p in a.failures] == [p.as_dict() for p in b.failures]


# --------------------------------------------------------------------------- broken plugins


@pytest.mark.parametrize(
    ("module", "words"),
    [
        ("raises_at_import", ["RuntimeError", "exploding at import time"]),
        ("misspelt_hook", ["register_workload"]),
        ("registers_invalid", ["NotAStrategy", "FreeStrategy"]),
        ("bad_param_default", ["test-bad-default", "batch", "lots"]),
    ],
)
def test_broken_plugin_is_reported_with_origin_and_error_and_skipped(
    empty_builtin: Path, module: str, words: list[str]
) -> None:
    # broken/ comes first: what loads after a failure must not be affected by it
    reg = load_registry(plugins_dirs=[BROKEN, RUNTIME], entry_points=False)
    f = failure(reg, module)
    assert f.origin == "directory"
    assert Path(f.location) == BROKEN / f"{module}.py"
    for w in words:
        assert w in (f.error or ""), (w, f.error)
    assert f.traceback
    assert f.registers == []
    assert f not in reg.plugins
    for kind, expected in RUNTIME_NAMES.items():
        assert names(reg, kind) == expected, kind
    d = f.as_dict()
    assert d["origin"] == "directory" and d["error"] == f.error
    json.dumps(d)


def test_check_pending_rejects_a_misspelt_hook_and_the_whole_module(empty_builtin: Path) -> None:
    reg = load_registry(plugins_dirs=[BROKEN], entry_points=False)
    f = failure(reg, "misspelt_hook")
    assert "unknown hook 'register_workload'; did you mean 'register_workloads'?" in (f.error or "")
    assert "test-misspelt" not in reg.strategies  # its correct hook does not count either
    assert {"test-bad-default", "test-not-a-strategy"}.isdisjoint(reg.strategies)


def test_optional_hook_with_unknown_name_is_accepted(empty_builtin: Path, tmp_path: Path) -> None:
    write(
        tmp_path / "d" / "future.py",
        strategy_source(
            "dir-future",
            """
            @hookimpl(optionalhook=True)
            def register_something_from_a_newer_version(register):
                pass
            """,
        ),
    )
    reg = load_registry(plugins_dirs=[tmp_path / "d"], entry_points=False)
    no_failures(reg)
    assert "dir-future" in reg.strategies


def test_rejected_plugin_leaves_nothing_behind_for_the_next_one(empty_builtin: Path, tmp_path: Path) -> None:
    """A module with a misspelt hook *and* a hook pluggy refuses at register(): older pluggy left it
    half-registered, and then check_pending() failed for every plugin loaded after it."""
    write(
        tmp_path / "d" / "a_half.py",
        """
        from explorer.api import hookimpl

        @hookimpl
        def register_strategie(register):  # unknown hook: accepted by register(), caught by check_pending()
            pass

        @hookimpl
        def register_strategies(reg):  # wrong argument name: register() raises
            pass
        """,
    )
    write(tmp_path / "d" / "b_fine.py", strategy_source("dir-fine"))
    reg = load_registry(plugins_dirs=[tmp_path / "d"], entry_points=False)
    assert "reg" in (failure(reg, "a_half").error or "")
    assert [p.name for p in reg.plugins] == ["b_fine"]
    assert "dir-fine" in reg.strategies


@pytest.mark.parametrize(
    ("source", "words"),
    [
        pytest.param("import sys\nsys.exit(3)\n", ["SystemExit", "3"], id="sys.exit at import"),
        pytest.param(
            """
            from explorer.api import hookimpl

            @hookimpl
            def register_strategies(register):
                raise LookupError("hook exploded")
            """,
            ["LookupError", "hook exploded"],
            id="hook raises",
        ),
        pytest.param(
            """
            import sys
            from explorer.api import hookimpl

            @hookimpl
            def register_workloads(register):
                sys.exit("bye from a hook")
            """,
            ["SystemExit", "bye from a hook"],
            id="sys.exit in hook",
        ),
        pytest.param("def broken(:\n", ["SyntaxError"], id="syntax error"),
        pytest.param(
            strategy_source("dir-instance").replace("register(S)", "register(S({}))"),
            ["FreeStrategy", "class, not an instance"],
            id="instance instead of class",
        ),
        pytest.param(
            """
            from explorer.api import FreeStrategy, hookimpl

            class NoFree(FreeStrategy):
                name = "dir-nofree"

            @hookimpl
            def register_strategies(register):
                register(NoFree)
            """,
            ["dir-nofree", "pagetable_free_kernel"],
            id="strategy without pagetable_free_kernel",
        ),
        pytest.param(
            """
            from explorer.api import WorkloadSource, hookimpl, workload_params

            class NoProcess(WorkloadSource):
                name = "dir-noprocess"
                params = workload_params("1/s")

            @hookimpl
            def register_workloads(register):
                register(NoProcess)
            """,
            ["dir-noprocess", "process"],
            id="workload without process",
        ),
        pytest.param(
            """
            from explorer.api import IommuModel, hookimpl

            class NoCost(IommuModel):
                name = "dir-nocost"

            @hookimpl
            def register_iommu_models(register):
                register(NoCost)
            """,
            ["dir-nocost", "invalidate_kernel_range"],
            id="iommu model without invalidate_kernel_range",
        ),
        pytest.param(
            strategy_source("dir-wrongkind").replace("register_strategies", "register_workloads"),
            ["WorkloadSource"],
            id="strategy given to register_workloads",
        ),
        pytest.param(strategy_source(""), ["no 'name'"], id="no name"),
        pytest.param(strategy_source("x").replace("name = 'x'", "name = 42"), ["name", "42"], id="name not a string"),
        pytest.param(
            """
            from explorer.api import Scenario, hookimpl

            @hookimpl
            def register_scenarios(register):
                register({"name": "dict-scenario"})
            """,
            ["Scenario"],
            id="scenario that is a dict",
        ),
        pytest.param(
            """
            from explorer.api import Scenario, hookimpl

            @hookimpl
            def register_scenarios(register):
                register(Scenario(name="", description="nameless", config={}))
            """,
            ["name"],
            id="scenario without a name",
        ),
        pytest.param(
            """
            from explorer.api import hookimpl

            @hookimpl
            def register_strategies(register):
                register()
            """,
            ["TypeError"],
            id="register called wrongly",
        ),
    ],
)
def test_invalid_plugins_are_reported_and_skipped(
    empty_builtin: Path, tmp_path: Path, source: str, words: list[str]
) -> None:
    d = tmp_path / "d"
    write(d / "a_bad.py", source)
    write(d / "b_fine.py", strategy_source("dir-fine"))
    reg = load_registry(plugins_dirs=[d], entry_points=False)
    f = failure(reg, "a_bad")
    for w in words:
        assert w in (f.error or ""), (w, f.error)
    assert f.registers == []
    assert [p.name for p in reg.plugins] == ["b_fine"]
    assert names(reg, "strategy") == {"dir-fine"}


def test_hookimpl_without_the_register_argument_is_valid(empty_builtin: Path, tmp_path: Path) -> None:
    """pluggy lets an implementation take fewer arguments than the spec: it must not crash."""
    write(
        tmp_path / "d" / "quiet.py",
        strategy_source(
            "dir-quiet",
            """
            @hookimpl
            def register_scenarios():
                pass
            """,
        ),
    )
    reg = load_registry(plugins_dirs=[tmp_path / "d"], entry_points=False)
    no_failures(reg)
    assert "dir-quiet" in reg.strategies


# --------------------------------------------------------------------------- duplicates


def test_duplicate_name_is_rejected_naming_both_plugins(empty_builtin: Path) -> None:
    reg = load_registry(plugins_dirs=[RUNTIME, SHADOW], entry_points=False)
    f = failure(reg, "shadow_good")
    msg = f.error or ""
    assert "'test-good'" in msg
    assert "shadow_good" in msg and "good_strategy" in msg  # the newcomer and the one that has it
    assert f.registers == []
    # the first registration stands
    assert reg.strategies["test-good"].__name__ == "GoodDeferred"
    assert reg.provider[("strategy", "test-good")].name == "good_strategy"


def test_installed_package_cannot_shadow_a_builtin(
    monkeypatch: pytest.MonkeyPatch, empty_builtin: Path, tmp_path: Path
) -> None:
    write(empty_builtin / "strategies" / "deferredish.py", strategy_source("test-installed"))
    monkeypatch.syspath_prepend(str(INSTALLED))
    monkeypatch.setattr(plugins, "_entry_points", lambda: [fake_entry_point("sample", "pgtx_installed_sample")])
    reg = load_registry(entry_points=True)
    f = failure(reg, "sample")
    assert f.origin == "installed package"
    assert "deferredish" in (f.error or "") and "built-in" in (f.error or "")
    assert reg.provider[("strategy", "test-installed")].origin == "built-in"


def test_duplicate_name_within_one_plugin_is_rejected(empty_builtin: Path, tmp_path: Path) -> None:
    write(
        tmp_path / "d" / "twice.py",
        strategy_source("dir-twice", module="class T(S):\n    pass").replace(
            "register(S)", "register(S)\n    register(T)"
        ),
    )
    reg = load_registry(plugins_dirs=[tmp_path / "d"], entry_points=False)
    f = failure(reg, "twice")
    assert "'dir-twice'" in (f.error or "") and "twice" in (f.error or "")
    assert "dir-twice" not in reg.strategies


def test_same_name_in_different_kinds_is_allowed(empty_builtin: Path, tmp_path: Path) -> None:
    write(
        tmp_path / "d" / "both.py",
        strategy_source(
            "same",
            """
            from explorer.api import Scenario

            @hookimpl
            def register_scenarios(register):
                register(Scenario(name="same", description="a scenario named like a strategy", config={}))
            """,
        ),
    )
    reg = load_registry(plugins_dirs=[tmp_path / "d"], entry_points=False)
    no_failures(reg)
    assert "same" in reg.strategies and "same" in reg.scenarios


# --------------------------------------------------------------------------- Param declarations


def test_invalid_param_default_is_rejected_with_plugin_and_param_named(empty_builtin: Path) -> None:
    reg = load_registry(plugins_dirs=[BROKEN], entry_points=False)
    msg = failure(reg, "bad_param_default").error or ""
    assert "test-bad-default" in msg and "'batch'" in msg and "expected an integer" in msg
    assert "test-bad-default" not in reg.strategies


@pytest.mark.parametrize(
    ("params", "words"),
    [
        pytest.param('(Param("n", "int", 0, min=1),)', ["'n'", "below the minimum"], id="default below min"),
        pytest.param(
            '(Param("t", "duration", "2s", max=10**9),)', ["'t'", "above the maximum"], id="default above max"
        ),
        pytest.param('(Param("t", "duration", "20 parsecs"),)', ["'t'", "duration"], id="duration does not parse"),
        pytest.param('(Param("r", "rate", "fast"),)', ["'r'", "rate"], id="rate does not parse"),
        pytest.param(
            '(Param("c", "choice", "c", choices=("a", "b")),)', ["'c'", "one of a, b"], id="choice not listed"
        ),
        pytest.param('(Param("b", "bool", "maybe"),)', ["'b'", "true or false"], id="bool"),
        pytest.param('(Param("x", "complex", 1),)', ["'x'", "complex"], id="unknown type"),
        pytest.param('(Param("a", "int", 1), Param("a", "int", 2))', ["'a'", "twice"], id="declared twice"),
        pytest.param('(Param("a", "int", 1), ("b", "int", 2))', ["Param"], id="not a Param"),
        pytest.param('(Param("a", "int", 1))', ["trailing comma"], id="one-tuple without comma"),
        pytest.param('(Param("a.b", "int", 1),)', ["'a.b'", "identifier"], id="name not an identifier"),
        pytest.param('(Param("a", "int", 5, min=10, max=1),)', ["'a'", "min"], id="min above max"),
    ],
)
def test_invalid_param_declarations_are_rejected(
    empty_builtin: Path, tmp_path: Path, params: str, words: list[str]
) -> None:
    src = strategy_source("dir-params", body=f"params = {params}")
    write(tmp_path / "d" / "p.py", src)
    reg = load_registry(plugins_dirs=[tmp_path / "d"], entry_points=False)
    msg = failure(reg, "p").error or ""
    assert "dir-params" in msg, msg
    for w in words:
        assert w in msg, (w, msg)
    assert "dir-params" not in reg.strategies


def test_valid_params_of_every_type_are_accepted(empty_builtin: Path, tmp_path: Path) -> None:
    params = """(
        Param("n", "int", 4, unit="tables", min=1, max=509, help="batch"),
        Param("f", "float", 0.5, min=0.0, max=1.0),
        Param("b", "bool", True),
        Param("s", "str", "all"),
        Param("c", "choice", "lru", choices=("lru", "fifo")),
        Param("d", "duration", "10ms", min=0, max=10**10),
        Param("r", "rate", "2000/s", unit="/s", min=0.0),
    )"""
    src = strategy_source("dir-typed", body=f"params = {params}")
    write(tmp_path / "d" / "typed.py", src)
    reg = load_registry(plugins_dirs=[tmp_path / "d"], entry_points=False)
    no_failures(reg)
    defaults = {p.name: p.canonical_default() for p in api.iter_params(reg.strategies["dir-typed"])}
    assert defaults == {"n": 4, "f": 0.5, "b": True, "s": "all", "c": "lru", "d": 10_000_000, "r": 2000.0}


# --------------------------------------------------------------------------- the sample plugins themselves


class FakeKernel:
    """Just enough of KernelServices to drive a strategy by hand.

    The IOMMU flush yields once, so a test can queue more tables while it is "running"."""

    def __init__(self) -> None:
        self.freed: list[int] = []
        self.scheduled: list[Any] = []
        self.flushes = 0
        self.atomic_depth = 0

    now = 0
    cpu = 0
    source = "test"

    @property
    def in_atomic(self) -> bool:
        return self.atomic_depth > 0

    def spinlock(self, name: str) -> Any:
        return type("Lock", (), {"name": name})()

    @contextmanager
    def spin_lock(self, lock: Any) -> Iterator[None]:
        self.atomic_depth += 1
        try:
            yield
        finally:
            self.atomic_depth -= 1

    def work(self, name: str, func: Callable[..., Any]) -> Any:
        return type("Work", (), {"name": name, "func": staticmethod(func), "state": "idle"})()

    def schedule_work(self, work: Any) -> bool:
        self.scheduled.append(work)
        return True

    def start_timer(self, delay_ns: int, func: Callable[..., Any]) -> Any:
        raise AssertionError("no sample strategy uses a timer")

    def iommu_sva_invalidate_kva_range(self) -> api.Step:
        assert not self.in_atomic, "flush under a spinlock"
        self.flushes += 1
        yield 1_000

    def free_now(self, pt: Any) -> None:
        self.freed.append(pt.page)

    def might_sleep(self) -> None:
        assert not self.in_atomic


class FakeTable:
    def __init__(self, page: int) -> None:
        self.page, self.level, self.kernel, self.source, self.unlinked_at = page, 1, True, "test", 0


def _strategy(name: str, **params: Any) -> tuple[api.FreeStrategy, FakeKernel]:
    reg = load_registry(plugins_dirs=[RUNTIME], entry_points=False)
    cls = reg.strategies[name]
    values = {p.name: p.canonical_default() for p in api.iter_params(cls)} | params
    k = FakeKernel()
    s = cls(values)
    s.setup(k)  # type: ignore[arg-type]
    return s, k


def _call(s: api.FreeStrategy, k: FakeKernel, page: int) -> None:
    out = s.pagetable_free_kernel(k, FakeTable(page))  # type: ignore[arg-type]
    if inspect.isgenerator(out):
        for _ in out:
            pass


def _run_worker_queueing_during_flush(s: api.FreeStrategy, k: FakeKernel, late: int) -> None:
    """Run the scheduled work item; while its flush is in progress, queue table ``late``."""
    work = k.scheduled[-1]
    gen = work.func(k)
    assert inspect.isgenerator(gen)
    assert next(gen) == 1_000  # suspended inside the flush
    _call(s, k, late)
    for _ in gen:
        pass


def test_good_strategy_leaves_tables_queued_during_the_flush_for_the_next_run(empty_builtin: Path) -> None:
    s, k = _strategy("test-good")
    _call(s, k, 1)
    _call(s, k, 2)
    assert k.freed == [] and k.scheduled
    _run_worker_queueing_during_flush(s, k, late=3)
    assert (k.flushes, k.freed) == (1, [1, 2])
    _run_worker_queueing_during_flush(s, k, late=4)
    assert (k.flushes, k.freed) == (2, [1, 2, 3])


def test_buggy_strategy_frees_the_table_queued_during_its_flush(empty_builtin: Path) -> None:
    s, k = _strategy("test-buggy-late-free")
    _call(s, k, 1)
    _run_worker_queueing_during_flush(s, k, late=2)
    assert (k.flushes, k.freed) == (1, [1, 2])  # 2 was unlinked after the flush began: the bug


def test_never_frees_strategy_never_frees(empty_builtin: Path) -> None:
    s, k = _strategy("test-never-frees")
    for page in range(100):
        _call(s, k, page)
    assert (k.freed, k.scheduled, k.flushes) == ([], [], 0)


def test_raises_strategy_raises_after_its_allowance(empty_builtin: Path) -> None:
    s, k = _strategy("test-raises", after=2)
    _call(s, k, 1)
    _call(s, k, 2)
    with pytest.raises(RuntimeError, match="test-raises"):
        _call(s, k, 3)
    assert k.freed == [1, 2]


def test_sample_iommu_model_and_workload(empty_builtin: Path) -> None:
    reg = load_registry(plugins_dirs=[RUNTIME], entry_points=False)
    model_cls = reg.iommu_models["test-fixed-cost"]
    model = model_cls({p.name: p.canonical_default() for p in model_cls.params} | {"effective": 0.5})
    cost = model.invalidate_kernel_range(0, api.SvaTopology(sva_mms=16, pasids_per_mm=2, iommus=2, iommu_index=0))
    assert (cost.duration_ns, cost.effective_ns, cost.commands) == (32_000, 16_000, {"invalidate_pasid": 32})
    assert [c.level for c in model.cache_geometry()] == [1, 2]

    src_cls = reg.workloads["test-steady"]
    assert [p.name for p in src_cls.params][:3] == ["rate", "burst", "cpus"]
    calls: list[tuple[int, dict[str, Any]]] = []

    class W:
        def interarrival(self, rate: float) -> int:
            return int(1e9 / rate)

        def pick_cpu(self, spec: str) -> int:
            return 3

        def free_kernel_tables(self, count: int, **kw: Any) -> api.Step:
            calls.append((count, kw))
            yield 10

    src = src_cls({p.name: p.canonical_default() for p in src_cls.params})
    gen = src.process(W())  # type: ignore[arg-type]
    assert [next(gen) for _ in range(4)] == [500_000, 10, 500_000, 10]
    assert calls[0] == (1, {"cpu": 3, "atomic": False})


# --------------------------------------------------------------------------- the samples in the simulator


def _run(registry: Registry, *overrides: str, scenario: str | None = None) -> dict[str, Any]:
    from explorer.config import apply_overrides, default_config
    from explorer.sim.build import build_simulation

    config = apply_overrides(default_config(registry, scenario=scenario), list(overrides), registry)
    tables: Any = registry  # sim.build.PluginTables declares settable Mapping attributes: dict fields don't match
    return build_simulation(config, tables).run()


@pytest.fixture(scope="module")
def samples_registry() -> Registry:
    reg = load_registry([RUNTIME], entry_points=False)
    no_failures(reg)
    return reg


def test_buggy_late_free_is_caught_where_the_kernel_strategy_is_not(samples_registry: Registry) -> None:
    """Same machine, same seed, same workload: only the late free differs."""
    buggy = _run(samples_registry, scenario="test-buggy")
    assert buggy["violations"]["use_after_free"]["total"] > 0
    for correct in ("test-good", "deferred"):
        m = _run(samples_registry, f"strategy.name={correct}", scenario="test-buggy")
        assert m["violations"]["use_after_free"]["total"] == 0, correct
        assert m["violations"]["stale_walk_free"]["total"] == 0, correct
        assert m["kernel_tables_freed"] == buggy["kernel_tables_freed"]


def test_never_frees_is_reported_as_leaking_every_kernel_table(run_strategy: Callable[..., Any]) -> None:
    m = run_strategy("test-never-frees", plugins_dir=RUNTIME, scenario="test-never-frees")
    assert m["kernel_tables_freed"] == 0
    assert m["violations"]["leaked"]["total"] == m["kernel_tables_unlinked"] > 0
    assert m["user_tables_freed"] > 0  # user tables never reach a strategy


def test_strategy_raising_at_run_time_fails_the_run_naming_it(samples_registry: Registry) -> None:
    from explorer.sim.engine import PluginError

    with pytest.raises(PluginError, match="test-raises"):
        _run(samples_registry, "strategy.name=test-raises", "strategy.params.after=3")


# --------------------------------------------------------------------------- the tutorial's code


def _doc_blocks(lang: str) -> dict[str, str]:
    """Code blocks of docs/writing-plugins.md whose first line is ``# PATH`` (by file name; the
    tutorial's tests, under ``tests/``, are left out: they are not plugins)."""
    blocks = re.findall(rf"```{lang}\n(.*?)```", WRITING_PLUGINS.read_text(), flags=re.S)
    named = {b.split("\n", 1)[0][2:].strip(): b for b in blocks if re.match(r"# [\w./-]+\.\w+\n", b)}
    return {Path(k).name: b for k, b in named.items() if not k.startswith("tests/")}


@pytest.fixture(scope="module")
def tutorial_registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    d = tmp_path_factory.mktemp("tutorial")
    for filename, code in _doc_blocks("python").items():
        (d / filename).write_text(code)
    reg = load_registry([d], entry_points=False)
    no_failures(reg)
    return reg


def test_tutorial_plugins_load(tutorial_registry: Registry) -> None:
    assert set(_doc_blocks("python")) == {"strategy.py", "myvendor.py", "vmalloc_burst.py", "my_scenarios.py"}
    assert "delayed" in tutorial_registry.strategies
    assert "myvendor" in tutorial_registry.iommu_models
    assert "vmalloc-burst" in tutorial_registry.workloads
    assert "delayed-many-mms" in tutorial_registry.scenarios


def test_tutorial_strategy_is_safe_and_batches(tutorial_registry: Registry) -> None:
    m = _run(tutorial_registry, scenario="delayed-many-mms")
    assert m["violations"]["use_after_free"]["total"] == 0
    assert m["violations"]["sleep_in_atomic"]["total"] == 0
    assert m["violations"]["leaked"]["total"] == 0
    assert 0 < m["flushes"] < m["kernel_tables_freed"] / 4
    # the first table of a batch waits the scenario's 2ms delay, the later ones less
    assert m["latency_ns"]["max"] >= 2_000_000 > m["latency_ns"]["p50"] > 500_000


def test_tutorial_iommu_model_and_workload_run(tutorial_registry: Registry) -> None:
    m = _run(
        tutorial_registry,
        "iommu.model=myvendor",
        "workload[0].name=vmalloc-burst",
        "strategy.name=delayed",
    )
    assert m["violations"]["use_after_free"]["total"] == 0
    assert m["iommu_commands"]["completion_wait"] == m["flushes"] * len(m["iommus"]) > 0
    assert m["unlinked_by_source"]["by_source"].get("vmalloc-burst", 0) > 0


def test_tutorial_pyproject_declares_the_entry_point_group() -> None:
    text = _doc_blocks("toml")["pyproject.toml"]
    data = tomllib.loads(text)
    assert data["project"]["entry-points"][ENTRY_POINT_GROUP] == {"delayed": "pgtx_delayed.strategy"}
    example = tomllib.loads((ROOT / "docs" / "examples" / "delayed" / "pyproject.toml").read_text())
    assert example["project"]["entry-points"] == data["project"]["entry-points"]
    assert example["tool"]["hatch"]["version"] == data["tool"]["hatch"]["version"]


# --------------------------------------------------------------------------- meta-tests


HOOKS = sorted(
    name for name, f in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(f, "pgtable_explorer_spec")
)


def test_there_are_hooks() -> None:
    assert HOOKS == ["register_iommu_models", "register_scenarios", "register_strategies", "register_workloads"]


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_docstring(hook: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    assert len(doc) > 20 and "register(" in doc


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_in_writing_plugins(hook: str) -> None:
    assert f"`{hook}" in WRITING_PLUGINS.read_text(), f"docs/writing-plugins.md does not mention {hook}"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_exercised_by_a_sample_plugin(hook: str) -> None:
    kind = plugins._HOOK_KIND[hook]
    assert RUNTIME_NAMES.get(kind), f"no sample plugin in tests/plugins/runtime implements {hook}"


def _public(cls: type) -> list[str]:
    return [n for n in vars(cls) if not n.startswith("_")]


@pytest.mark.parametrize(
    "name",
    [
        *(f"k.{n}" for n in _public(api.KernelServices)),
        *(f"w.{n}" for n in _public(api.WorkloadServices)),
        *(f"{n}" for n in ("cache_geometry", "invalidate_kernel_range", "walks_kernel_half", "present", "metrics")),
        *(f.name for f in fields(api.FlushCost)),
        *(f.name for f in fields(api.FlushBatch)),
        "SharedCache",
        "check_values",
        "self.values",
        *(f.name for f in fields(api.SvaTopology)),
        *(f.name for f in fields(api.Scenario)),
        *(f.name for f in fields(api.Param)),
        *(f"`{t}`" for t in get_args(api.ParamType)),
        "setup",
        "pagetable_free_kernel",
        "process",
        "workload_params",
        ENTRY_POINT_GROUP,
        NO_ENTRYPOINTS_ENV,
        "--plugins-dir",
        "check_pending",
    ],
)
def test_writing_plugins_covers_the_api(name: str) -> None:
    """Everything a plugin author can use from explorer.api is explained in the tutorial, as code: in
    a code block or an inline `span`, as a whole identifier. The English word ("present", "process",
    "metrics", "help") in a sentence does not count."""
    code = markdown_code(WRITING_PLUGINS.read_text())
    bare = name.split(".", 1)[-1].strip("`")
    assert re.search(rf"(?<![\w-]){re.escape(bare)}(?![\w-])", code), f"docs/writing-plugins.md does not cover {name}"


def markdown_code(text: str) -> str:
    """The code of a Markdown text: its fenced blocks and its inline `spans`, nothing of the prose."""
    fence = re.compile(r"^```[^\n]*\n(.*?)^```", flags=re.S | re.M)
    return "\n".join([*fence.findall(text), *re.findall(r"`([^`\n]+)`", fence.sub("", text))])


def test_the_coverage_check_reads_only_code() -> None:
    text = "The device must be present.\n```python\nk.free_now(pt)\n```\nThen call `w.interarrival(rate)`.\n"
    code = markdown_code(text)
    assert "present" not in code and "k.free_now(pt)" in code and "w.interarrival(rate)" in code
