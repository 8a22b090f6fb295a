"""The ``script`` workload source and ``hunt`` (docs/hunt.md, docs/config.md).

Hunts here are bounded by ``max_runs`` (never by wall time) so their answers are exact and the
suite stays short: a few hundred candidate runs of a few microseconds of simulated time each. They
are ``functional`` (``make test``); the script source's tests are unit tests (``make test-fast``).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest

from explorer.cli import main
from explorer.config import ConfigError, loads_config
from explorer.hunt import HuntResult, hunt, memory_kinds
from explorer.plugins import Registry
from explorer.sim.build import build_simulation
from tests.conftest import make_config

SCRIPTED = """
[strategy]
name = "sync-unsafe"
[kernel]
background_alloc_rate = "0/s"
[iommu]
walk_rate = "0/s"
probe_rate = "0/s"
[run]
duration = "20us"
seed = {seed}
[[workload]]
name = "script"
events = '''
0us  probe  slot=3 iommu=0      # the device caches a pointer to slot 3's table
1us  unlink slot=3 cpu=1        # unlinked and, with sync-unsafe, freed at once on CPU 1
2us  alloc  cpu=1               # CPU 1 hands the page out again
3us  probe  slot=3 iommu=0      # the device follows its cached pointer: into a data page
'''
"""


def _run(text: str, registry: Registry, trace: bool = False) -> tuple[dict[str, Any], list[str]]:
    sim = build_simulation(loads_config(text, registry, "t.toml"), registry)
    if trace:
        sim.enable_trace()
    metrics = sim.run()
    return metrics, sim.trace_lines()


# --------------------------------------------------------------------------- the script source


def test_script_replays_exactly_whatever_the_seed(registry: Registry) -> None:
    m1, t1 = _run(SCRIPTED.format(seed=1), registry, trace=True)
    m2, t2 = _run(SCRIPTED.format(seed=99), registry, trace=True)
    # One table unlinked and freed at 1us; the page is CPU 1's newest free page, so the allocation
    # at 2us gets it, and the probe at 3us walks into it: exactly one use-after-free, no other walk.
    assert m1["violations"]["use_after_free"] == {"total": 1, "by_source": {"script": 1}}
    assert m1["violations"]["stale_walk_free"]["total"] == 0
    assert m1["kernel_tables_freed"] == 1
    [ex] = [e for e in m1["examples"] if e["kind"] == "use_after_free"]
    assert (ex["slot"], ex["time_ns"], ex["unlinked_at_ns"], ex["page_state"]) == (3, 3000, 1000, "data")
    assert t1 == t2 and m1["violations"] == m2["violations"] and m1["examples"] == m2["examples"]
    events = [line.split(": ")[1] for line in t1]
    # the free is also an unflushed free (no IOMMU was told): reported at the free, before the walk
    assert events[:8] == ["probe", "unlink", "pagetable_free_kernel", "free", "violation", "alloc", "probe",
                          "violation"]
    assert m1["violations"]["unflushed_free"]["total"] == 1


def test_script_without_the_alloc_is_a_stale_walk_into_a_free_page(registry: Registry) -> None:
    text = SCRIPTED.format(seed=1).replace("2us  alloc  cpu=1", "2us  alloc  cpu=0")
    m, _ = _run(text, registry)
    # CPU 0's allocation takes another page: the freed table stays in CPU 1's free list.
    assert m["violations"]["use_after_free"]["total"] == 0
    assert m["violations"]["stale_walk_free"]["total"] == 1


def test_script_events_at_the_same_time_run_as_written_and_concurrently(registry: Registry) -> None:
    # A deferred free on CPU 0 and a sleepable one at the same instant: both tables are queued, one
    # flush covers them, nothing is violated; and the probe before the unlink caches the table.
    text = SCRIPTED.format(seed=1).replace('name = "sync-unsafe"', 'name = "deferred"')
    m, _ = _run(text, registry)
    assert all(v["total"] == 0 for v in m["violations"].values())
    assert m["stale_walk_queued"]["total"] == 1  # the probe at 3us hit the queued (not yet freed) table
    assert m["kernel_tables_freed"] == 1 and m["flushes"] == 1


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ("1us unlnk slot=3", ["workload.script.events", "event 1 ('1us unlnk slot=3')", "unknown operation 'unlnk'",
                              "did you mean 'unlink'", "valid: unlink, free-user, probe, alloc"]),
        ("1us unlink slot=3\n2us probe slt=3", ["event 2", "unknown key 'slt' for probe", "did you mean 'slot'",
                                               "valid: slot, iommu, mm"]),
        ("1us unlink slot=3 context=irq", ["event 1", "context: expected one of sleepable, atomic; got 'irq'"]),
        ("soon unlink slot=3", ["event 1", "the time:"]),
        ("1us probe", ["a probe needs slot=N"]),
        ("1us unlink slot=3 cpu=9", ["event 1", "CPU 9 does not exist: kernel.cpus is 8"]),
        ("1us probe slot=512", ["slot 512 does not exist: kernel.kernel_slots is 512"]),
        ("1us probe slot=1 iommu=2", ["IOMMU 2 does not exist: iommu.count is 2"]),
    ],
)
def test_script_errors_name_the_file_key_event_and_choices(registry: Registry, events: str,
                                                           expected: list[str]) -> None:
    text = f'[[workload]]\nname = "script"\nevents = """\n{events}\n"""\n'
    with pytest.raises(ConfigError) as err:
        loads_config(text, registry, "mine.toml")
    msg = str(err.value)
    assert msg.startswith("mine.toml: workload.script.events: ")
    for part in expected:
        assert part in msg


def test_script_error_is_exit_2_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[workload]]\nname = "script"\nevents = "1us alloc cpu=-1"\n')
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: workload.script.events: event 1" in err and "cpu: expected a number >= 0" in err
    assert "Traceback" not in err


# --------------------------------------------------------------------------- hunt


def test_any_is_every_memory_safety_kind_of_the_checker(monkeypatch: pytest.MonkeyPatch) -> None:
    import explorer.sim.checker as checker

    assert set(memory_kinds()) >= {"use_after_free", "stale_walk_free", "double_free", "freed_while_linked"}
    assert not {"leaked", "sleep_in_atomic"} & set(memory_kinds())
    # a kind the checker adds later is hunted without touching hunt
    monkeypatch.setattr(checker, "VIOLATIONS", (*checker.VIOLATIONS, "unflushed_free"))
    assert "unflushed_free" in memory_kinds()


@pytest.fixture(scope="module")
def before_fix_hunt(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, Path]:
    """``hunt --scenario before-fix --kind use_after_free --seed 1 --max-runs 200`` on one process:
    its exit status, output and counterexample file. Hunted once (the answer takes ~200 runs and
    a shrink), read by the CLI test and the Dask test, which must find the same."""
    out = tmp_path_factory.mktemp("hunt") / "uaf.toml"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        rc = main(["hunt", "--scenario", "before-fix", "--kind", "use_after_free", "--seed", "1", "--max-runs", "200",
                   "--workers", "1", "--out", str(out)])
    return rc, stdout.getvalue(), out


@pytest.mark.functional  # hundreds of candidate runs
def test_hunt_finds_shrinks_and_writes_a_replayable_before_fix_counterexample(
    before_fix_hunt: tuple[int, str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    rc, text, out = before_fix_hunt
    assert rc == 1
    assert "found     use_after_free after" in text and f"written to {out}" in text
    assert ": violation: kind=use_after_free" in text  # the story ends with the violation
    saved = out.read_text()
    assert saved.startswith("# A counterexample found by `pgtable-explorer hunt`")
    assert 'name = "script"' in saved and 'probe_rate = "0/s"' in saved and 'background_alloc_rate = "0/s"' in saved
    events = [ln for ln in saved.split('events = """')[1].split('"""')[0].splitlines() if ln.strip()]
    # the least a use-after-free needs: a cached pointer, the unlink (and free), a reuse, the walk
    assert 3 <= len(events) <= 4, events
    assert main(["run", str(out), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["metrics"]["violations"]["use_after_free"]["total"] >= 1
    assert doc["config"]["strategy"]["name"] == "sync-unsafe"  # the scenario's strategy, unchanged


@pytest.mark.functional  # hundreds of candidate runs; worker processes
def test_hunt_on_deferred_finds_nothing_and_says_what_it_covered(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["hunt", "--scenario", "linux-6.19", "--max-runs", "100", "--workers", "1"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "nothing   found: no memory-safety violation in 100 runs in 1 round(s)" in text
    assert "varied    event times" in text and "iommu.sva_mms: flush duration" in text
    assert "stopped   after --max-runs" in text


@pytest.mark.functional  # hundreds of candidate runs; worker processes
def test_hunt_is_deterministic_for_a_seed_and_any_worker_count(
    test_registry: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The CLI (in this process) and the API on two worker processes: two rounds of 100, so that two
    # workers really share them; the first round finds it. Same seed, same answer.
    rc = main(["hunt", "--scenario", "before-fix", "--max-runs", "200", "--seed", "2", "--workers", "1",
               "--format", "json", "--out", str(tmp_path / "c.toml")])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 1 and doc["found"] and doc["out"] == str(tmp_path / "c.toml")
    assert doc["kind"] in memory_kinds() and doc["stopped"] == "found"
    assert doc["config"]["workload"] == [{"name": "script", "events": doc["script"]}]
    assert doc["events"] == len(doc["script"].strip().splitlines()) <= 10
    assert any(f"kind={doc['kind']}" in line for line in doc["trace"])
    b = hunt(make_config(test_registry, scenario="before-fix"), test_registry, kind="any", max_runs=200, seed=2,
             workers=2, budget_s=600)
    assert isinstance(b, HuntResult) and b.found
    assert (doc["script"], doc["runs"], doc["events"], doc["simulated_ns"], doc["kind"]) == (
        b.script, b.runs, b.events, b.simulated_ns, b.kind)


@pytest.mark.functional  # a Dask cluster
def test_hunt_on_a_dask_cluster_gives_the_local_answer(
    registry: Registry, before_fix_hunt: tuple[int, str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    distributed = pytest.importorskip("distributed")
    # Two workers that are threads of this process (a process cluster costs seconds to start, and
    # the sweep tests start one): the rounds still go through the scheduler, two at a time.
    # Rounds in threads of one process take turns to hide plugins' prints: sys.stdout is ours after.
    stdout = sys.stdout
    monkeypatch.setattr(sys, "stdout", sys.stdout)  # if not, the rest of the session still prints
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0",
                                  silence_logs=logging.CRITICAL) as cluster:
        on_dask = hunt(make_config(registry, scenario="before-fix"), registry, kind="use_after_free",
                       max_runs=200, seed=1, scheduler=cluster.scheduler_address, budget_s=600)
    assert sys.stdout is stdout
    rc, text, out = before_fix_hunt
    local = out.read_text()
    assert rc == 1 and on_dask.found and on_dask.kind == "use_after_free"
    assert f"(seed 1, {on_dask.runs} runs)" in local and f"after {on_dask.runs} runs" in text
    assert on_dask.script.strip() in local  # the same shrunk events


def test_hunt_passes_dask_local_to_the_dask_executor(registry: Registry) -> None:
    pytest.importorskip("distributed")
    from explorer.sweep.executors import SweepError

    # checked by the executor that starts the LocalCluster (test_sweep starts one): nothing starts here
    with pytest.raises(SweepError, match="--dask-local must be at least 1, got 0"):
        hunt(make_config(registry, scenario="before-fix"), registry, max_runs=1, dask_local=0)


def test_hunt_workers_and_dask_are_alternatives(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("distributed")
    assert main(["hunt", "--scenario", "before-fix", "--max-runs", "1", "--workers", "1",
                 "--dask-local", "1"]) == 2  # alternatives
    assert "not allowed with" in capsys.readouterr().err


def test_hunt_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hunt", "--kind", "use_after_fre"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'use_after_free'" in err and "any" in err
    assert main(["hunt", "--budget", "soon"]) == 2
    assert "--budget" in capsys.readouterr().err
    assert main(["hunt", "--max-runs", "0"]) == 2
    assert main(["hunt", "--out", str(tmp_path / "no" / "such" / "x.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["hunt", "--strategy", "nosuch"]) == 2
    assert "unknown strategy 'nosuch'" in capsys.readouterr().err


def test_hunt_refuses_an_out_that_is_its_config_before_searching(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.toml"
    assert main(["config", "default"]) == 0
    config.write_text(capsys.readouterr().out)
    before = config.read_bytes()
    assert main(["hunt", str(config), "--out", str(config), "--max-runs", "1"]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "is the config" in err and "hunting" not in err
    assert config.read_bytes() == before


def test_a_round_does_not_warn_when_another_thread_moves_the_global_random() -> None:
    """In a Dask worker the worker's own threads use ``random`` while Hypothesis draws; its check
    for strategies that use ``random`` then warned every ``--dask-local`` user about Dask's code."""
    import random
    import warnings

    from hypothesis import find
    from hypothesis import strategies as st

    from explorer.hunt.search import hermetic_hypothesis

    @st.composite
    def drawn_while_another_thread_moves_random(draw: Any) -> int:
        random.random()  # stands for the other thread: same global state, moved during the draw
        return int(draw(st.integers()))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with hermetic_hypothesis():
            assert find(drawn_while_another_thread_moves_random(), lambda x: x >= 0) == 0
