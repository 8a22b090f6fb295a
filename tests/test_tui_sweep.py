"""The Sweep screen: an axis marked on the config tree (w), a small sweep run to the end on local
workers, the results table sorted, a point opened as a live run."""

from __future__ import annotations

from textual.widgets import DataTable, Static

from explorer.tui.screens.run import RunScreen
from explorer.tui.screens.sweep import SweepScreen
from explorer.tui.screens.sweep_axis import SweepAxisModal
from explorer.tui.sweep_model import AxisSpec, SweepState, axis_kind
from tests.conftest import make_config
from tests.tui_helpers import SHORT, jump_to, make_app, paste, wait_for_text, wait_until


def preview(app) -> str:
    return str(app.screen.query_one("#axis-preview", Static).render())


def test_axis_text_is_read_as_the_cli_reads_it(registry):
    assert axis_kind("64,128,256") == "grid" and axis_kind("1:1000:4:log") == "range"
    assert axis_kind("1us:1ms:4") == "range" and axis_kind("intel-vtd") == "grid"
    state = SweepState()
    state.set_axis("strategy.params.batch", "1:256:5:log")
    state.set_axis("iommu.model", "intel-vtd,amd-vi")
    state.set_axis("strategy.params.batch", "16,64")  # replaced in place
    assert state.axes == [AxisSpec("strategy.params.batch", "16,64"), AxisSpec("iommu.model", "intel-vtd,amd-vi")]
    assert state.axes[0].flag == "--grid strategy.params.batch=16,64"
    assert state.worker_count() >= 1 and "--workers" not in state.cli()  # by default one per CPU
    state.seeds = 2
    plan = state.plan_for(make_config(registry, "strategy.name=batched"), registry)
    assert len(plan.points) == 2 * 2 * 2 and plan.keys == ["strategy.params.batch", "iommu.model"]


async def test_sweep_from_the_config_tree_to_a_live_run(registry):
    app = make_app(registry, make_config(registry, *SHORT, "strategy.name=batched"), start="config")
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await jump_to(pilot, "strategy.params.batch")
            await pilot.press("w")
            await wait_until(pilot, lambda: isinstance(app.screen, SweepAxisModal) and app.screen.focused is not None,
                             what="the axis modal")
            await paste(pilot, "1:10:x")  # a bad range is explained in place, nothing is added
            await wait_until(pilot, lambda: "STEPS must be a whole number" in preview(app), what="the problem")
            await pilot.press("enter")
            assert isinstance(app.screen, SweepAxisModal) and not app.sweep_state.axes
            await pilot.press("ctrl+u")
            await paste(pilot, "8,64")
            await wait_until(pilot, lambda: "2 values: 8, 64" in preview(app), what="the values")
            await pilot.press("enter")
            await wait_until(pilot, lambda: not isinstance(app.screen, SweepAxisModal), what="the modal to close")
            assert app.sweep_state.axes == [AxisSpec("strategy.params.batch", "8,64")]

            await pilot.press("5")
            screen = app.screen
            assert isinstance(screen, SweepScreen)
            await wait_for_text(pilot, "--grid strategy.params.batch=8,64")
            await pilot.press("space")
            state = app.sweep_state
            await wait_until(pilot, lambda: not state.running and len(state.results) == 2 and screen.shown == 2,
                             timeout=60, what="the sweep to finish and be drawn")
            assert state.error is None and all(r.ok for r in state.results)
            # the status line is redrawn by the sweep thread's last message, after the last result's:
            # wait for what the assertion reads, not for the state that precedes it
            await wait_for_text(pilot, "✓ finished", "2/2 points", "flushes")

            # sort by flushes (s on the column), then reversed (s again)
            table = screen.query_one("#sweep-results", DataTable)
            table.focus()
            cols = [str(k.value) for k in table.columns]
            table.move_cursor(column=cols.index("flushes"))
            await pilot.press("s")
            flushes = [r.record["flushes"] for r in state.results]
            assert screen.sort_key == "flushes" and not screen.sort_reverse
            first = table.get_row_at(0)[cols.index("flushes")]
            assert str(first) == str(min(flushes))
            await pilot.press("s")
            assert screen.sort_reverse
            assert str(table.get_row_at(0)[cols.index("flushes")]) == str(max(flushes))
            # the batch of the top row (most flushes) is the smaller one
            top = int(str(table.coordinate_to_cell_key((0, 0)).row_key.value))
            assert state.plan is not None and state.plan.points[top].params["strategy.params.batch"] == 8

            # enter on the row opens that point on the Run screen
            table.move_cursor(row=0, column=0)
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, RunScreen), what="the Run screen")
            point = state.plan.points[top]
            assert app.config == point.config and app.config["strategy"]["params"]["batch"] == 8
            await wait_until(pilot, lambda: app.session is not None and app.session.state == "paused",
                             what="the run paused at zero")
            assert app.session is not None and app.session.config == point.config
    finally:
        app.shutdown_sessions()


