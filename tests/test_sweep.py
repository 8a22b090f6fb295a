"""Sweeps: expansion of grids and ranges, the results files, resume, failures, executors, summaries.

Runs are 5 ms of simulated time and sweeps have a handful of points, so the whole file takes a few
seconds (most of it starting worker processes and, when Dask is installed, one LocalCluster).
Nothing waits on a timer: a test that needs something to happen mid-sweep does it from the
sweep's own per-point callback.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from explorer.config import apply_overrides, default_config
from explorer.plugins import Registry, load_registry
from explorer.sim.build import build_simulation
from explorer.sweep import (
    Executor,
    LocalExecutor,
    Outcome,
    PointResult,
    Sweep,
    SweepError,
    flatten_metrics,
    parse_grid,
    parse_range,
    plan_sweep,
    range_values,
    read_results,
    summarize,
)
from explorer.sweep.points import param_for_key
from explorer.sweep.results import ResultsFiles, jsonl_path, read_csv, read_jsonl
from explorer.sweep.summary import best, stat, summary_json, t975, write_summary_csv
from tests.conftest import SHORT, hanging_strategy_source, raising_strategy_source, strategy_source

RAISING = raising_strategy_source("sweep-boom", "SweepBoom")

DYING = strategy_source("sweep-dies", "SweepDies", "os.kill(os.getpid(), signal.SIGKILL)",
                        help="Kills the process it runs in on the first kernel table.",
                        imports="import os\nimport signal")

HANGING = hanging_strategy_source("sweep-hangs", "SweepHangs")


def base_config(registry: Registry, *overrides: str) -> dict[str, Any]:
    return apply_overrides(default_config(registry), [*SHORT, *overrides], registry)


def plugin_registry(tmp_path: Path, name: str, text: str) -> Registry:
    d = tmp_path / "plugins"
    d.mkdir(exist_ok=True)
    (d / f"{name}.py").write_text(text)
    reg = load_registry(plugins_dirs=[d], entry_points=False)
    assert not reg.failures, reg.failures
    return reg


def metrics_rows(path: Path) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "config"} for r in read_jsonl(jsonl_path(path))]


# --------------------------------------------------------------------------- expansion


def test_grid_values_are_split_as_documented() -> None:
    a = parse_grid("strategy.params.batch=16, 64,256")
    assert (a.key, a.values) == ("strategy.params.batch", ("16", "64", "256"))
    assert parse_grid('workload.vmalloc-huge.cpus="0-1","2,3"').values == ('"0-1"', '"2,3"')
    for bad in ("no-equals", "k=", "k=1,,2", "k=1,1"):
        with pytest.raises(SweepError):
            parse_grid(bad)


def test_range_values_linear_and_log() -> None:
    assert range_values(1, 1000, 4, "log", integer=True) == [1, 10, 100, 1000]
    assert range_values(1, 8, 8, "log", integer=True) == [1, 2, 3, 4, 6, 8]  # rounded, repeats dropped
    assert range_values(0, 1, 5) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert range_values(0, 1, 11)[3] == 0.3  # not 0.30000000000000004
    assert range_values(10, 40, 4, integer=True) == [10, 20, 30, 40]
    assert range_values(5, 5, 1) == [5.0]
    with pytest.raises(ValueError):
        range_values(0, 10, 3, "log")


def test_range_reads_units_from_the_parameter(registry: Registry) -> None:
    base = base_config(registry)
    delay = param_for_key("kernel.workqueue_delay", base, registry)
    a = parse_range("kernel.workqueue_delay=1us:1ms:4:log", delay)
    assert a.values == ("1000", "10000", "100000", "1000000")  # nanoseconds
    rate = param_for_key("iommu.probe_rate", base, registry)
    assert parse_range("iommu.probe_rate=1000/s:3000/s:3", rate).values == ("1000.0", "2000.0", "3000.0")
    cpus = param_for_key("kernel.cpus", base, registry)
    assert parse_range("kernel.cpus=1:8:8:log", cpus).values == ("1", "2", "3", "4", "6", "8")
    arch = param_for_key("kernel.arch", base, registry)
    with pytest.raises(SweepError, match="range needs a number"):
        parse_range("kernel.arch=1:2:2", arch)
    for bad in ("kernel.cpus=1:8", "kernel.cpus=1:8:0", "kernel.cpus=1:8:x", "kernel.cpus=1:8:3:cubic"):
        with pytest.raises(SweepError):
            parse_range(bad, cpus)


def test_points_are_the_product_with_seeds_fastest(registry: Registry) -> None:
    base = base_config(registry, "strategy.name=batched", "run.seed=7")
    plan = plan_sweep(base, registry, [("grid", "strategy.params.batch=16,64"),
                                       ("range", "iommu.sva_mms=1:100:3:log")], seeds=2)
    assert plan.keys == ["strategy.params.batch", "iommu.sva_mms"]
    got = [(p.params["strategy.params.batch"], p.params["iommu.sva_mms"], p.seed) for p in plan.points]
    assert got == [(b, m, s) for b in (16, 64) for m in (1, 10, 100) for s in (7, 8)]
    assert [p.index for p in plan.points] == list(range(12))
    p = plan.points[5]
    assert p.config["strategy"]["params"]["batch"] == 16 and p.config["iommu"]["sva_mms"] == 100
    assert p.config["run"]["seed"] == 8
    assert p.config == apply_overrides(base, [*p.overrides(), "run.seed=8"], registry)  # a plain config
    assert len({p.id for p in plan.points}) == 12
    assert p.label() == "strategy.params.batch=16 iommu.sva_mms=100 seed=8"


def test_points_of_a_run_axis_are_checked_alone_and_own_their_configs(registry: Registry) -> None:
    base = base_config(registry, "strategy.name=batched")
    plan = plan_sweep(base, registry, [("grid", "run.seed=3,4"), ("grid", "run.duration=1ms,2ms")])
    for p in plan.points:  # what a whole validation of each point gives
        assert p.config == apply_overrides(base, list(p.overrides()), registry)
    plan.points[0].config["run"]["drain"] = 1
    plan.points[0].config["strategy"]["params"]["batch"] = 1
    assert all(p.config["run"]["drain"] == base["run"]["drain"] for p in plan.points[1:])
    assert all(p.config["strategy"]["params"] == base["strategy"]["params"] for p in plan.points[1:])
    seeds = plan_sweep(base, registry, [("grid", "run.duration=1ms,2ms")], seeds=3)
    assert [p.seed for p in seeds.points] == [base["run"]["seed"] + i for i in range(3)] * 2
    seeds.points[2].config["run"]["drain"] = 1  # the last seed of a point holds the config itself
    assert [p.config["run"]["drain"] for p in seeds.points] == [base["run"]["drain"]] * 2 + [1] + [
        base["run"]["drain"]] * 3
    with pytest.raises(SweepError, match=r"run\.duration.*is not a valid config"):
        plan_sweep(base, registry, [("grid", "run.duration=1ms,-5ms")])


def test_an_invalid_base_is_refused_before_any_point(registry: Registry) -> None:
    base = base_config(registry, "strategy.name=batched")
    base["strategy"]["params"]["batch"] = 0  # changed after validation: the sweep checks it again
    with pytest.raises(SweepError, match=r"base config is not valid:\n.*strategy\.params\.batch"):
        plan_sweep(base, registry, [("grid", "run.seed=3,4")])


def test_grid_values_are_read_like_set(registry: Registry) -> None:
    plan = plan_sweep(base_config(registry), registry,
                      [("grid", "kernel.workqueue_delay=20us,1ms"), ("grid", "workload.vmalloc-huge.rate=1000/s")])
    assert [p.params["kernel.workqueue_delay"] for p in plan.points] == [20_000, 1_000_000]
    assert [p.params["workload.vmalloc-huge.rate"] for p in plan.points] == [1000.0, 1000.0]


def test_a_second_source_of_one_name_is_swept_by_its_label(registry: Registry) -> None:
    base = base_config(registry)
    base["workload"] = [*base["workload"], {**base["workload"][0], "rate": 7.0}]  # vmalloc-huge twice
    assert base["workload"][0]["name"] == base["workload"][-1]["name"] == "vmalloc-huge"
    last = len(base["workload"]) - 1
    plan = plan_sweep(base, registry, [("range", "workload.vmalloc-huge#1.rate=10/s:30/s:3")])
    assert [p.params["workload.vmalloc-huge#1.rate"] for p in plan.points] == [10.0, 20.0, 30.0]
    for p in plan.points:  # only the second instance moves
        assert p.config["workload"][last]["rate"] == p.params["workload.vmalloc-huge#1.rate"]
        assert p.config["workload"][0]["rate"] == base["workload"][0]["rate"]


def test_sample_is_a_fixed_random_subset_in_order(registry: Registry) -> None:
    base = base_config(registry, "strategy.name=batched")
    axes = [("grid", "strategy.params.batch=1,2,4,8,16"), ("grid", "iommu.sva_mms=1,2,4,8")]
    full = plan_sweep(base, registry, axes)
    a = plan_sweep(base, registry, axes, sample=6, seeds=2)
    b = plan_sweep(base, registry, axes, sample=6, seeds=2)
    c = plan_sweep(base, registry, axes, sample=6, seeds=2, sample_seed=1)
    assert full.combinations == 20 and len(a.points) == 12
    assert [p.id for p in a.points] == [p.id for p in b.points]
    assert [p.id for p in a.points] != [p.id for p in c.points]
    combos = [(p.params["strategy.params.batch"], p.params["iommu.sva_mms"]) for p in a.points[::2]]
    order = [(p.params["strategy.params.batch"], p.params["iommu.sva_mms"]) for p in full.points]
    assert combos == sorted(combos, key=order.index)  # in sweep order, each with both seeds
    assert len(plan_sweep(base, registry, axes, sample=100).points) == 20


def test_plugin_params_apply_only_to_plugins_that_declare_them(registry: Registry) -> None:
    plan = plan_sweep(base_config(registry), registry,
                      [("grid", "strategy.name=deferred,batched"), ("grid", "strategy.params.batch=64,256")])
    got = [(p.params["strategy.name"], p.params["strategy.params.batch"]) for p in plan.points]
    assert got == [("deferred", None), ("batched", 64), ("batched", 256)]
    assert plan.notes  # the duplicate deferred point was dropped, and said so


def test_a_bad_point_is_named(registry: Registry) -> None:
    with pytest.raises(SweepError, match=r"kernel\.cpus=0"):
        plan_sweep(base_config(registry), registry, [("grid", "kernel.cpus=4,0")])
    with pytest.raises(SweepError, match="already swept"):
        plan_sweep(base_config(registry), registry, [("grid", "kernel.cpus=1,2"), ("range", "kernel.cpus=1:4:2")])
    with pytest.raises(SweepError, match="--seeds"):
        plan_sweep(base_config(registry), registry, [("grid", "run.seed=1,2")], seeds=3)


# --------------------------------------------------------------------------- running


def test_a_sweep_point_gives_the_numbers_of_run(registry: Registry, tmp_path: Path) -> None:
    base = base_config(registry, "strategy.name=batched")
    plan = plan_sweep(base, registry, [("grid", "strategy.params.batch=4,32")], seeds=2)
    seen: list[PointResult] = []
    report = Sweep(plan, registry, LocalExecutor(2), out=tmp_path / "r.csv").run(on_result=seen.append)
    assert (report.ok, report.failed, report.stopped) == (4, 0, False)
    assert sorted(r.point.index for r in seen) == [0, 1, 2, 3]
    for r in seen:
        direct = build_simulation(r.point.config, registry).run()
        assert r.metrics == direct  # every metric, series included, bit for bit
        assert {k: r.record[k] for k in flatten_metrics(direct)} == flatten_metrics(direct)
    rows = metrics_rows(tmp_path / "r.csv")
    assert [r["point"] for r in rows] == [0, 1, 2, 3]  # rewritten in point order at the end
    assert rows[0]["strategy.params.batch"] == 4 and rows[0]["seed"] == 1 and rows[1]["seed"] == 2
    assert rows[0]["status"] == "ok" and rows[0]["error"] is None and rows[0]["attempts"] == 1
    csv_rows = read_csv(tmp_path / "r.csv")
    assert csv_rows == [{k: r.get(k) for k in csv_rows[0]} for r in rows]
    assert "series.queue_depth.bin_ns" not in csv_rows[0] and "queue.peak" in csv_rows[0]
    jl = read_jsonl(jsonl_path(tmp_path / "r.csv"))
    assert jl[3]["config"] == plan.points[3].config  # any point can be run again from the file


def test_existing_results_are_never_silently_replaced(registry: Registry, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    out.write_text("point\n")
    plan = plan_sweep(base_config(registry), registry, [])
    with pytest.raises(SweepError, match="--resume"):
        Sweep(plan, registry, LocalExecutor(1), out=out).run()
    assert out.read_text() == "point\n"


def test_resume_skips_finished_points(registry: Registry, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    base = base_config(registry, "strategy.name=batched")
    first = plan_sweep(base, registry, [("grid", "strategy.params.batch=4,32")])
    Sweep(first, registry, LocalExecutor(2), out=out).run()
    before = metrics_rows(out)

    # Extend the grid; also stop half-way through, then resume again.
    wider = plan_sweep(base, registry, [("grid", "strategy.params.batch=2,4,8,32")])
    sweep = Sweep(wider, registry, LocalExecutor(1), out=out, resume=True)
    results: list[PointResult] = []

    def stop_after_first_new(r: PointResult) -> None:
        results.append(r)
        if not r.resumed:
            sweep.stop()

    report = sweep.run(on_result=stop_after_first_new)
    assert report.stopped
    resumed = [r.point.params["strategy.params.batch"] for r in results if r.resumed]
    assert resumed == [4, 32]
    new = [r for r in results if not r.resumed]
    assert len(new) == 1

    final: list[PointResult] = []
    report = Sweep(wider, registry, LocalExecutor(2), out=out, resume=True).run(on_result=final.append)
    assert not report.stopped and report.skipped == 3 and report.ok == 1
    assert sorted(r.point.params["strategy.params.batch"] for r in final if not r.resumed) == sorted(
        {2, 8} - {new[0].point.params["strategy.params.batch"]})
    rows = metrics_rows(out)
    assert [r["strategy.params.batch"] for r in rows] == [2, 4, 8, 32] and [r["point"] for r in rows] == [0, 1, 2, 3]
    old = {r["strategy.params.batch"]: r for r in before}
    for r in rows:
        if r["strategy.params.batch"] in old:  # carried over unchanged but for its new number
            assert {k: v for k, v in r.items() if k != "point"} == {
                k: v for k, v in old[r["strategy.params.batch"]].items() if k != "point"}


def test_a_point_whose_plugin_raises_is_recorded_and_the_sweep_completes(tmp_path: Path) -> None:
    reg = plugin_registry(tmp_path, "boom", RAISING)
    plan = plan_sweep(base_config(reg), reg, [("grid", "strategy.name=deferred,sweep-boom,batched")], seeds=2)
    results: list[PointResult] = []
    report = Sweep(plan, reg, LocalExecutor(2), out=tmp_path / "r.csv").run(on_result=results.append)
    assert (report.ok, report.failed, report.stopped) == (4, 2, False)
    rows = metrics_rows(tmp_path / "r.csv")
    assert [r["status"] for r in rows] == ["ok", "ok", "failed", "failed", "ok", "ok"]
    for r in rows[2:4]:
        assert r["attempts"] == 2  # retried once
        assert "sweep-boom" in r["error"] and "boom on purpose" in r["error"]
        assert "queue.peak" not in r
        assert "RuntimeError: boom on purpose" in r["traceback"]
    failed = [r for r in results if not r.ok]
    assert all(r.attempts == 2 for r in failed)


class _FlakyExecutor(Executor):
    """Two in-process "workers"; every point fails on its first attempt. Records where each ran."""

    def __init__(self) -> None:
        self.busy: dict[str, dict[str, Any]] = {}
        self.ran: list[tuple[int, int, str]] = []  # (point, attempt, worker)

    def workers(self) -> list[str]:
        return ["w0", "w1"]

    def free_slots(self) -> list[str | None]:
        return [w for w in self.workers() if w not in self.busy]

    def submit(self, task: dict[str, Any], slot: str | None) -> None:
        assert slot is not None
        self.busy[slot] = task
        self.ran.append((task["index"], task["attempt"], slot))

    def running(self) -> int:
        return len(self.busy)

    def poll(self, timeout: float) -> list[Outcome]:
        out = []
        for w, task in sorted(self.busy.items()):
            if task["attempt"] == 1:
                out.append(Outcome(task, "failed", None, "RuntimeError: flaky", None, w))
            else:
                out.append(Outcome(task, "ok", {"flushes": 1}, None, None, w))
        self.busy.clear()
        return out


def test_a_failed_point_is_retried_once_on_another_worker(registry: Registry) -> None:
    plan = plan_sweep(base_config(registry), registry, [("grid", "kernel.cpus=1,2,3,4,5")])
    ex = _FlakyExecutor()
    report = Sweep(plan, registry, ex, out=None).run()
    assert (report.ok, report.failed) == (5, 0)
    first = {p: w for p, a, w in ex.ran if a == 1}
    second = {p: w for p, a, w in ex.ran if a == 2}
    assert sorted(first) == sorted(second) == [0, 1, 2, 3, 4]
    assert all(first[p] != second[p] for p in first)  # never the same worker twice
    assert all(r["attempts"] == 2 and r["flushes"] == 1 for r in report.records)


def test_plugins_reach_workers_as_files_not_paths(tmp_path: Path) -> None:
    reg = plugin_registry(tmp_path, "boom", RAISING)
    plan = plan_sweep(base_config(reg), reg, [("grid", "strategy.name=sweep-boom")])
    sweep = Sweep(plan, reg, LocalExecutor(1), out=None)
    assert sweep.bundle["dirs"][0]["files"] == {"boom.py": RAISING}
    json.dumps(sweep.bundle)  # plain data
    (tmp_path / "plugins" / "boom.py").unlink()  # the worker never reads the original folder
    report = sweep.run()
    assert report.failed == 1 and "boom on purpose" in report.records[0]["error"]


def test_a_point_that_kills_its_worker_is_recorded(tmp_path: Path) -> None:
    reg = plugin_registry(tmp_path, "dies", DYING)
    plan = plan_sweep(base_config(reg), reg, [("grid", "strategy.name=deferred,sweep-dies,batched")])
    report = Sweep(plan, reg, LocalExecutor(2), out=tmp_path / "r.csv").run()
    rows = metrics_rows(tmp_path / "r.csv")
    assert [r["status"] for r in rows] == ["ok", "failed", "ok"]
    assert rows[1]["attempts"] == 2 and "worker died" in rows[1]["error"] and "SIGKILL" in rows[1]["error"]
    assert report.ok == 2


def test_a_worker_killed_mid_sweep_loses_no_finished_point(registry: Registry, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    base = base_config(registry, "strategy.name=batched")
    plan = plan_sweep(base, registry, [("grid", "strategy.params.batch=1,2,4,8,16,32")])
    executor = LocalExecutor(2)
    finished_before_kill: list[dict[str, Any]] = []
    killed: list[int] = []

    def kill_one(r: PointResult) -> None:
        if killed:
            return
        # the row is already in the file when the point is reported
        on_disk = {row["point_id"] for row in read_jsonl(jsonl_path(out))}
        assert r.point.id in on_disk
        finished_before_kill.append(r.record)
        busy = executor.busy_pids()
        pid = next(iter(busy)) if busy else executor.slots[0].pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    report = Sweep(plan, registry, executor, out=out).run(on_result=kill_one)
    assert killed
    assert (report.ok, report.failed) == (6, 0)  # the point that was running is retried elsewhere
    rows = metrics_rows(out)
    assert [r["point"] for r in rows] == list(range(6)) and all(r["status"] == "ok" for r in rows)
    by_id = {r["point_id"]: r for r in rows}
    for rec in finished_before_kill:
        assert by_id[rec["point_id"]] == {k: v for k, v in rec.items() if k != "config"}


def test_a_point_that_hangs_times_out_and_the_sweep_completes(tmp_path: Path) -> None:
    reg = plugin_registry(tmp_path, "hangs", HANGING)
    plan = plan_sweep(base_config(reg), reg, [("grid", "strategy.name=deferred,sweep-hangs")])
    executor = LocalExecutor(2)
    results: list[PointResult] = []
    report = Sweep(plan, reg, executor, out=tmp_path / "r.csv", timeout=2).run(on_result=results.append)
    assert (report.ok, report.failed, report.stopped) == (1, 1, False)
    rows = metrics_rows(tmp_path / "r.csv")
    assert [r["status"] for r in rows] == ["ok", "failed"]
    assert rows[0]["attempts"] == 1 and "queue.peak" in rows[0]
    assert rows[1]["attempts"] == 2 and rows[1]["error"] == "timed out after 2s"  # both attempts timed out
    hung = next(r for r in results if not r.ok)
    assert hung.wall_s >= 2 and hung.worker in executor.workers()
    assert all(s.pool is None and s.future is None for s in executor.slots)  # every worker stopped


def test_timeout_is_parsed_and_checked(capsys: pytest.CaptureFixture[str], registry: Registry) -> None:
    from explorer.units import UnitError, parse_seconds

    assert [parse_seconds(v) for v in ("60s", "2m", "90", "1.5", "500ms", "1h", 3)] == [60, 120, 90, 1.5, 0.5, 3600, 3]
    with pytest.raises(UnitError):
        parse_seconds("soon")
    plan = plan_sweep(base_config(registry), registry, [("grid", "kernel.cpus=1,2")])
    for bad in (0, -1, float("inf")):
        with pytest.raises(SweepError, match="timeout"):
            Sweep(plan, registry, LocalExecutor(1), out=None, timeout=bad)
    assert "timeout" not in Sweep(plan, registry, LocalExecutor(1), out=None)._task(plan.points[0])
    for bad in ("soon", "0s"):
        rc, _, err = sweep_cli(capsys, "--grid", "kernel.cpus=1,2", "--timeout", bad, "--dry-run")
        assert rc == 2 and "--timeout" in err


def test_local_and_dask_give_identical_results_files(registry: Registry, tmp_path: Path) -> None:
    pytest.importorskip("distributed", reason="Dask is an optional extra: pip install 'pgtable-explorer[dask]'")
    from explorer.sweep import DaskExecutor

    base = base_config(registry, "strategy.name=batched")
    plan = plan_sweep(base, registry, [("grid", "strategy.params.batch=4,32"),
                                       ("grid", "iommu.model=generic,amd-vi")], seeds=2)
    Sweep(plan, registry, LocalExecutor(2), out=tmp_path / "local.csv").run()
    report = Sweep(plan, registry, DaskExecutor(local_workers=2), out=tmp_path / "dask.csv").run()
    assert (report.ok, report.failed) == (8, 0)
    # cell by cell first, so that a difference names its point and column
    local, dask = (list(csv.DictReader(io.StringIO((tmp_path / f"{n}.csv").read_text()))) for n in ("local", "dask"))
    assert [(r["point"], k, v, d.get(k)) for r, d in zip(local, dask, strict=True) for k, v in r.items()
            if v != d.get(k)] == []
    assert (tmp_path / "local.csv").read_bytes() == (tmp_path / "dask.csv").read_bytes()
    assert (tmp_path / "local.jsonl").read_bytes() == (tmp_path / "dask.jsonl").read_bytes()


def test_on_dask_a_point_that_kills_its_worker_is_recorded_and_the_sweep_completes(tmp_path: Path) -> None:
    pytest.importorskip("distributed", reason="Dask is an optional extra: pip install 'pgtable-explorer[dask]'")
    from explorer.sweep import DaskExecutor

    reg = plugin_registry(tmp_path, "dies", DYING)
    plan = plan_sweep(base_config(reg), reg, [("grid", "strategy.name=deferred,sweep-dies,batched")])
    report = Sweep(plan, reg, DaskExecutor(local_workers=2), out=tmp_path / "r.csv").run()
    rows = metrics_rows(tmp_path / "r.csv")
    assert [r["status"] for r in rows] == ["ok", "failed", "ok"]
    assert rows[1]["attempts"] == 2 and "worker died" in rows[1]["error"]
    assert (report.ok, report.failed, report.stopped) == (2, 1, False)


def test_without_dask_the_message_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from explorer.sweep import DaskExecutor

    real_import = builtins.__import__

    def no_distributed(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "distributed" or name.startswith("distributed."):
            raise ImportError("No module named 'distributed'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_distributed)
    with pytest.raises(SweepError, match=r"pip install 'pgtable-explorer\[dask\]'"):
        DaskExecutor(local_workers=1)


# --------------------------------------------------------------------------- files and summaries


def test_results_files_survive_a_torn_line_and_new_columns(tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    files = ResultsFiles(out)
    assert files.open() == []
    files.append({"point": 0, "point_id": "a", "status": "ok", "seed": 1, "x": 1.5, "flag": True})
    files.append({"point": 1, "point_id": "b", "status": "ok", "seed": 1, "x": 2.5, "y": 7, "config": {"k": 1}})
    files.close()
    assert out.read_text().splitlines()[0] == "point,point_id,status,seed,x,flag,y"
    with open(jsonl_path(out), "a") as f:
        f.write('{"point": 2, "point_id": "c", "sta')  # a crash in mid-write
    rows = read_results(out)
    assert [r["point_id"] for r in rows] == ["a", "b"]
    assert rows[1]["config"] == {"k": 1}
    assert read_csv(out)[0] == {"point": 0, "point_id": "a", "status": "ok", "seed": 1, "x": 1.5, "flag": True,
                                "y": None}


def test_confidence_intervals_and_best_points() -> None:
    assert t975(1) == 12.706 and t975(4) == 2.776 and abs(t975(1000) - 1.962) < 1e-3
    s = stat([1.0, 2.0, 3.0, 4.0, 5.0])
    assert s.mean == 3.0 and abs(s.sd - 1.5811388) < 1e-6
    assert abs(s.ci95 - 2.776 * 1.5811388 / 5**0.5) < 1e-6
    assert stat([4.0]).ci95 is None
    records = [
        {"point_id": str(i), "status": "ok" if i != 5 else "failed", "strategy.params.batch": b, "seed": s,
         "flushes": b * 10 + s, "queue.peak": 100 // b + s}
        for i, (b, s) in enumerate((b, s) for b in (1, 4, 16) for s in (1, 2))
    ]
    rows = summarize(records)
    assert [r.params for r in rows] == [{"strategy.params.batch": b} for b in (1, 4, 16)]
    assert [(r.ok, r.failed) for r in rows] == [(2, 0), (2, 0), (1, 1)]
    assert rows[0].stats["flushes"].mean == 11.5 and rows[2].stats["flushes"].n == 1
    assert best(rows, "flushes").params == {"strategy.params.batch": 1}
    assert best(rows, "queue.peak").params == {"strategy.params.batch": 16}
    assert best(rows, "flushes", maximize=True).params == {"strategy.params.batch": 16}


def test_an_unsafe_point_is_never_best_and_says_why(tmp_path: Path) -> None:
    # batch=1 has the fewest flushes only because it never flushes in seed 2: a violation there.
    records = [
        {"point_id": f"{b}{s}", "status": "ok", "strategy.params.batch": b, "seed": s, "flushes": b * 10 + s,
         "violations.unflushed_free.total": 3 if (b, s) == (1, 2) else 0,
         "violations.leaked.total": 0, "violations.unflushed_free.by_source.vmalloc-huge": 3}
        for b in (1, 4, 16) for s in (1, 2)
    ]
    rows = summarize(records)
    assert [r.safe for r in rows] == [False, True, True]
    assert rows[0].unsafe_reasons() == ["unflushed_free in 1/2 seeds"]
    assert best(rows, "flushes").params == {"strategy.params.batch": 4}
    doc = summary_json(rows, ["flushes"])
    assert [p["safe"] for p in doc["points"]] == [False, True, True]
    assert doc["best"]["flushes"]["params"] == {"strategy.params.batch": 4}
    write_summary_csv(rows, tmp_path / "s.csv", ["flushes"])
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines[0].startswith("strategy.params.batch,seeds,ok,failed,safe,unsafe_reasons,flushes.mean")
    assert lines[1].startswith("1,2,2,0,false,unflushed_free in 1/2 seeds,") and lines[2].startswith("4,2,2,0,true,,")
    if importlib.util.find_spec("matplotlib") is not None:
        from explorer.sweep.plot import plot_results

        notes = plot_results(records, ["flushes"], "strategy.params.batch", tmp_path / "p.svg")
        assert notes == ["red crosses mark unsafe points (a violation in some seed)"]
        assert "unsafe (a violation)" in (tmp_path / "p.svg").read_text()


def test_plot_draws_a_metric_against_a_key(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="plots need the optional extra: pip install 'pgtable-explorer[plot]'")
    from explorer.sweep.plot import plot_results

    records = [
        {"point_id": f"{b}{m}{s}", "status": "ok", "strategy.params.batch": b, "iommu.model": m, "seed": s,
         "flushes": 1000 / b + s, "queue.peak": b + s}
        for b in (1, 10, 100) for m in ("generic", "amd-vi") for s in (1, 2)
    ]
    out = tmp_path / "p.svg"
    notes = plot_results(records, ["flushes", "queue.peak"], "strategy.params.batch", out, hue="iommu.model")
    assert notes == []
    text = out.read_text()
    assert "<svg" in text and "iommu.model=amd-vi" in text
    plot_results(records, ["flushes", "queue.peak"], "strategy.params.batch", tmp_path / "again.svg",
                 hue="iommu.model")
    assert (tmp_path / "again.svg").read_text() == text  # the same results draw the same file
    with pytest.raises(SweepError, match="did you mean"):
        plot_results(records, ["flushs"], "strategy.params.batch", out)
    with pytest.raises(SweepError, match="not a swept key"):
        plot_results(records, ["flushes"], "kernel.cpus", out)


# --------------------------------------------------------------------------- the command line


def sweep_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    from explorer.cli import main

    rc = main(["sweep", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.functional  # a CLI sweep: its workers are processes
def test_cli_sweep_gives_the_numbers_of_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from explorer.cli import main

    out = tmp_path / "b.csv"
    base = ["--set", "strategy.name=batched", "--duration", "5ms"]
    rc, stdout, err = sweep_cli(capsys, *base, "--grid", "strategy.params.batch=4,32", "--seeds", "2",
                                "--workers", "2", "--no-progress", "--out", str(out))
    assert rc == 0, err
    assert "4 points" in err and "4 ok, 0 failed" in stdout
    assert "best point per metric" in stdout and "strategy.params.batch" in stdout
    assert (tmp_path / "b.summary.csv").read_text().startswith("strategy.params.batch,seeds,ok,failed,")
    row = next(r for r in metrics_rows(out) if r["strategy.params.batch"] == 32 and r["seed"] == 2)

    assert main(["run", *base, "--set", "strategy.params.batch=32", "--seed", "2", "--format", "json"]) == 0
    ran = json.loads(capsys.readouterr().out)["metrics"]
    assert {k: row[k] for k in flatten_metrics(ran)} == flatten_metrics(ran)

    rc, _, err = sweep_cli(capsys, *base, "--grid", "strategy.params.batch=4,32", "--out", str(out))
    assert rc == 2 and "--resume" in err
    rc, stdout, _ = sweep_cli(capsys, *base, "--grid", "strategy.params.batch=4,32", "--seeds", "2",
                              "--workers", "1", "--no-progress", "--out", str(out), "--resume")
    assert rc == 0 and "4 already done" in stdout

    rc, stdout, _ = sweep_cli(capsys, "--summary", "--json", "--metric", "flushes", "--out", str(out))
    doc = json.loads(stdout)
    assert rc == 0 and doc["best"]["flushes"]["params"] == {"strategy.params.batch": 32}
    assert [p["seeds"] for p in doc["points"]] == [[1, 2], [1, 2]]


def test_cli_dry_run_lists_the_points(capsys: pytest.CaptureFixture[str]) -> None:
    rc, stdout, _ = sweep_cli(capsys, "--duration", "5ms", "--set", "strategy.name=batched", "--range",
                              "strategy.params.batch=1:100:3:log", "--grid", "iommu.model=generic,amd-vi",
                              "--seeds", "2", "--dry-run", "--json")
    assert rc == 0
    points = [json.loads(line) for line in stdout.splitlines()]
    assert len(points) == 12
    assert points[0]["params"] == {"strategy.params.batch": 1, "iommu.model": "generic"}
    assert points[-1]["overrides"] == ["strategy.params.batch=100", "iommu.model=amd-vi"]
    assert [p["seed"] for p in points[:2]] == [1, 2]
    rc, _, err = sweep_cli(capsys, "--grid", "kernel.cpus=0", "--dry-run")
    assert rc == 2 and "kernel.cpus=0" in err


@pytest.mark.functional  # a CLI sweep: its workers are processes
def test_cli_failed_points_give_status_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "boom.py").write_text(RAISING)
    rc, stdout, err = sweep_cli(capsys, "--plugins-dir", str(tmp_path / "plugins"), "--duration", "5ms",
                                "--grid", "strategy.name=deferred,sweep-boom", "--workers", "2", "--no-progress",
                                "--out", str(tmp_path / "r.csv"))
    assert rc == 1, err
    assert "1 ok, 1 failed" in stdout and "boom on purpose" in err


@pytest.mark.functional  # a CLI sweep: its workers are processes
def test_cli_plots_the_results(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="plots need the optional extra: pip install 'pgtable-explorer[plot]'")
    out = tmp_path / "r.csv"
    rc, _, err = sweep_cli(capsys, "--duration", "5ms", "--set", "strategy.name=batched",
                           "--grid", "strategy.params.batch=1,16", "--workers", "2", "--no-progress",
                           "--out", str(out), "--plot", "flushes", "--x", "strategy.params.batch",
                           str(tmp_path / "during.svg"))
    assert rc == 0, err
    assert (tmp_path / "during.svg").exists()
    rc, _, err = sweep_cli(capsys, "--plot", "flushes,queue.peak", "--x", "strategy.params.batch",
                           "--out", str(out), str(tmp_path / "after.png"))
    assert rc == 0, err
    assert (tmp_path / "after.png").read_bytes()[:4] == b"\x89PNG"
    rc, _, err = sweep_cli(capsys, "--plot", "flushes", "--out", str(out), str(tmp_path / "x.png"))
    assert rc == 2 and "--x" in err
    rc, _, err = sweep_cli(capsys, "--plot", "flushes", "--x", "strategy.params.batch", "--out",
                           str(tmp_path / "none.csv"), str(tmp_path / "x.png"))
    assert rc == 2 and "no results file" in err


def test_progress_bar_shows_done_failed_rate_and_time_left() -> None:
    from explorer.sweep import Progress
    from explorer.sweep.progress import render

    p = Progress(total=40, skipped=4, done=10, failed=2, retries=3, started=0.0)
    p.ended = 8.0  # 12 points run in 8 s
    assert p.rate == 1.5 and p.remaining == 24 and p.eta == 16.0
    line = render(p)
    for part in ("16/40 points", "4 resumed", "2 failed", "3 retried", "1.5/s", "took 00:08"):
        assert part in line, line
    assert line.startswith("[##########..............] 16/40 points")
    assert render(p, width=0).startswith("16/40 points  4 resumed")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _drive(bar: Any, clock: _Clock, seconds_per_point: float) -> None:
    """Forty points, one every `seconds_per_point` of `clock`, then the end."""
    from explorer.sweep import Progress

    p = Progress(total=40, started=0.0)
    for done in range(40):
        p.done = done
        bar(p)
        clock.now += seconds_per_point
    p.done, p.ended = 40, 10.0
    bar(p)
    bar.close()


def test_progress_bar_is_drawn_only_on_a_terminal() -> None:
    from explorer.sweep.progress import ProgressBar

    clock, term = _Clock(), _Terminal()
    _drive(ProgressBar(term, interval=0.25, clock=clock), clock, 0.125)  # redrawn in place, every other point
    text = term.getvalue()
    assert text.count("\r") == 21 and text.endswith("\n") and text.count("\n") == 1
    assert text.split("\r")[-1].rstrip() == "[########################] 40/40 points  0 failed  4/s  took 00:10"

    clock, log = _Clock(), io.StringIO()  # not a terminal: a short sweep prints nothing
    _drive(ProgressBar(log, clock=clock), clock, 1.0)
    assert log.getvalue() == ""

    clock, log = _Clock(), io.StringIO()  # a long one: a plain line a minute, and the end
    _drive(ProgressBar(log, clock=clock), clock, 10.0)
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and "#" not in log.getvalue()
    assert [line.split(" points")[0] for line in lines] == [
        "sweep      6/40", "sweep     12/40", "sweep     18/40", "sweep     24/40", "sweep     30/40",
        "sweep     36/40", "sweep     40/40"]
    assert "ETA" in lines[0] and lines[-1].endswith("took 00:10")


@pytest.mark.functional  # a CLI sweep: its workers are processes
def test_cli_sweep_into_a_log_has_no_progress_bar(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, stdout, err = sweep_cli(capsys, "--grid", "kernel.cpus=1,2,3,4", "--duration", "1ms", "--workers", "2",
                                "--out", str(tmp_path / "r.csv"))  # stderr is not a terminal here
    assert rc == 0, err
    assert err.splitlines() == [next(line for line in err.splitlines() if line.startswith("sweep     4 points:"))]
    assert "4 ok, 0 failed" in stdout


# --------------------------------------------------------------------------- bad --out files and folders


NOT_RESULTS = {
    "text": b"hello\n",
    "other CSV": b"a,b,c\n1,2,3\n",
    "not UTF-8": b"\xff\xfe\x00garbage\n",
    "a bad row mid-file": b"point,point_id,status,seed\n0,a,ok,1\n1,b\n2,c,ok,1\n",
}


@pytest.mark.parametrize("content", NOT_RESULTS.values(), ids=NOT_RESULTS.keys())
def test_resume_refuses_a_csv_that_is_not_results(capsys: pytest.CaptureFixture[str], registry: Registry,
                                                  tmp_path: Path, content: bytes) -> None:
    out = tmp_path / "x.csv"
    out.write_bytes(content)
    argv = ["--grid", "kernel.cpus=1,2", "--duration", "1ms", "--workers", "1", "--out", str(out)]
    for extra in (["--resume"], []):  # with --resume: not a results file; without: it exists
        rc, stdout, err = sweep_cli(capsys, *argv, *extra)
        assert rc == 2 and "Traceback" not in err and stdout == ""
        assert str(out) in err
        assert ("not a sweep results file" in err) if extra else ("already exists" in err)
        assert out.read_bytes() == content  # nothing written: not the file, nor the others beside it
        assert sorted(p.name for p in tmp_path.iterdir()) == ["x.csv"]
    rc, _, err = sweep_cli(capsys, "--summary", "--out", str(out))  # nor is it read as results
    assert rc == 2 and f"error: {out} is not a sweep results file (" in err and "Traceback" not in err
    plan = plan_sweep(base_config(registry), registry, [])
    with pytest.raises(SweepError, match="not a sweep results file"):
        Sweep(plan, registry, LocalExecutor(1), out=out, resume=True)  # before anything starts
    assert out.read_bytes() == content


NOT_RESULTS_JSONL = {
    "text": b"hello\n",
    "other JSON": b'{"a": 1}\n',
    "not an object": b'[1, 2]\n{"point_id": "x", "status": "ok"}\n',
    "a bad line mid-file": b'{"point_id": "x", "status": "ok"}\n{"point_id": "y", "st\n{}\n',
}


@pytest.mark.parametrize("content", NOT_RESULTS_JSONL.values(), ids=NOT_RESULTS_JSONL.keys())
def test_resume_refuses_a_jsonl_that_is_not_results(capsys: pytest.CaptureFixture[str], registry: Registry,
                                                    tmp_path: Path, content: bytes) -> None:
    out = tmp_path / "r.csv"
    plan = plan_sweep(base_config(registry), registry, [("grid", "kernel.cpus=1,2")])
    Sweep(plan, registry, LocalExecutor(1), out=out).run()
    csv_before = out.read_bytes()
    jsonl_path(out).write_bytes(content)
    rc, _, err = sweep_cli(capsys, "--grid", "kernel.cpus=1,2", "--duration", "5ms", "--workers", "1",
                           "--out", str(out), "--resume")
    assert rc == 2 and "Traceback" not in err
    assert str(jsonl_path(out)) in err and "not a sweep results file" in err
    assert jsonl_path(out).read_bytes() == content and out.read_bytes() == csv_before
    assert not (tmp_path / "r.summary.csv").exists()


def test_resume_still_takes_results_with_a_torn_last_line(registry: Registry, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    plan = plan_sweep(base_config(registry), registry, [("grid", "kernel.cpus=1,2")])
    Sweep(plan, registry, LocalExecutor(1), out=out).run()
    whole = read_csv(out)
    jsonl_path(out).unlink()  # resume from the CSV alone, cut short in the middle of a row
    with open(out, "a") as f:
        f.write("2,0123abcd,o")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert Sweep(plan, registry, LocalExecutor(1), out=empty, resume=True).run().ok == 2  # nothing in it to lose
    report = Sweep(plan, registry, LocalExecutor(1), out=out, resume=True).run()
    assert (report.skipped, report.ok) == (2, 0)
    assert read_csv(out) == whole  # the torn row dropped, the finished ones kept


def test_out_in_a_missing_folder_is_refused(capsys: pytest.CaptureFixture[str], registry: Registry,
                                            tmp_path: Path) -> None:
    missing = tmp_path / "missing" / "dir"
    argv = ["--grid", "kernel.cpus=1,2", "--duration", "1ms", "--workers", "1", "--no-progress"]
    rc, stdout, err = sweep_cli(capsys, *argv, "--out", str(missing / "x.csv"))
    assert rc == 2 and stdout == "" and "Traceback" not in err
    assert f"the folder {missing} does not exist" in err and str(missing / "x.csv") in err
    assert not (tmp_path / "missing").exists()

    a_file = tmp_path / "file"
    a_file.write_text("")
    rc, _, err = sweep_cli(capsys, *argv, "--out", str(a_file / "x.csv"))
    assert rc == 2 and f"{a_file} is not a folder" in err

    # a plot into a missing folder is refused before the sweep starts, and when reading results
    out = tmp_path / "r.csv"
    rc, _, err = sweep_cli(capsys, *argv, "--out", str(out), "--plot", "flushes", "--x", "kernel.cpus",
                           str(missing / "p.svg"))
    assert rc == 2 and f"the folder {missing} does not exist" in err
    assert not out.exists() and not (tmp_path / "missing").exists()
    assert sweep_cli(capsys, *argv, "--out", str(out))[0] == 0
    rc, _, err = sweep_cli(capsys, "--plot", "flushes", "--x", "kernel.cpus", "--out", str(out),
                           str(missing / "p.svg"))
    assert rc == 2 and f"the folder {missing} does not exist" in err
    assert not (tmp_path / "missing").exists()

    plan = plan_sweep(base_config(registry), registry, [])
    assert ResultsFiles(missing / "x.csv").check() == []  # "already exists?" (the TUI asks) is still no
    with pytest.raises(SweepError, match="does not exist"):
        Sweep(plan, registry, LocalExecutor(1), out=missing / "x.csv")
    assert not (tmp_path / "missing").exists()


def test_plot_results_refuses_a_missing_folder(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="plots need the optional extra: pip install 'pgtable-explorer[plot]'")
    from explorer.sweep.plot import plot_results

    records = [{"point_id": str(b), "status": "ok", "kernel.cpus": b, "seed": 1, "flushes": b} for b in (1, 2)]
    with pytest.raises(SweepError, match="does not exist"):
        plot_results(records, ["flushes"], "kernel.cpus", tmp_path / "missing" / "p.svg")
    assert not (tmp_path / "missing").exists()


def test_out_that_is_a_folder_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    folder = tmp_path / "r.csv"
    folder.mkdir()
    argv = ["--grid", "kernel.cpus=1", "--duration", "1ms", "--workers", "1", "--out", str(folder)]
    for extra in ([], ["--resume"], ["--overwrite"]):
        rc, _, err = sweep_cli(capsys, *argv, *extra)
        assert rc == 2 and f"error: --out {folder}: is a folder" in err, (extra, err)
    rc, _, err = sweep_cli(capsys, "--summary", "--out", str(folder))
    assert rc == 2 and f"error: {folder} is a folder, not a results file" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv"] and not any(folder.iterdir())
