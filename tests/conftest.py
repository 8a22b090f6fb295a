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