async def test_sweep_stops_and_seeds_and_results_file(registry, tmp_path):
    config = make_config(registry, "run.duration=200ms", "run.drain=5ms", "strategy.name=batched")
    app = make_app(registry, config, start="sweep")
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("space")  # no axes: says how to add one
            assert not app.sweep_state.running
            app.sweep_state.set_axis("strategy.params.batch", "1:256:5:log")
            await pilot.press("n")
            await wait_until(pilot, lambda: isinstance(app.screen, SweepAxisModal) and app.screen.focused is not None,
                             what="the seeds modal")
            await pilot.press("ctrl+u")
            await paste(pilot, "3")
            await pilot.press("tab")  # the workers: a bad count is refused in place, nothing changes
            await paste(pilot, "0")
            await pilot.press("enter")
            assert isinstance(app.screen, SweepAxisModal) and "workers must be" in preview(app)
            assert app.sweep_state.seeds == 1 and app.sweep_state.workers is None
            await pilot.press("ctrl+u")
            await paste(pilot, "1")
            await pilot.press("enter")
            await wait_until(pilot, lambda: app.sweep_state.seeds == 3, what="three seeds")
            assert app.sweep_state.workers == 1 and "--workers 1" in app.sweep_state.cli()
            app.sweep_state.out = str(tmp_path / "tui.csv")
            screen = app.screen
            assert isinstance(screen, SweepScreen)
            screen.refresh_all()
            await wait_for_text(pilot, "× seeds 1..3 = 15 points over the current config", "1 local workers")
            await pilot.press("space")
            state = app.sweep_state
            assert state.sweep is not None and state.sweep.executor.workers() == ["local-0"]
            await wait_until(pilot, lambda: len(state.results) >= 1, timeout=60, what="a first point")
            await pilot.press("space")  # stop: the finished points are kept
            await wait_until(pilot, lambda: not state.running, timeout=20, what="the sweep to stop")
            assert state.sweep is not None and state.sweep.stopped
            await wait_for_text(pilot, "■ stopped")  # drawn by the thread's last message
            assert (tmp_path / "tui.csv").exists() and (tmp_path / "tui.jsonl").exists()
            # again: the file exists, so it asks whether to resume
            await pilot.press("space")
            await wait_for_text(pilot, "already exists")
            await pilot.press("escape")
            assert not state.running
    finally:
        app.shutdown_sessions()


async def test_the_results_file_dialog_offers_csv_files(registry, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "old-sweep.csv").write_text("point,point_id,status\n")
    (tmp_path / "my.toml").write_text("")
    app = make_app(registry, make_config(registry, *SHORT), start="sweep")
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("o")
            await wait_until(pilot, lambda: app.screen.query("#files"), what="the file dialog's list")
            listed = [str(o.id) for o in app.screen.query_one("#files").options]
            assert listed == ["old-sweep.csv"]
            await wait_for_text(pilot, "CSV files in")
    finally:
        app.shutdown_sessions()


async def test_the_results_cursor_stays_put_when_the_screen_comes_back(registry):
    """The cursor's row and column survive F1, a dialog and a trip to another screen (each redraws the
    table), so enter opens the point under it and s sorts its column."""
    from explorer.tui.screens.help import HelpScreen

    app = make_app(registry, make_config(registry, *SHORT, "strategy.name=batched"), start="sweep")
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            app.sweep_state.set_axis("strategy.params.batch", "8,16,64")
            screen = app.screen
            assert isinstance(screen, SweepScreen)
            await pilot.press("space")
            state = app.sweep_state
            await wait_until(pilot, lambda: not state.running and len(state.results) == 3 and screen.shown == 3,
                             timeout=60, what="the sweep to finish and be drawn")
            table = screen.query_one("#sweep-results", DataTable)
            table.focus()
            cols = [str(k.value) for k in table.columns]
            table.move_cursor(row=2, column=cols.index("flushes"), animate=False)
            await pilot.pause()
            want = table.coordinate_to_cell_key(table.cursor_coordinate)

            def still_there() -> bool:
                return (app.screen is screen and screen.focused is table
                        and table.coordinate_to_cell_key(table.cursor_coordinate) == want)

            await pilot.press("f1")
            await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), what="the help")
            await pilot.press("escape")
            await wait_until(pilot, still_there, what="the cursor back on row 2, flushes")
            await pilot.press("a")  # a dialog, dismissed
            await wait_until(pilot, lambda: app.screen is not screen, what="the dialog")
            await pilot.press("escape")
            await wait_until(pilot, still_there, what="the cursor kept after the dialog")
            await pilot.press("1")
            await wait_until(pilot, lambda: app.screen is not screen, what="the Config screen")
            await pilot.press("5")
            await wait_until(pilot, still_there, what="the cursor kept after switching screens")
            assert table.cursor_coordinate == (2, cols.index("flushes"))

            await pilot.press("s")  # sorts the column under the cursor; the cursor stays on its point
            assert screen.sort_key == "flushes"
            assert table.coordinate_to_cell_key(table.cursor_coordinate).row_key == want.row_key
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, RunScreen), what="the Run screen")
            assert state.plan is not None
            assert app.config == state.plan.points[int(str(want.row_key.value))].config
    finally:
        app.shutdown_sessions()


async def test_the_results_file_dialog_lists_the_chosen_files_folder(registry, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "here.csv").write_text("point,point_id,status\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for name in ("a.csv", "b.csv"):
        (elsewhere / name).write_text("point,point_id,status\n")
    app = make_app(registry, make_config(registry, *SHORT), start="sweep")
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            app.sweep_state.out = str(elsewhere / "a.csv")
            await pilot.press("o")
            await wait_until(pilot, lambda: app.screen.query("#files"), what="the file dialog's list")
            files = app.screen.query_one("#files")
            assert [str(o.id) for o in files.options] == ["a.csv", "b.csv"]
            hints = [str(h.render()) for h in app.screen.query(".dialog-hint")]
            assert f"CSV files in {elsewhere} (typing filters them):" in hints
            # picking one from the list means that folder's file
            files.focus()
            files.highlighted = 1
            await pilot.press("enter")  # to the input
            await pilot.press("enter")  # use it
            await wait_until(pilot, lambda: isinstance(app.screen, SweepScreen), what="the dialog to close")
            assert app.sweep_state.out == str(elsewhere / "b.csv")
    finally:
        app.shutdown_sessions()
