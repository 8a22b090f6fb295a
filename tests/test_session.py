"""explorer.session: a run in its own process that can be started, paused, stepped, sped up,
reset and stopped, and that gives the same numbers as a direct run of the same config."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from explorer.documents import compare_document, dumps_json, flatten_metrics, metrics_csv, run_document
from explorer.plugins import load_registry
from explorer.session import Session, run_to_end
from explorer.sim.build import build_simulation
from tests.conftest import SHORT, hanging_strategy_source, make_config

HANG = hanging_strategy_source("test-hangs")

SETUP_RAISES = textwrap.dedent(
    '''
    from explorer.api import FreeStrategy, hookimpl


    class SetupRaises(FreeStrategy):
        name = "test-setup-raises"
        version = "0.2"

        def setup(self, k):
            raise ValueError("no lock for you")

        def pagetable_free_kernel(self, k, pt):
            k.free_now(pt)


    @hookimpl
    def register_strategies(register):
        register(SetupRaises)
    '''
)


@pytest.fixture
def session_factory():
    made: list[Session] = []

    def make(config, plugins_dirs=(), **kw):
        kw.setdefault("entry_points", False)
        s = Session(config, plugins_dirs, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop(timeout=0.5)


def test_full_speed_run_gives_the_same_metrics_as_a_direct_run(registry, session_factory):
    config = make_config(registry, *SHORT)
    s = session_factory(config, speed=0.0)
    s.start(run=True)
    snap = s.wait(30)
    assert snap is not None and s.state == "finished" and snap.finished
    direct = build_simulation(config, registry).run()
    assert json.loads(json.dumps(snap.metrics())) == json.loads(json.dumps(direct))
    assert snap.metrics()["flushes"] > 0
    # live-only keys are in the snapshot but not in the metrics
    assert "pending_list" in snap.data and "pending_list" not in snap.metrics()
    assert any("flush" in line for line in snap.trace)


def test_paused_at_start_step_advances_one_batch_and_pauses(registry, session_factory):
    s = session_factory(make_config(registry, *SHORT), step_ns=20_000)
    s.start()
    assert s.wait_for(lambda s: s.state == "paused" and s.latest is not None, 20)
    assert s.latest.now_ns == 0
    s.step()
    assert s.wait_for(lambda s: s.latest.now_ns == 20_000, 20)
    s.set_step(5_000)
    s.step()
    assert s.wait_for(lambda s: s.latest.now_ns == 25_000, 20)
    assert s.state == "paused"


def test_pause_and_resume_keep_the_numbers_identical(registry, session_factory):
    config = make_config(registry, *SHORT)
    s = session_factory(config, speed=0.0)
    s.start()
    for _ in range(5):
        s.step(300_000)
    s.run()
    snap = s.wait(30)
    assert snap is not None and snap.finished
    assert snap.metrics() == json.loads(json.dumps(build_simulation(config, registry).run()))


def test_slow_motion_speed_limits_simulated_time(registry, session_factory):
    # 10 simulated microseconds per wall second: a few snapshots in, far less than 1ms has passed
    s = session_factory(make_config(registry, *SHORT), speed=10.0, hz=20.0)
    s.start(run=True)
    assert s.wait_for(lambda s: s.latest is not None and s.state == "running" and s.latest.seq >= 4, 20)
    assert 0 < s.latest.now_ns < 1_000_000
    assert s.latest.speed == 10.0
    s.set_speed(0.0)  # as fast as possible: it finishes
    assert s.wait(30).finished


def test_reset_with_a_new_config(registry, session_factory):
    s = session_factory(make_config(registry, *SHORT), speed=0.0)
    s.start(run=True)
    assert s.wait(30).finished
    s.reset(make_config(registry, *SHORT, "strategy.name=sync"))
    assert s.wait_for(lambda s: s.state == "paused" and s.latest.now_ns == 0, 20)
    s.run()
    snap = s.wait(30)
    assert snap.finished and s.config["strategy"]["name"] == "sync"
    assert snap.metrics()["flushes"] == snap.metrics()["kernel_tables_freed"]  # sync: one flush per table


def test_a_raising_strategy_is_an_error_with_plugin_and_traceback(test_registry, session_factory):
    from tests.conftest import RUNTIME_PLUGINS

    config = make_config(test_registry, *SHORT, "strategy.name=test-raises")
    s = session_factory(config, [RUNTIME_PLUGINS], speed=0.0)
    s.start(run=True)
    snap = s.wait(30)
    assert s.state == "failed"
    err = s.error
    assert err is not None and err.kind == "strategy" and err.name == "test-raises"
    assert "deliberate failure" in err.error
    assert "raises.py" in err.traceback and "pagetable_free_kernel" in err.traceback
    assert snap is not None and snap.error == err
    # the process is still there and takes a new config
    s.reset(make_config(test_registry, *SHORT))
    s.run()
    assert s.wait(30).finished and s.error is None


def test_a_strategy_that_raises_in_setup_fails_at_build(tmp_path, session_factory):
    (tmp_path / "setup_raises.py").write_text(SETUP_RAISES)
    reg = load_registry([tmp_path], entry_points=False)
    s = session_factory(make_config(reg, *SHORT, "strategy.name=test-setup-raises"), [tmp_path])
    s.start()
    assert s.wait_for(lambda s: s.state == "failed", 20)
    assert s.error.phase == "build" and s.error.name == "test-setup-raises" and "no lock" in s.error.error


def test_a_hanging_strategy_is_detected_and_can_be_stopped(tmp_path, session_factory):
    (tmp_path / "hangs.py").write_text(HANG)
    reg = load_registry([tmp_path], entry_points=False)
    s = session_factory(make_config(reg, *SHORT, "strategy.name=test-hangs"), [tmp_path], speed=0.0,
                        stall_after=0.3)
    s.start()
    assert s.wait_for(lambda s: s.state == "paused", 20)
    s.run()
    assert s.wait_for(lambda s: s.stalled, 20), "a hung simulation must be reported as stalled"
    pid = s.pid
    assert s.stop(timeout=0.2) is True  # it had to be terminated
    assert not s.alive and s.state == "stopped" and pid is not None
    # and a new process can be started for the same session
    s.reset(make_config(reg, *SHORT))
    assert s.wait_for(lambda s: s.state == "paused", 20)


def test_run_to_end_and_snapshots_iterator(registry, session_factory):
    config = make_config(registry, *SHORT)
    final = run_to_end(config, timeout=30)
    assert final is not None and final.finished
    s = session_factory(config, speed=0.0)
    s.start(run=True)
    seen = list(s.snapshots(timeout=30))
    assert seen and seen[-1].finished
    assert [x.seq for x in seen] == sorted(x.seq for x in seen)


#: a strategy that prints as it frees (a plugin's print goes to the Log, never the terminal)
CHATTY_STRATEGY = textwrap.dedent(
    '''
    from explorer.api import FreeStrategy, hookimpl

    class Chatty(FreeStrategy):
        name = "test-chatty"
        def pagetable_free_kernel(self, k, pt):
            print("freeing", pt.page)
            k.free_now(pt)

    @hookimpl
    def register_strategies(register):
        register(Chatty)
    ''')


def test_plugin_prints_do_not_reach_the_terminal(tmp_path, session_factory, capfd):
    (tmp_path / "chatty.py").write_text(CHATTY_STRATEGY)
    reg = load_registry([tmp_path], entry_points=False)
    s = session_factory(make_config(reg, *SHORT, "strategy.name=test-chatty"), [tmp_path], speed=0.0)
    s.start(run=True)
    snap = s.wait(30)
    assert snap.finished
    assert any(line.startswith("[stdout] freeing") for line in snap.trace)
    assert "freeing" not in capfd.readouterr().out


def test_the_trace_file_is_the_whole_runs_trace_with_the_prints_in_place(tmp_path, session_factory, capsys):
    """Session(trace_file=True): the child writes the raw records; read through the Log's index,
    they are line for line what ``run --trace`` writes, with a plugin's prints where they happened."""
    from explorer.tui.widgets.trace_view import TraceIndex

    (tmp_path / "chatty.py").write_text(CHATTY_STRATEGY)
    reg = load_registry([tmp_path], entry_points=False)
    config = make_config(reg, *SHORT, "strategy.name=test-chatty")
    s = session_factory(config, [tmp_path], speed=0.0, trace_file=True)
    s.start(run=True)
    snap = s.wait(30)
    assert snap.finished and snap.trace_file is not None and not snap.trace_file.capped
    idx = TraceIndex(snap.trace_file.path, ())
    assert idx.extend(snap.trace_file.size) and idx.damaged == 0
    lines = [line for b in range(len(idx.starts)) for line in idx.read_block(b)]
    assert len(lines) == idx.count == snap.trace_file.lines
    direct = build_simulation(config, reg)
    written: list[str] = []
    direct.trace_to(written.append)
    direct.run()
    assert [ln for ln in lines if not ln.startswith("[stdout] ")] == "".join(written).splitlines()
    prints = [i for i, ln in enumerate(lines) if ln.startswith("[stdout] freeing ")]
    assert len(prints) > 10
    for i in prints:  # each print just before the free it announced
        page = lines[i].split()[-1]
        assert lines[i + 1].split(": ", 2)[1] == "free" and f"={page} " in lines[i + 1] + " "


