"""Guard rails for the generator mistakes every SimPy user makes: a strategy that yields something
the kernel cannot wait on, or calls a kernel service without ``yield from``, ends the run with
exit 1 and a message naming the plugin, its file and line, and what to write instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from explorer.cli import main
from explorer.plugins import load_registry
from explorer.sim.build import build_simulation
from explorer.sim.engine import Engine, PluginError
from tests.conftest import SHORT_ARGS, make_config, strategy_source

WORKER = '''
from explorer.api import FreeStrategy, hookimpl


class Worker(FreeStrategy):
    name = "NAME"
    version = "1.0"

    def setup(self, k):
        self.list = []
        self.work = k.work("w", self.work_func)

    def work_func(self, k):
        page_list, self.list = self.list, []
        BODY
        for pt in page_list:
            k.free_now(pt)

    def pagetable_free_kernel(self, k, pt):
        self.list.append(pt)
        k.schedule_work(self.work)


@hookimpl
def register_strategies(register):
    register(Worker)
'''


def run_with(capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, text: str) -> tuple[int, str, str]:
    (tmp_path / f"{name.replace('-', '_')}.py").write_text(text)
    rc = main(["--plugins-dir", str(tmp_path), "run", "--set", f"strategy.name={name}", *SHORT_ARGS])
    out, err = capsys.readouterr()
    return rc, out, err


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def assert_clean(err: str) -> None:
    """One error line: no engine traceback, no raw AttributeError."""
    assert "AttributeError" not in err and "Traceback" not in err and "plugin traceback" not in err
    assert err.count("\n") == 1


def test_yielding_a_string_names_the_file_line_and_the_fix(capsys: pytest.CaptureFixture[str],
                                                          tmp_path: Path) -> None:
    text = strategy_source("soon", "Soon", 'yield "soon"\nk.free_now(pt)')
    rc, out, err = run_with(capsys, tmp_path, "soon", text)
    assert rc == 1 and out == ""
    where = f"{tmp_path / 'soon.py'}:{line_of(text, 'yield')}"
    assert err.startswith(f"error: strategy 'soon': {where}: yielded 'soon' (a str), which the kernel cannot wait "
                          "on: yield an int, the nanoseconds of CPU time to spend (`yield 1000`)"), err
    assert "`yield from k.iommu_sva_invalidate_kva_range()`" in err
    assert_clean(err)


def test_yielding_a_float_suggests_int(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, _, err = run_with(capsys, tmp_path, "floaty", strategy_source("floaty", "F", "yield 1e3\nk.free_now(pt)"))
    assert rc == 1 and "yielded 1000.0 (a float)" in err and "write `yield int(1000.0)`" in err
    assert_clean(err)


def test_yielding_a_kernel_service_without_from_in_a_work_function(capsys: pytest.CaptureFixture[str],
                                                                   tmp_path: Path) -> None:
    text = WORKER.replace("NAME", "noflush").replace("BODY", "yield k.iommu_sva_invalidate_kva_range()")
    rc, _, err = run_with(capsys, tmp_path, "noflush", text)
    assert rc == 1
    where = f"{tmp_path / 'noflush.py'}:{line_of(text, 'yield k.iommu')}"
    assert err.startswith(f"error: strategy 'noflush': {where}: yielded the generator "
                          "iommu_sva_invalidate_kva_range() instead of running it; write "
                          "`yield from k.iommu_sva_invalidate_kva_range()`"), err
    assert_clean(err)


@pytest.mark.parametrize("where_", ["caller", "worker", "timer"])
def test_a_kernel_service_called_without_yield_from_is_caught_when_the_step_ends(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, where_: str,
) -> None:
    if where_ == "caller":  # a plain function: the flush is made and dropped
        text = strategy_source("bare", "Bare", "k.iommu_sva_invalidate_kva_range()\nk.free_now(pt)")
    elif where_ == "worker":  # a generator (it yields time) that forgets `yield from` for the flush
        text = WORKER.replace("NAME", "bare").replace("BODY", "yield 100\n        k.iommu_sva_invalidate_kva_range()")
    else:
        text = strategy_source("bare", "Bare", "k.start_timer(1000, lambda kt: [kt.iommu_sva_invalidate_kva_range()])\n"
                               "k.free_now(pt)")
    rc, _, err = run_with(capsys, tmp_path, "bare", text)
    assert rc == 1
    where = f"{tmp_path / 'bare.py'}:{line_of(text, 'iommu_sva_invalidate_kva_range()')}"
    assert err.startswith(f"error: strategy 'bare': {where}: called k.iommu_sva_invalidate_kva_range() without "
                          "`yield from`: the call only makes a generator, so the iommu_sva_invalidate_kva_range "
                          "never ran; write `yield from k.iommu_sva_invalidate_kva_range()`"), err
    assert_clean(err)


def test_the_right_way_runs_clean(tmp_path: Path) -> None:
    # the same worker with `yield from` is the deferred strategy: no error, no violation
    text = WORKER.replace("NAME", "right").replace("BODY", "yield from k.iommu_sva_invalidate_kva_range()")
    (tmp_path / "right.py").write_text(text)
    reg = load_registry([tmp_path], entry_points=False)
    m = build_simulation(make_config(reg, "strategy.name=right", "run.duration=2ms"), reg).run()
    assert m["flushes"] > 0 and sum(v["total"] for v in m["violations"].values()) == 0


def test_a_workload_that_yields_nonsense_is_named(tmp_path: Path) -> None:
    (tmp_path / "odd.py").write_text('''
from explorer.api import WorkloadSource, hookimpl, workload_params


class Odd(WorkloadSource):
    name = "odd"
    params = workload_params("1000/s")

    def process(self, w):
        yield w.interarrival(1000.0)
        yield None


@hookimpl
def register_workloads(register):
    register(Odd)
''')
    reg = load_registry([tmp_path], entry_points=False)
    cfg = make_config(reg, "run.duration=20ms")
    cfg["workload"] = [{"name": "odd", "rate": 1000.0, "burst": 1, "cpus": "all"}]
    with pytest.raises(PluginError) as exc:
        build_simulation(cfg, reg).run()
    assert exc.value.kind == "workload" and exc.value.name == "odd"
    assert exc.value.summary.startswith(f"workload 'odd': {tmp_path / 'odd.py'}:11: yielded None (a NoneType)")


def test_the_engine_throws_the_mistake_into_the_generator_at_its_yield() -> None:
    # A bare engine process: the error is raised at the yield, where a try/except in the process
    # (or a wrapper around it) sees it, and the process may carry on.
    seen: list[str] = []

    def proc():
        try:
            yield "x"
        except Exception as exc:
            seen.append(type(exc).__name__)
        yield 5
        seen.append("resumed")

    eng = Engine()
    eng.start(proc())
    eng.run(10)
    assert seen == ["PluginMistake", "resumed"]
