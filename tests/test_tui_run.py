"""The live run: space, step, reset, speed, counters and charts, violations in red, the trace
log and its filter, the queues, export and clipboard; a raising strategy (loaded with
--plugins-dir) shows the error panel and leaves the UI usable; a hanging one can be stopped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.widgets import Input, TabbedContent

from explorer.plugins import load_registry
from explorer.sim.build import build_simulation
from explorer.tui.screens.export_dialog import ExportDialog
from explorer.tui.screens.run import RunScreen
from explorer.tui.widgets.chart import TimeChart, resample
from explorer.tui.widgets.counter import BigCounter
from explorer.tui.widgets.error_panel import ErrorPanel
from explorer.tui.widgets.event_log import EventLog
from explorer.tui.widgets.trace_view import TraceView
from tests.conftest import hanging_strategy_source, make_config
from tests.tui_helpers import (
    SHORT,
    make_app,
    paste,
    run_to_end,
    screen_text,
    wait_for_drawn,
    wait_for_text,
    wait_until,
)

#: A user's strategy plugin with a bug (it raises on the third table), shipped as an example.
RAISES = (Path(__file__).resolve().parent.parent / "docs" / "examples" / "buggy" / "my_buggy.py").read_text()

HANGS = hanging_strategy_source("my-hangs")


@pytest.fixture
def app(make_tui_app):
    return make_tui_app(start="run")


async def test_space_runs_and_the_counters_and_charts_fill(app, registry):
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_drawn(pilot, app, ("paused",))
        assert isinstance(app.screen, RunScreen)
        await wait_for_text(pilot, "paused")
        await run_to_end(pilot, app)
        snap = app.session.latest
        assert app.session.state == "finished"
        flushes = app.screen.query_one("#c-flushes", BigCounter)
        assert flushes.value == snap.data["flushes"] > 0
        assert app.screen.query_one("#c-freed", BigCounter).value == snap.data["kernel_tables_freed"] > 0
        violations = app.screen.query_one("#c-violations", BigCounter)
        assert violations.value == 0 and not violations.has_class("-bad")
        # and the Queues tab: the work item and its state
        await wait_for_text(pilot, "finished", "pending queue depth", "unlink → free", "kernel_pgtable_work")
        # the same numbers as a direct run of the config
        direct = build_simulation(app.session.config, registry).run()
        assert snap.metrics() == json.loads(json.dumps(direct))


async def test_step_then_reset(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_drawn(pilot, app, ("paused",))
        await pilot.press("s")
        await wait_until(pilot, lambda: app.session.latest.now_ns == app.step_ns, what="one step")
        await pilot.press("t")  # a bigger step: 100us
        assert app.step_ns == 100_000
        await pilot.press("full_stop")
        await wait_until(pilot, lambda: app.session.latest.now_ns == 110_000, what="a second step")
        await wait_for_text(pilot, "t=0.000110s")
        await pilot.press("r")
        await wait_until(pilot, lambda: app.session.latest.now_ns == 0 and app.session.state == "paused",
                         what="the reset")


async def test_speed_control_from_slow_motion_to_max(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_drawn(pilot, app, ("paused",))
        assert app.current_speed() == 10_000.0  # run.speed's default: slow enough to watch
        await pilot.press("minus")
        assert app.current_speed() == 1_000.0
        for _ in range(3):
            await pilot.press("minus")
        assert app.current_speed() == 1.0  # 1 simulated microsecond per wall second
        assert app.config["run"]["speed"] == 1.0 and app.dirty
        await pilot.press("space")
        await wait_until(pilot, lambda: app.session.state == "running" and app.session.latest.seq >= 3,
                         what="a few snapshots")
        assert app.session.latest.now_ns < 100_000
        await wait_for_text(pilot, "1 µs/s")
        await pilot.press("plus")
        assert app.current_speed() == 10.0
        await pilot.press("m")
        assert app.current_speed() == 0.0
        await wait_for_drawn(pilot, app, ("finished",))


async def test_violations_show_in_red_with_their_source(registry):
    config = make_config(registry, *SHORT, "iommu.probe_target=adversarial", scenario="before-fix")
    app = make_app(registry, config)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for_drawn(pilot, app, ("paused",))
            await run_to_end(pilot, app)
            data = app.session.latest.data
            uaf = data["violations"]["use_after_free"]["total"]
            assert uaf > 0
            counter = app.screen.query_one("#c-violations", BigCounter)
            assert counter.has_class("-bad") and counter.value >= uaf
            app.screen.query_one(TabbedContent).active = "tab-violations"
            text = await wait_for_text(pilot, "use-after-free", "first occurrences", "pfn=")
            assert any(src in text for src in data["violations"]["use_after_free"]["by_source"])
            assert "first occurrences" in text and "pfn=" in text
    finally:
        app.shutdown_sessions()


async def test_the_log_filter_searches_the_whole_run(registry, tmp_path, capsys):
    # before-fix over 20 ms: 2,651 trace lines, 6 hot-remove use-after-frees, only 2 of them among
    # the newest 300 lines (all a snapshot brings): the Log pages the whole run in from its file
    app = make_app(registry, make_config(registry, "run.duration=20ms", "run.speed=max", scenario="before-fix"))
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for_drawn(pilot, app, ("paused",))
            await run_to_end(pilot, app)
            snap = app.session.latest
            uaf = snap.data["violations"]["use_after_free"]["by_source"]["hot-remove"]
            assert uaf == 6 and snap.trace_file is not None and snap.trace_file.lines == 2651
            await pilot.press("f")
            assert isinstance(app.screen.focused, Input) and app.screen.query_one(TabbedContent).active == "tab-log"
            log, view = app.screen.query_one(EventLog), app.screen.query_one(TraceView)
            await wait_until(pilot, lambda: not log.scanning and view.count == 2651, what="the whole trace")
            # line for line the trace `run --trace` writes for the same config
            from explorer import cli

            assert cli.main(["run", "--scenario", "before-fix", "--duration", "20ms", "--trace",
                             str(tmp_path / "t.log")]) == 0
            assert view.all_lines() == (tmp_path / "t.log").read_text().splitlines()
            assert "the whole run: 2,651 lines" in str(app.screen.query_one("#log-reach").render())
            await paste(pilot, "hot-remove use_after_free")
            await wait_until(pilot, lambda: not log.scanning and log.words == ["hot-remove", "use_after_free"],
                             what="the filter to search the file")
            found = view.all_lines()
            assert len(found) == uaf and all("kind=use_after_free source=hot-remove" in ln for ln in found)
            assert "6 of 2,651 lines match (the whole run)" in await wait_for_text(pilot, found[-1][:60])
            await pilot.press("ctrl+u")
            await paste(pilot, "free -user -vmalloc")
            await wait_until(pilot, lambda: not log.scanning and log.words == ["free", "-user", "-vmalloc"])
            assert view.count > 300 and all("free" in ln and "user" not in ln and "vmalloc" not in ln
                                            for ln in view.all_lines())
            await pilot.press("escape")
            assert not isinstance(app.screen.focused, Input)
            # a finished run's charts bin for the width they have after a resize (no snapshot comes)
            chart = app.screen.query_one("#chart-flushes", TimeChart)
            before = chart.size.width
            await pilot.resize_terminal(80, 24)
            await wait_until(pilot, lambda: chart.size.width != before and len(chart.columns) == chart.size.width,
                             what="the chart redrawn at the new width")
            assert chart.columns == resample(chart.values, chart.bin_ns, chart.span_ns, chart.size.width, "sum")
            assert sum(chart.columns) == snap.data["flush_ns"]["count"]
    finally:
        app.shutdown_sessions()


async def test_export_json_and_csv_and_copy(app, tmp_path):
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_drawn(pilot, app, ("paused",))
        await run_to_end(pilot, app)
        metrics = app.session.latest.metrics()
        await pilot.press("e")
        assert isinstance(app.screen, ExportDialog)
        await pilot.press("ctrl+u")
        await paste(pilot, str(tmp_path / "m.json"))
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, ExportDialog))
        doc = json.loads((tmp_path / "m.json").read_text())
        assert doc["metrics"] == metrics and doc["config"]["strategy"]["name"] == "deferred"
        await pilot.press("e", "ctrl+u")
        await paste(pilot, str(tmp_path / "m.csv"))
        await pilot.press("enter")
        await wait_until(pilot, lambda: (tmp_path / "m.csv").exists())
        csv_text = (tmp_path / "m.csv").read_text()
        assert csv_text.startswith("metric,value\n") and f"flushes,{metrics['flushes']}\n" in csv_text
        await pilot.press("y")
        assert json.loads(app.clipboard) == metrics


async def test_a_raising_plugin_shows_the_error_panel_and_the_ui_stays_usable(tmp_path):
    (tmp_path / "my_buggy.py").write_text(RAISES)
    reg = load_registry([tmp_path], entry_points=False)
    config = make_config(reg, *SHORT, "strategy.name=my-buggy")
    app = make_app(reg, config, plugins_dirs=[tmp_path])
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for_drawn(pilot, app, ("paused",))
            await run_to_end(pilot, app)
            assert app.session.state == "failed"
            panel = app.screen.query_one(ErrorPanel)
            assert panel.display and app.screen.has_class("-failed")
            await wait_for_text(pilot, "strategy 'my-buggy' raised KeyError",
                                "plugin my_buggy, strategy my-buggy 0.3 (directory:", "Traceback", "my_buggy.py",
                                "pagetable_free_kernel")
            await pilot.press("c")
            assert "KeyError" in app.clipboard and "Traceback" in app.clipboard
            # still usable: switch to the config, choose a working strategy, run again
            await pilot.press("1")
            await wait_until(pilot, lambda: app.current_mode == "config", what="the Config screen")
            assert app.apply_edit("strategy.name", "deferred") is None
            await pilot.press("2")
            await wait_until(pilot, lambda: app.session.state == "paused" and app.session.error is None,
                             what="the reset with the new config")
            await run_to_end(pilot, app)
            assert app.session.state == "finished" and not app.screen.query_one(ErrorPanel).display
    finally:
        app.shutdown_sessions()


async def test_a_hanging_plugin_can_be_stopped(tmp_path):
    (tmp_path / "my_hangs.py").write_text(HANGS)
    reg = load_registry([tmp_path], entry_points=False)
    app = make_app(reg, make_config(reg, *SHORT, "strategy.name=my-hangs"), plugins_dirs=[tmp_path],
                   stall_after=0.3)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for_drawn(pilot, app, ("paused",))
            await pilot.press("space")
            await wait_until(pilot, lambda: app.session.stalled and "NOT RESPONDING" in screen_text(app),
                             what="the stall warning")
            await pilot.press("x")
            assert not app.session.alive and app.session.state == "stopped"
            await wait_for_text(pilot, "stopped")
            await pilot.press("1")  # the UI is alive
            assert app.current_mode == "config"
            await pilot.press("2", "r")
            await wait_until(pilot, lambda: app.session.alive and app.session.state == "paused",
                             what="a new simulation process")
    finally:
        app.shutdown_sessions()


async def test_the_live_speed_follows_a_config_that_replaces_this_one(app, registry, tmp_path):
    from explorer.config import save_config
    from explorer.tui.screens.choice import ChoiceModal

    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_drawn(pilot, app, ("paused",))
        await pilot.press("m")
        assert app.current_speed() == 0.0 and app.config["run"]["speed"] == 0.0
        await wait_until(pilot, lambda: "speed max" in screen_text(app), what="speed max")
        # a scenario (its run.speed is the default, 10 ms/s): the header, the session and the config agree
        await pilot.press("ctrl+l")
        assert isinstance(app.screen, ChoiceModal)
        from textual.widgets import OptionList

        ids = [v for v, _, _ in app.screen.options]
        app.screen.query_one(OptionList).highlighted = ids.index("linux-6.19")
        await pilot.press("enter")
        # the speed is run.speed, an unsaved change: loading a scenario asks first
        from explorer.tui.screens.confirm_quit import ConfirmQuit

        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmQuit), what="the unsaved-changes question")
        await pilot.press("d")
        await wait_until(pilot, lambda: app.scenario == "linux-6.19", what="the scenario")
        assert app.config["run"]["speed"] == 10_000.0
        assert app.current_speed() == 10_000.0 and app.session.speed == 10_000.0
        await wait_until(pilot, lambda: "speed 10 ms/s" in screen_text(app), what="the scenario's speed shown")
        # a file with a speed of its own
        path = tmp_path / "slow.toml"
        save_config(make_config(registry, *SHORT, "run.speed=100"), str(path), registry)
        assert app.open_path(str(path)) is None
        assert app.current_speed() == 100.0
        await wait_until(pilot, lambda: "speed 100 µs/s" in screen_text(app), what="the file's speed shown")
        # and the session really runs at it: slow, far from the end (5ms) after a few snapshots
        await wait_for_drawn(pilot, app, ("paused",))
        seq = app.session.latest.seq
        await pilot.press("space")
        await wait_until(pilot, lambda: app.session.state == "running" and app.session.latest.seq >= seq + 3,
                         what="a few snapshots")
        assert app.session.latest.now_ns < 1_000_000


async def test_the_log_filter_shows_what_is_typed_while_it_has_the_focus(app):
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_drawn(pilot, app, ("paused",))
        await pilot.press("f")
        box = app.screen.focused
        assert isinstance(box, Input) and box.id == "log-filter"
        await paste(pilot, "zqxj")
        await wait_until(pilot, lambda: box.value == "zqxj", what="the pasted filter")
        # one row, no border rows around it: the text itself is on the screen
        await wait_for_text(pilot, "zqxj")
        assert box.region.height == 1


async def test_at_80_columns_the_stall_warning_shows_its_x_hint(tmp_path):
    (tmp_path / "my_hangs.py").write_text(HANGS)
    reg = load_registry([tmp_path], entry_points=False)
    app = make_app(reg, make_config(reg, *SHORT, "strategy.name=my-hangs"), plugins_dirs=[tmp_path],
                   stall_after=0.3)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for_drawn(pilot, app, ("paused",))
            await pilot.press("space")
            await wait_until(pilot, lambda: app.session.stalled and "NOT RESPONDING" in screen_text(app),
                             what="the stall warning")
            line = next(ln for ln in screen_text(app).splitlines() if "NOT RESPONDING" in ln)
            assert "NOT RESPONDING: x stops" in line, line
            assert "speed" in line, line  # still says how fast it was asked to go
            await pilot.press("x")
            assert app.session.state == "stopped"
    finally:
        app.shutdown_sessions()


async def test_f1_on_a_failed_run_describes_the_error_panel(tmp_path):
    """The error panel takes the place of the tabs, so F1's "Here:" is about it (with the keys in
    effect, a remapped one included), not about the Queues tab behind it."""
    from explorer.tui.screens.help import HelpScreen
    from tests.conftest import raising_strategy_source

    (tmp_path / "boom.py").write_text(raising_strategy_source("my-boom"))
    keymap = tmp_path / "keymap.toml"
    keymap.write_text('[keymap]\ncopy_trace = "k"\n')
    reg = load_registry([tmp_path], entry_points=False)
    app = make_app(reg, make_config(reg, *SHORT, "strategy.name=my-boom"), plugins_dirs=[tmp_path],
                   keymap_path=keymap)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for_drawn(pilot, app, ("paused",))
            await run_to_end(pilot, app)
            assert app.session.state == "failed" and app.screen.has_class("-failed")
            await pilot.press("f1")
            await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), what="the help")
            assert str(app.screen.query_one("#help-here-title").render()) == "Here: the error panel"
            text = str(app.screen.query_one("#help-here").render())
            assert "the plugin that raised it" in text and "the traceback" in text
            assert "k copies the traceback" in text and "r resets the run" in text and "x stops" in text
            assert "Queues tab" not in text
    finally:
        app.shutdown_sessions()


async def test_the_log_says_how_far_back_it_goes():
    from textual.app import App

    from explorer.tui.widgets.event_log import EventLog

    class One(App[None]):
        def compose(self):
            yield EventLog()

    lines = [f"[000]     0.{i:06d}: free: pfn={i} source=vmalloc-huge" for i in range(17, 317)]
    async with One().run_test(size=(100, 20)) as pilot:
        log = pilot.app.query_one(EventLog)
        log.set_lines(lines)
        await wait_until(pilot, lambda: "300 lines" in str(pilot.app.query_one("#log-reach").render()), what="the note")
        reach = str(pilot.app.query_one("#log-reach").render())
        assert "the newest 300 lines (from t=0.000017s on): the filter searches these only" in reach
        assert "pgtable-explorer run --trace FILE" in reach
        log.set_lines(lines[:40])  # fewer than a snapshot brings: the whole run, no note
        await wait_until(pilot, lambda: not pilot.app.query_one("#log-reach").display, what="the note hidden")
