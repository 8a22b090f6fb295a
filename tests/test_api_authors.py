"""What the plugin API lets authors say (issue 13, part 4): the flush's batch, one cache capacity
shared by several levels, a check of parameters together, and instance values by their own name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from explorer.api import (
    CacheLevel,
    FlushBatch,
    FlushCost,
    FreeStrategy,
    IommuModel,
    Param,
    SharedCache,
    SvaTopology,
)
from explorer.cli import main
from explorer.config import ConfigError
from explorer.sim.build import build_simulation
from explorer.sim.kernel import takes_batch
from explorer.testing import kit_registry, make_config, run_config


class PerEntry(IommuModel):
    """Cost per queued entry: a base cost plus a cost for each table the flush covers."""

    name = "test-per-entry"
    version = "1.0"
    help = "base + per_table * tables covered."
    params = (Param("shared", "bool", False, help="One capacity for both levels."),)
    batches: list[FlushBatch] = []  # noqa: RUF012 - a test's record of every call

    def cache_geometry(self) -> Any:
        if self.values["shared"]:
            return (SharedCache((1, 2), 8),)
        return (CacheLevel(1, 8), CacheLevel(2, 8))

    def invalidate_kernel_range(self, now: int, topo: SvaTopology, batch: FlushBatch | None = None) -> FlushCost:
        assert batch is not None
        PerEntry.batches.append(batch)
        duration = 1_000 + 100 * batch.tables
        return FlushCost(duration_ns=duration, effective_ns=duration, commands={"inv": 1}, scope="kernel")


def _run(*overrides: str, strategy: str = "deferred") -> dict[str, Any]:
    reg = kit_registry(PerEntry)
    config = make_config(reg, strategy, iommu="test-per-entry", duration="20ms",
                         overrides=("iommu.count=1", *overrides))
    return run_config(config, reg)


def test_the_model_is_told_what_each_flush_covers() -> None:
    PerEntry.batches = []
    m = _run()
    batches = PerEntry.batches
    assert len(batches) == m["flushes"] > 0
    assert all(b.tables == sum(b.levels.values()) and 0 <= b.new <= b.tables for b in batches)
    assert set().union(*(b.levels for b in batches)) <= {1, 2}
    # every table deferred frees was pending at the start of the flush before its free, and is
    # "new" to exactly one flush: the first to start after its unlink
    assert m["kernel_tables_freed"] <= sum(b.new for b in batches) <= m["kernel_tables_unlinked"]
    # the cost it returned per flush is what the run charged
    assert m["flush_time_ns"] == sum(1_000 + 100 * b.tables for b in batches)


def test_models_written_before_the_batch_are_called_as_before() -> None:
    class Old(IommuModel):
        def invalidate_kernel_range(self, now, topo):  # type: ignore[no-untyped-def, override]
            return FlushCost(0, 0)

    class Star(IommuModel):
        def invalidate_kernel_range(self, now, topo, *rest):  # type: ignore[no-untyped-def, override]
            return FlushCost(0, 0)

    assert not takes_batch(Old({}).invalidate_kernel_range)
    assert takes_batch(Star({}).invalidate_kernel_range)
    assert takes_batch(PerEntry({"shared": False}).invalidate_kernel_range)


def test_a_shared_cache_holds_its_capacity_across_levels() -> None:
    apart, shared = _run(), _run("iommu.params.shared=true")
    assert apart["iommus"][0]["capacity"] == 16 and shared["iommus"][0]["capacity"] == 8
    assert shared["iommus"][0]["entries"] <= 8 < apart["iommus"][0]["entries"]
    # one cache, two levels: a user walk fills it at both levels, with keys that never collide
    assert shared["cache"]["misses"] > apart["cache"]["misses"]


class Window(FreeStrategy):
    name = "test-window"
    version = "1.0"
    help = "Frees at once; declares a window."
    params = (Param("lo", "int", 1, min=0, max=100, help="low"), Param("hi", "int", 5, min=0, max=100, help="high"))

    @classmethod
    def check_values(cls, values: Any) -> Any:
        return None if values["lo"] <= values["hi"] else {"lo": f"lo {values['lo']} is above hi {values['hi']}"}

    def pagetable_free_kernel(self, k: Any, pt: Any) -> None:
        k.free_now(pt)


def test_a_strategy_checks_its_parameters_together() -> None:
    reg = kit_registry(Window)
    with pytest.raises(ConfigError) as err:
        make_config(reg, "test-window", params={"lo": 9, "hi": 3})
    assert [(p.key, p.message) for p in err.value.problems] == [("strategy.params.lo", "lo 9 is above hi 3")]
    assert make_config(reg, "test-window", params={"lo": 3, "hi": 3})["strategy"]["params"] == {"lo": 3, "hi": 3}


def test_config_validate_and_run_exit_2_for_parameters_that_do_not_fit_together(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "vtd.toml"
    path.write_text('[iommu]\nmodel = "intel-vtd"\n[iommu.params]\nbatch = 300\n')
    assert main(["config", "validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: iommu.params.batch: batch 300 + 2 must fit in queue_entries 256" in err
    assert main(["run", str(path)]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_the_tui_editor_refuses_parameters_that_do_not_fit_together() -> None:
    from tests.tui_helpers import make_app

    reg = kit_registry()
    app = make_app(reg, make_config(reg, "deferred", iommu="intel-vtd"))
    problem = app.apply_edit("iommu.params.batch", 300)
    assert problem is not None and "must fit in queue_entries 256" in problem
    assert app.config["iommu"]["params"]["batch"] == 16  # nothing changed


def test_the_plugins_table_shows_the_version_the_classes_declare(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "twice.py").write_text(
        "from explorer.api import FreeStrategy, hookimpl\n"
        "__version__ = '9.9'\n"
        "class T(FreeStrategy):\n"
        "    name = 'test-twice'\n"
        "    version = '2.0'\n"
        "    def pagetable_free_kernel(self, k, pt):\n"
        "        k.free_now(pt)\n"
        "@hookimpl\n"
        "def register_strategies(register):\n"
        "    register(T)\n")
    assert main(["--plugins-dir", str(tmp_path), "plugins"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.strip().startswith("twice"))
    assert line.split()[:3] == ["twice", "directory", "2.0"]


def test_an_unknown_strategy_says_where_plugins_come_from(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--set", "strategy.name=delayd"]) == 2
    err = capsys.readouterr().err
    assert "unknown strategy 'delayd'" in err
    assert "plugins come from --plugins-dir DIR" in err and "installed packages" in err
    assert "`pgtable-explorer plugins`" in err


@pytest.mark.functional  # a CLI sweep: its workers are processes
def test_sweep_summaries_and_plot_legends_show_values_in_their_units(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sw.csv"
    assert main(["sweep", "--set", "strategy.name=batched", "--grid", "strategy.params.max_age=100us,2ms",
                 "--seeds", "1", "--duration", "2ms", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "strategy.params.max_age=100us" in text and "100000" not in text
    rows = [line.split() for line in text.splitlines() if line.strip().startswith(("100us", "2ms"))]
    assert [r[0] for r in rows] == ["100us", "2ms"]

    pytest.importorskip("matplotlib", reason="plots need the optional extra")
    from explorer.sweep.plot import plot_results
    from explorer.sweep.points import value_shower

    records = [{"point_id": f"{d}{s}", "status": "ok", "kernel.workqueue_delay": d, "kernel.cpus": c, "seed": s,
                "flushes": d / 1000 + s} for d in (10_000, 1_000_000) for c in (4, 8) for s in (1, 2)]
    reg = kit_registry()
    show = value_shower(records, make_config(reg, "deferred"), reg)
    svg = tmp_path / "p.svg"
    plot_results(records, ["flushes"], "kernel.cpus", svg, hue="kernel.workqueue_delay", show=show)
    drawn = svg.read_text()
    assert "kernel.workqueue_delay=10us" in drawn and "kernel.workqueue_delay=1ms" in drawn
    assert "kernel.workqueue_delay=10000" not in drawn


class Timers(FreeStrategy):
    """Arms a long timer and cancels it at once, then frees from a short one."""

    name = "test-timers"
    version = "1.0"
    help = "timers"

    def pagetable_free_kernel(self, k: Any, pt: Any) -> None:
        k.start_timer(1_000_000, lambda k2: None).cancel()
        k.start_timer(10_000, lambda k2: k2.free_now(pt))


def test_the_trace_records_timers_armed_fired_and_cancelled_in_nanoseconds() -> None:
    reg = kit_registry(Timers)
    sim = build_simulation(make_config(reg, "test-timers", duration="1ms", iommu="none"), reg)
    records: list[Any] = []
    sim.kernel.tracer = records
    sim.run()
    timers = [(t, what, f) for t, what, f in records if what.startswith("timer_")]
    assert timers, "no timer in the trace"
    starts = {f["timer"]: (t, f) for t, what, f in timers if what == "timer_start"}
    fired = [(t, f["timer"]) for t, what, f in timers if what == "timer_fire"]
    cancelled = [(t, f) for t, what, f in timers if what == "timer_cancel"]
    assert len(starts) == 2 * len(cancelled) == 2 * len(fired)
    for t, f in cancelled:  # cancelled right after it was armed: all of its delay remains
        assert starts[f["timer"]][1]["delay_ns"] == f["remaining_ns"] == 1_000_000 and starts[f["timer"]][0] == t
    for t, n in fired:  # each fires exactly its delay after it was armed
        t0, f = starts[n]
        assert f["delay_ns"] == 10_000 and t == t0 + 10_000
    assert {f["source"] for _, _, f in timers} <= {"vmalloc-huge", "cpa-collapse", "hot-remove"}
