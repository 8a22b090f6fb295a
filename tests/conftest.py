"""Shared fixtures: the plugin registry (built-ins plus the sample plugins) and config helpers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("PGTABLE_EXPLORER_NO_ENTRYPOINTS", "1")
os.environ["PGTABLE_EXPLORER_KEYMAP"] = os.devnull  # the developer's own keymap stays out of the tests

from explorer.config import apply_overrides, default_config
from explorer.plugins import Registry, load_registry

TESTS = Path(__file__).resolve().parent
RUNTIME_PLUGINS = TESTS / "plugins" / "runtime"


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