def test_export_helpers(registry):
    metrics = build_simulation(make_config(registry, *SHORT), registry).run()
    rows = flatten_metrics(metrics)
    assert rows["flushes"] == metrics["flushes"]
    assert rows["latency_ns.p99"] == metrics["latency_ns"]["p99"]
    assert "iommus[0].entries" in rows and not any(k.startswith("series") for k in rows)
    csv_text = metrics_csv(metrics)
    assert csv_text.startswith("metric,value\n") and f"flushes,{metrics['flushes']}\n" in csv_text


def test_run_and_compare_documents_are_the_clis(registry):
    """The documents the TUI exports: the config in its TOML form, keys sorted, the scenario's checks."""
    from explorer.config import to_toml_dict

    config = make_config(registry, *SHORT, scenario="before-fix")
    metrics = build_simulation(config, registry).run()
    doc = run_document(config, metrics, registry, "before-fix")
    assert doc["config"] == to_toml_dict(config, registry) and doc["config"]["run"]["duration"] == "5ms"
    assert doc["metrics"] == metrics and doc["scenario"]["name"] == "before-fix" and doc["scenario"]["checks"]
    assert "scenario" not in run_document(config, metrics, registry)
    text = dumps_json(doc)
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert list(json.loads(text)) == ["config", "metrics", "scenario"]

    cmp = compare_document("strategy", [("sync", config, metrics), ("batched", config, None)], registry,
                           errors=[None, {"kind": "strategy", "error": "KeyError: 1"}])
    assert cmp["axis"] == "strategy" and [c["label"] for c in cmp["columns"]] == ["sync", "batched"]
    assert cmp["columns"][0] == {"label": "sync", "config": doc["config"], "metrics": metrics, "safe": False,
                                 "unsafe_reasons": [f"{k} {metrics['violations'][k]['total']}" for k in
                                                    ("unflushed_free", "use_after_free", "stale_walk_free")]}
    assert "safe" not in cmp["columns"][1]  # no metrics, no verdict
    assert cmp["workload"] == {"same": True, "compared": ["sync"], "unlinked_by_source": {}}
    assert cmp["columns"][1]["metrics"] is None and cmp["columns"][1]["error"]["error"] == "KeyError: 1"
    assert "scenario" not in cmp


