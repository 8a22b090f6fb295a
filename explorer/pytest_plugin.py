"""pytest fixtures for plugin authors (entry point ``pytest11``: active wherever pgtable-explorer is
installed), so a plugin's test is three lines::

    def test_delayed_is_safe(check_strategy):
        check_strategy(Delayed)

Fixtures (each a function taking the arguments of its namesake in :mod:`explorer.testing`):

- ``check_strategy``: raises ``AssertionError`` with a counterexample; the counterexample configs
  go in the test's ``tmp_path``;
- ``run_strategy``: the metrics of one run;
- ``compare_strategy``: ``(ours, theirs)`` metrics on the same workload and seed.

Options: ``--pgx-plugins-dir DIR`` (repeatable) loads plugins from DIR for every fixture;
``--pgx-budget TIME`` sets ``check_strategy``'s time budget (default 30s); ``--pgx-quick`` makes
``check_strategy`` a smoke check (one scenario, one model, 20ms).

Importing this module is cheap (pytest imports it in every session of an environment that has
pgtable-explorer): the kit is imported when a fixture is first used.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pgtable-explorer", "pgtable-explorer plugin testing kit")
    group.addoption("--pgx-plugins-dir", action="append", default=[], metavar="DIR",
                    help="load pgtable-explorer plugins from DIR in the kit's fixtures (repeatable)")
    group.addoption("--pgx-budget", default=None, metavar="TIME",
                    help="time budget of each check_strategy, e.g. 10s (default: 30s)")
    group.addoption("--pgx-quick", action="store_true",
                    help="check_strategy on one scenario (large-sva) and one IOMMU model (intel-vtd) for 20ms: "
                    "a smoke check while editing, not a verdict")


def _defaults(request: pytest.FixtureRequest) -> dict[str, Any]:
    dirs = request.config.getoption("--pgx-plugins-dir", default=[]) or []
    return {"plugins_dir": list(dirs)} if dirs else {}


@pytest.fixture
def check_strategy(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Any]:
    """``check_strategy(strategy, **options)``: see :func:`explorer.testing.check_strategy`."""
    from explorer import testing

    defaults = {**_defaults(request), "report_dir": tmp_path}
    budget = request.config.getoption("--pgx-budget", default=None)
    if budget:
        defaults["budget"] = budget
    if request.config.getoption("--pgx-quick", default=False):
        defaults.update(scenarios=["large-sva"], iommu_models=["intel-vtd"], duration="20ms", budget="1s")

    def check(strategy: Any, **options: Any) -> Any:
        __tracebackhide__ = True  # the report is the message; the kit's frames are noise
        return testing.check_strategy(strategy, **{**defaults, **options})

    return check


@pytest.fixture
def run_strategy(request: pytest.FixtureRequest) -> Callable[..., dict[str, Any]]:
    """``run_strategy(strategy="deferred", **options)``: see :func:`explorer.testing.run_strategy`."""
    from explorer import testing

    defaults = _defaults(request)

    def run(strategy: Any = "deferred", **options: Any) -> dict[str, Any]:
        return testing.run_strategy(strategy, **{**defaults, **options})

    return run


@pytest.fixture
def compare_strategy(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """``compare_strategy(strategy, other="deferred", **options)``: see
    :func:`explorer.testing.compare_strategy`."""
    from explorer import testing

    defaults = _defaults(request)

    def compare(strategy: Any, other: Any = "deferred", **options: Any) -> Any:
        return testing.compare_strategy(strategy, other, **{**defaults, **options})

    return compare
