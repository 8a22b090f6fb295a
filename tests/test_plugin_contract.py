"""Plugins cannot break the tool's contract: their prints stay out of the output, sys.exit() and
bad hook return values are plugin failures naming the plugin, unmarked hooks are warned about,
and `run --timeout` stops a plugin that hangs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import SHORT_ARGS, hanging_strategy_source, run_main, strategy_source

NOISY = '''
print("hello from import")
from explorer.api import FreeStrategy, hookimpl


class Noisy(FreeStrategy):
    name = "noisy"

    def pagetable_free_kernel(self, k, pt):
        k.free_now(pt)


@hookimpl
def register_strategies(register):
    print("hello from the hook")
    register(Noisy)
'''

UNMARKED = '''
from explorer.api import FreeStrategy


class Forgotten(FreeStrategy):
    name = "forgotten"

    def pagetable_free_kernel(self, k, pt):
        k.free_now(pt)


def register_strategies(register):
    register(Forgotten)
'''

MULTILINE_FAILURE = 'raise ValueError("first line\\nsecond line\\nthird line")\n'


def iommu_source(name: str, geometry: str, cost: str) -> str:
    return f'''
from explorer.api import CacheLevel, FlushCost, IommuModel, hookimpl


class Odd(IommuModel):
    name = "{name}"

    def cache_geometry(self):
        return {geometry}

    def invalidate_kernel_range(self, now, topo):
        return {cost}


@hookimpl
def register_iommu_models(register):
    register(Odd)
'''


def plugins_dir(tmp_path: Path, **files: str) -> str:
    d = tmp_path / "plugins"
    d.mkdir(exist_ok=True)
    for name, text in files.items():
        (d / f"{name}.py").write_text(text)
    return str(d)


def test_a_plugins_prints_at_load_time_stay_out_of_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    d = plugins_dir(tmp_path, noisy=NOISY)
    rc, out, err = run_main(capsys, "--plugins-dir", d, "plugins", "--json")
    assert rc == 0 and "hello from import" in err and "hello from the hook" in err
    assert any(p["name"] == "noisy" for p in json.loads(out)["plugins"])
    rc, out, _ = run_main(capsys, "--plugins-dir", d, "run", *SHORT_ARGS, "--set", "strategy.name=noisy",
                          "--format", "json")
    assert rc == 0 and json.loads(out)["config"]["strategy"]["name"] == "noisy"


@pytest.mark.parametrize(("body", "ended"), [("import sys\nsys.exit(0)", "called sys.exit(0)"),
                                             ("raise GeneratorExit", "raised GeneratorExit")])
def test_a_plugin_ending_the_program_is_a_plugin_failure(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                         body: str, ended: str) -> None:
    d = plugins_dir(tmp_path, quitter=strategy_source("quitter", "Quitter", body))
    rc, out, err = run_main(capsys, "--plugins-dir", d, "run", *SHORT_ARGS, "--set", "strategy.name=quitter")
    assert rc == 1 and out == ""
    assert f"error: strategy 'quitter' {ended} during the run" in err


@pytest.mark.parametrize(
    ("geometry", "cost", "message"),
    [
        ("(CacheLevel(1, 64),)", "5", "invalidate_kernel_range() must return a FlushCost, got int"),
        ("(CacheLevel(1, 64),)", "FlushCost(duration_ns=None, effective_ns=0)",
         "FlushCost.duration_ns = None: expected a finite number"),
        ("(CacheLevel(1, 64),)", "FlushCost(1000, 0, scope='all')", "FlushCost.scope = 'all'"),
        ("[1, 2]", "FlushCost(1000, 0)", "cache_geometry() must return CacheLevel or SharedCache objects, got 1"),
        ("(CacheLevel(1, 10**12),)", "FlushCost(1000, 0)", "CacheLevel.entries = 1000000000000"),
    ],
)
def test_a_bad_iommu_hook_return_names_the_model(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                 geometry: str, cost: str, message: str) -> None:
    d = plugins_dir(tmp_path, odd=iommu_source("odd", geometry, cost))
    rc, _, err = run_main(capsys, "--plugins-dir", d, "run", *SHORT_ARGS, "--set", "iommu.model=odd")
    assert rc == 1, err
    assert err.startswith("error: iommu 'odd' raised: TypeError: ") and message in err, err


def test_a_hook_without_hookimpl_is_warned_about(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    d = plugins_dir(tmp_path, forgotten=UNMARKED)
    rc, _, err = run_main(capsys, "--plugins-dir", d, "scenarios")
    assert rc == 0
    assert "warning: plugin forgotten" in err and "register_strategies() is a hook but has no @hookimpl" in err


def test_multi_line_warnings_keep_the_prefix_on_every_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    d = plugins_dir(tmp_path, broken=MULTILINE_FAILURE)
    rc, _, err = run_main(capsys, "--plugins-dir", d, "scenarios")
    lines = err.splitlines()
    assert rc == 0 and len(lines) == 3 and "second line" in lines[1]
    assert all(line.startswith("warning: ") for line in lines), lines


def test_run_timeout_stops_a_hanging_plugin(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    d = plugins_dir(tmp_path, hangs=hanging_strategy_source("hangs"))
    trace = tmp_path / "hang.trace"
    rc, out, err = run_main(capsys, "--plugins-dir", d, "run", *SHORT_ARGS, "--set", "strategy.name=hangs",
                            "--timeout", "0.5s", "--trace", str(trace))
    assert rc == 1 and out == ""
    assert "error: the run timed out after 0.5s (wall clock); it was in strategy 'hangs'" in err
    assert trace.read_text()  # kept up to the hang, like any failed run's
    rc, _, err = run_main(capsys, "run", *SHORT_ARGS, "--timeout", "soon")
    assert rc == 2 and "--timeout" in err


def test_run_timeout_in_the_simulators_own_work_blames_no_plugin(capsys: pytest.CaptureFixture[str]) -> None:
    # Inside the documented ranges, and far more work than 0.3 s: 256 IOMMUs walking 1e9 times a second.
    rc, _, err = run_main(capsys, "run", "--duration", "10ms", "--set", "iommu.count=256",
                          "--set", "iommu.walk_rate=1e9/s", "--timeout", "0.3s")
    assert rc == 1 and "error: the run timed out after 0.3s (wall clock); it was still simulating" in err
    assert "traceback" not in err.lower()


def test_compare_timeout_names_the_column_and_the_plugin(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    d = plugins_dir(tmp_path, hangs=hanging_strategy_source("hangs"))
    rc, out, err = run_main(capsys, "--plugins-dir", d, "compare", *SHORT_ARGS, "--strategy", "deferred",
                            "--strategy", "hangs", "--timeout", "0.5s")
    assert rc == 1 and out == ""
    assert "error: column 'hangs': the run timed out after 0.5s (wall clock); it was in strategy 'hangs'" in err
    rc, _, err = run_main(capsys, "compare", "--strategy", "sync", "--strategy", "deferred", "--timeout", "-1s")
    assert rc == 2 and "--timeout" in err