def test_session_config_is_plain_data(registry):
    config = make_config(registry, *SHORT)
    s = Session(config, [Path(".")], entry_points=False)
    assert s.config == json.loads(json.dumps(config)) and s.config is not config
    assert all(Path(d).is_absolute() for d in s.plugins_dirs)


def test_trace_tail_and_view(registry, session_factory):
    """The snapshot's trace is the tail of Simulation.trace_lines() (only the tail is formatted), and
    left out while the face does not show it; a background start queues the commands sent meanwhile."""
    config = make_config(registry, *SHORT)
    direct = build_simulation(config, registry)
    direct.enable_trace(2000)
    direct.advance(2_000_000)
    s = session_factory(config, step_ns=2_000_000, trace_tail=50)
    s.start(background=True)
    s.step()  # waits for the start in flight, then steps
    assert s.wait_for(lambda s: s.latest is not None and s.latest.now_ns == 2_000_000, 20)
    assert list(s.latest.trace) == direct.trace_lines()[-50:] and len(direct.trace_lines()) > 50
    # the seq before asking (the answer can arrive before the next line reads it)
    seq = s.latest.seq
    s.set_view(trace=False)
    s.request_snapshot()
    assert s.wait_for(lambda s: s.latest.seq > seq, 20)
    assert s.latest.trace == ()
    seq = s.latest.seq
    s.set_view(trace=True)
    s.request_snapshot()
    assert s.wait_for(lambda s: s.latest.seq > seq, 20)
    assert list(s.latest.trace) == direct.trace_lines()[-50:]
