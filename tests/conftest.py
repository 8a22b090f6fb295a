"""Shared fixtures: the plugin registry (built-ins plus the sample plugins) and config helpers;
the test layers (markers ``unit`` and ``functional``, given by rule in ``pytest_collection_modifyitems``)."""

from __future__ import annotations

import os
import types
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("PGTABLE_EXPLORER_NO_ENTRYPOINTS", "1")
os.environ["PGTABLE_EXPLORER_KEYMAP"] = os.devnull  # the developer's own keymap stays out of the tests

from explorer.config import apply_overrides, default_config
from explorer.plugins import Registry, load_registry

TESTS = Path(__file__).resolve().parent
RUNTIME_PLUGINS = TESTS / "plugins" / "runtime"

#: A short run, as config overrides (``make_config(registry, *SHORT)``): 5 ms simulated and a 5 ms
#: drain, enough for every strategy to free what it unlinked; a TUI session runs it in a moment.
SHORT = ("run.duration=5ms", "run.drain=5ms")
#: A short run as the command line's flags (``main(["run", *SHORT_ARGS])``): 5 ms simulated.
SHORT_ARGS = ("--duration", "5ms")


@pytest.fixture(scope="session")
def registry() -> Registry:
    """Built-in plugins only."""
    return load_registry(entry_points=False)


@pytest.fixture(scope="session")
def test_registry() -> Registry:
    """Built-in plugins plus the deliberately odd strategies in tests/plugins/runtime."""
    return load_registry([RUNTIME_PLUGINS], entry_points=False)


def make_config(registry: Registry, *overrides: str, scenario: str | None = None) -> dict[str, Any]:
    """The default (or a scenario's) config with ``key=value`` overrides applied."""
    return apply_overrides(default_config(registry, scenario=scenario), list(overrides), registry)


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """The command line run in this process: its exit status, standard output and error."""
    from explorer.cli import main

    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def simulate(registry: Registry, *overrides: str, scenario: str | None = None) -> dict[str, Any]:
    """The metrics of a run of the default (or a scenario's) config with ``key=value`` overrides."""
    from explorer.sim.build import build_simulation

    return build_simulation(make_config(registry, *overrides, scenario=scenario), registry).run()


def strategy_source(name: str, cls: str, body: str, *, help: str = "", imports: str = "",
                    method: str = "pagetable_free_kernel(self, k, pt)") -> str:
    """The text of a plugin file with one strategy ``name`` whose ``method`` runs ``body``.

    Tests write it into a temporary folder, to load it the way a user's ``--plugins-dir`` is.
    """
    indented = "\n".join("        " + line for line in body.strip().splitlines())
    return f'''
{imports}
from explorer.api import FreeStrategy, hookimpl


class {cls}(FreeStrategy):
    name = "{name}"
    version = "1.0"
    help = "{help}"

    def {method}:
{indented}


@hookimpl
def register_strategies(register):
    register({cls})
'''


def raising_strategy_source(name: str, cls: str = "Boom") -> str:
    """A plugin file whose strategy ``name`` raises on the first kernel table."""
    return strategy_source(name, cls, 'raise RuntimeError("boom on purpose")',
                           help="Raises on the first kernel table.")


def hanging_strategy_source(name: str, cls: str = "Hangs") -> str:
    """A plugin file whose strategy ``name`` spins forever on the first kernel table (a plugin that
    hangs: only a timeout, a stop or the end of its process ends it)."""
    return strategy_source(name, cls, "while True:\n    pass", help="Spins forever on the first table.")


@pytest.fixture
def make_tui_app(registry: Registry) -> Any:
    """``make_tui_app(*overrides, start="config", **kw)``: an ExplorerApp on a SHORT run of the
    built-in plugins plus ``overrides`` (or ``config=``/``registry=`` of the test's own; ``kw`` as
    tests.tui_helpers.make_app takes them). Its sessions are shut down after the test."""
    from tests.tui_helpers import make_app

    apps: list[Any] = []

    def build(*overrides: str, start: str = "config", registry: Registry = registry,
              config: dict[str, Any] | None = None, **kw: Any) -> Any:
        if config is None:
            config = make_config(registry, *SHORT, *overrides)
        app = make_app(registry, config, start=start, **kw)
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.shutdown_sessions()


@pytest.fixture
def app(make_tui_app: Any) -> Any:
    """The app on the Config screen with a SHORT run (a TUI module may override it: another screen)."""
    return make_tui_app()


# --------------------------------------------------------------------------- the test layers
#
# `make test-fast` runs `-m unit`, `make test` runs both. A test is *functional* when it is slow by
# nature: it drives the TUI (Pilot), starts processes (a session's child, sweep workers, Dask, the
# CLI or pip as a program) or builds and installs packages. Everything else is *unit*. The rule,
# first match wins:
#   1. a test marked `functional` or `unit` keeps its mark (for what the rule cannot see, such as a
#      CLI sweep, whose workers are processes);
#   2. every test of a module in FUNCTIONAL_MODULES: the TUI's Pilot tests, sessions, packaging and
#      the scaffold (pip installs), and test_determinism (every benchmark case run whole, several
#      ways: the bit-identical guard, in process but a minute of simulation);
#   3. a test whose code, or the code of a tests/ helper it calls (followed through the helpers
#      of the test suite), names one of PROCESS_NAMES;
#   4. otherwise unit.
FUNCTIONAL_MODULES = ("test_tui_", "test_session", "test_packaging", "test_scaffold", "test_determinism")
PROCESS_NAMES = frozenset({
    "run_test",  # App.run_test: a Pilot test
    "subprocess", "executable",  # the CLI, pip or python as a program
    "Session", "LocalExecutor", "DaskExecutor", "make_executor",  # child processes
})


def _names(code: types.CodeType, module: dict[str, Any], seen: set[types.CodeType]) -> set[str]:
    """The global and attribute names used by ``code``, its nested functions and the tests/ helpers
    it calls."""
    if code in seen:
        return set()
    seen.add(code)
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const, module, seen)
    for name in code.co_names:
        helper = module.get(name)
        if isinstance(helper, types.FunctionType) and helper.__module__.startswith("tests"):
            names |= _names(helper.__code__, helper.__globals__, seen)
    return names


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from explorer.compiled import running_compiled

    compiled = running_compiled()
    for item in items:
        if compiled and item.get_closest_marker("pure_core"):
            # a compiled class takes the patch but its compiled callers never see it: the test would
            # compare the fast path with itself
            item.add_marker(pytest.mark.skip(reason="patches simulator classes: run on the pure core by "
                                                    "tests/test_compiled_core.py"))
        if item.get_closest_marker("functional") or item.get_closest_marker("unit"):
            continue
        func = getattr(item, "function", None)
        functional = item.path.name.startswith(FUNCTIONAL_MODULES) or (
            func is not None and bool(_names(func.__code__, func.__globals__, set()) & PROCESS_NAMES))
        item.add_marker(pytest.mark.functional if functional else pytest.mark.unit)
