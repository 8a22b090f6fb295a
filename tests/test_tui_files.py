"""Files: save (ctrl+s), save as, minimal save, open (ctrl+o) with problems shown in place,
quitting with unsaved changes asks first; a saved file runs in the CLI to the same numbers."""

from __future__ import annotations

import json
import tomllib

import pytest

from explorer import cli
from explorer.config import backup_path, load_config
from explorer.tui.screens.confirm_quit import ConfirmQuit
from explorer.tui.screens.file_dialog import FileDialog
from tests.tui_helpers import SHORT, paste, run_to_end, wait_for_drawn, wait_for_text, wait_until


@pytest.fixture
def app(make_tui_app, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the file dialogs start in the current directory
    return make_tui_app()


async def save_as(pilot, path) -> None:
    await pilot.press("ctrl+u")
    await paste(pilot, str(path))
    await pilot.press("enter")
    await wait_until(pilot, lambda: not isinstance(pilot.app.screen, FileDialog), what="the dialog to close")


async def test_ctrl_s_saves_and_the_cli_reproduces_the_tui_run(app, registry, tmp_path, capsys):
    path = tmp_path / "mine.toml"
    async with app.run_test(size=(100, 30)) as pilot:
        assert app.apply_edit("strategy.name", "batched") is None
        assert app.apply_edit("strategy.params.batch", "16") is None
        assert app.apply_edit("run.seed", "7") is None
        await pilot.press("ctrl+s")  # no file yet: asks for a name
        assert isinstance(app.screen, FileDialog)
        await save_as(pilot, path)
        assert path.exists() and not app.dirty and app.path == path.resolve()
        # the TUI's run of that config
        await pilot.press("2")
        await wait_for_drawn(pilot, app, ("paused",))
        await run_to_end(pilot, app)
        tui_metrics = app.session.latest.metrics()
    # the CLI, from the saved file
    assert cli.main(["run", str(path), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["metrics"] == tui_metrics
    assert out["config"]["strategy"] == {"name": "batched", "params": {"batch": 16, "max_age": "10ms"}}


async def test_save_again_keeps_a_backup_and_says_when_nothing_changed(app, tmp_path):
    path = tmp_path / "c.toml"
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+w")
        await save_as(pilot, path)
        first = path.read_text()
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: any("No change to configuration" in str(n.message) for n in app._notifications),
                         what="the note that nothing changed")
        assert app.apply_edit("kernel.cpus", "4") is None
        assert app.dirty
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: not app.dirty, what="the save")
        assert backup_path(path).read_text() == first
        assert tomllib.loads(path.read_text())["kernel"]["cpus"] == 4


async def test_minimal_save_writes_only_what_differs(app, registry, tmp_path):
    path = tmp_path / "min.toml"
    async with app.run_test(size=(100, 30)) as pilot:
        assert app.apply_edit("kernel.workqueue_delay", "40us") is None
        await pilot.press("ctrl+k")
        dialog = app.screen
        assert isinstance(dialog, FileDialog) and dialog.minimal is True
        await save_as(pilot, path)
    doc = tomllib.loads(path.read_text())
    assert doc["kernel"] == {"workqueue_delay": "40us"}
    assert doc["run"] == {"duration": "5ms", "drain": "5ms"}
    assert load_config(path, registry) == app.config


async def test_open_shows_problems_in_place_then_loads(app, registry, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[kernel]\ncpus = 0\nwq_delay = '1us'\n")
    good = tmp_path / "good.toml"
    good.write_text("[kernel]\ncpus = 2\n\n[strategy]\nname = 'sync'\n")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+o")
        assert isinstance(app.screen, FileDialog)
        await paste(pilot, str(bad))
        await pilot.press("enter")
        await wait_until(pilot, lambda: "kernel.cpus" in str(app.screen.query_one("#problem").render()),
                         what="the problem")
        assert isinstance(app.screen, FileDialog)  # still open, explaining
        problem = str(app.screen.query_one("#problem").render())
        assert "kernel.cpus" in problem and "wq_delay" in problem and "did you mean 'workqueue_delay'" in problem
        await pilot.press("ctrl+u")
        await paste(pilot, str(good))
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, FileDialog))
        assert app.config["kernel"]["cpus"] == 2 and app.config["strategy"]["name"] == "sync"
        assert app.path == good.resolve() and not app.dirty
        assert app.origins["kernel.cpus"] == "file"
        assert app.model().by_key()["kernel.cpus"].origin == "file"


async def test_quit_with_unsaved_changes_asks_first(app):
    async with app.run_test(size=(100, 30)) as pilot:
        assert app.apply_edit("kernel.cpus", "4") is None
        await pilot.press("ctrl+q")
        assert isinstance(app.screen, ConfirmQuit)
        await pilot.press("escape")  # stay
        assert not isinstance(app.screen, ConfirmQuit) and app.is_running
        await pilot.press("ctrl+q")
        await pilot.press("d")  # quit without saving
        await wait_until(pilot, lambda: not app.is_running, what="the app to exit")
    assert app.return_value == 0


async def test_quit_without_changes_does_not_ask(app, monkeypatch):
    asked: list[object] = []
    real_init = ConfirmQuit.__init__

    def spy(self, *args, **kwargs):
        asked.append(args)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(ConfirmQuit, "__init__", spy)
    async with app.run_test(size=(100, 30)) as pilot:
        assert not app.dirty
        await pilot.press("ctrl+q")
        await wait_until(pilot, lambda: not app.is_running or bool(asked), what="the app to exit or ask")
    assert asked == [] and app.return_value == 0


async def test_save_as_selects_the_suggested_name_so_typing_replaces_it(app, tmp_path):
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+w")
        await save_as(pilot, tmp_path / "dupw.toml")
        await pilot.press("ctrl+w")  # the current file's name is suggested, selected as export's is
        dialog = app.screen
        assert isinstance(dialog, FileDialog)
        inp = dialog.query_one("#path")
        await wait_until(pilot, lambda: inp.has_focus, what="the name input")
        assert inp.value == "dupw.toml"
        await pilot.press(*"dupw-out", "full_stop", *"toml")
        assert inp.value == "dupw-out.toml"
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, FileDialog), what="the dialog to close")
        assert (tmp_path / "dupw-out.toml").exists() and app.path == (tmp_path / "dupw-out.toml").resolve()


async def export_json(pilot, path) -> str:
    """On the Run screen: e, the file name, enter; the exported text."""
    from explorer.tui.screens.export_dialog import ExportDialog

    await pilot.press("e")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, ExportDialog), what="the export dialog")
    await pilot.press("ctrl+u")
    await paste(pilot, str(path))
    await pilot.press("enter")
    await wait_until(pilot, lambda: not isinstance(pilot.app.screen, ExportDialog), what="the dialog to close")
    return path.read_text()


async def test_the_run_export_is_the_document_the_cli_prints(app, tmp_path, capsys):
    """e on the Run screen writes what `run --format json` prints for the same config: the config in
    its TOML form ("5ms"), the metrics, keys sorted."""
    path = tmp_path / "mine.toml"
    async with app.run_test(size=(100, 30)) as pilot:
        assert app.apply_edit("strategy.name", "batched") is None
        assert app.apply_edit("workload.vmalloc-huge.rate", "50000/s") is None
        await pilot.press("ctrl+s")
        await save_as(pilot, path)
        await pilot.press("2")
        await wait_for_drawn(pilot, app, ("paused",))
        await run_to_end(pilot, app)
        exported = await export_json(pilot, tmp_path / "tui.json")
    assert cli.main(["run", str(path), "--format", "json"]) == 0
    printed = capsys.readouterr().out
    doc = json.loads(exported)
    assert doc["config"]["run"]["duration"] == "5ms" and doc["config"]["workload"][0]["rate"] == "50000/s"
    assert doc == json.loads(printed) and "scenario" not in doc
    assert exported == printed  # the same text: sorted keys, indent 2


async def test_the_run_export_of_a_scenario_has_the_scenario_and_its_checks(app, tmp_path, capsys):
    async with app.run_test(size=(100, 30)) as pilot:
        app.load_scenario("before-fix")
        for edit in SHORT:
            assert app.apply_edit(*edit.split("=", 1)) is None
        await pilot.press("2")
        await wait_for_drawn(pilot, app, ("paused",))
        await run_to_end(pilot, app)
        exported = await export_json(pilot, tmp_path / "scenario.json")
    assert cli.main(["run", "--scenario", "before-fix", *[a for s in SHORT for a in ("--set", s)],
                     "--format", "json"]) == 0
    printed = capsys.readouterr().out
    doc = json.loads(exported)
    assert doc["scenario"]["name"] == "before-fix" and doc["scenario"]["checks"]
    assert doc == json.loads(printed)


async def test_the_compare_export_is_the_document_the_cli_prints(app, tmp_path, capsys):
    """e on the Compare screen writes what `compare --strategy ... --format json` prints: the axis,
    one column (label, TOML-form config, metrics) per strategy, the scenario."""
    async with app.run_test(size=(120, 40)) as pilot:
        app.load_scenario("linux-6.19")
        for edit in SHORT:
            assert app.apply_edit(*edit.split("=", 1)) is None
        await pilot.press("3")
        await wait_until(pilot, lambda: len(app.compare_sessions) == 3
                         and all(s.state == "paused" for s in app.compare_sessions), what="three variants")
        await pilot.press("space")
        await wait_until(pilot, lambda: all(s.state == "finished" for s in app.compare_sessions),
                         what="every variant to finish")
        exported = await export_json(pilot, tmp_path / "cmp.json")
    names = app.compare_names
    assert names == ["sync", "deferred", "batched"]
    assert cli.main(["compare", "--scenario", "linux-6.19", *[a for s in SHORT for a in ("--set", s)],
                     *[a for n in names for a in ("--strategy", n)], "--format", "json"]) == 0
    printed = capsys.readouterr().out
    doc = json.loads(exported)
    assert doc["axis"] == "strategy" and [c["label"] for c in doc["columns"]] == names
    assert doc["columns"][0]["config"]["run"]["duration"] == "5ms"
    assert doc == json.loads(printed)
    assert exported == printed


async def test_save_as_asks_before_replacing_a_file_and_refuses_a_foreign_toml(app, tmp_path):
    from explorer.tui.screens.confirm_quit import ConfirmReplace

    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    other = tmp_path / "other.toml"
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+w")
        await save_as(pilot, other)
        first = other.read_text()
        assert app.apply_edit("kernel.cpus", "4") is None
        app.path = None  # as after loading a scenario: other.toml is now somebody else's file
        await pilot.press("ctrl+w")
        dialog = app.screen
        offered = [str(o.id) for o in dialog.query_one("#files").options]
        assert offered == ["other.toml"]  # pyproject.toml is not offered as a target
        await pilot.press("ctrl+u")
        await paste(pilot, "pyproject.toml")
        await pilot.press("enter")
        await wait_until(pilot, lambda: "[project]" in str(dialog.query_one("#problem").render()), what="the refusal")
        assert app.screen is dialog
        problem = str(dialog.query_one("#problem").render())
        assert "not a pgtable-explorer config" in problem and "[project]" in problem
        assert (tmp_path / "pyproject.toml").read_text() == '[project]\nname = "x"\n'
        await pilot.press("ctrl+u")
        await paste(pilot, str(other))
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmReplace), what="the replace question")
        await pilot.press("n")  # keep it
        await wait_until(pilot, lambda: app.screen is dialog, what="back in the dialog")
        assert other.read_text() == first and "not replaced" in str(dialog.query_one("#problem").render())
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmReplace), what="the replace question")
        await pilot.press("y")
        await wait_until(pilot, lambda: not isinstance(app.screen, FileDialog), what="the dialog to close")
        assert tomllib.loads(other.read_text())["kernel"]["cpus"] == 4 and not app.dirty


async def test_loading_a_scenario_or_opening_with_unsaved_changes_asks(app, tmp_path):
    from explorer.tui.screens.choice import ChoiceModal

    async with app.run_test(size=(100, 30)) as pilot:
        assert app.apply_edit("kernel.cpus", "4") is None
        await pilot.press("ctrl+l")
        await wait_until(pilot, lambda: isinstance(app.screen, ChoiceModal), what="the scenario list")
        app.screen.dismiss("before-fix")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmQuit), what="the question")
        await wait_for_text(pilot, "before you load scenario before-fix", "Cancel (esc)")
        await pilot.press("escape")  # cancel: the edit stays
        await wait_until(pilot, lambda: not isinstance(app.screen, ConfirmQuit), what="the question to close")
        assert app.config["kernel"]["cpus"] == 4 and app.dirty and app.scenario != "before-fix"
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmQuit), what="the question before open")
        await pilot.press("s")  # save first: no file yet, so a name is asked, then the file dialog opens
        await wait_until(pilot, lambda: isinstance(app.screen, FileDialog), what="save as")
        await pilot.press("ctrl+u")
        await paste(pilot, str(tmp_path / "kept.toml"))
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, FileDialog) and app.screen.button == "Open",
                         what="the open dialog")
        assert tomllib.loads((tmp_path / "kept.toml").read_text())["kernel"]["cpus"] == 4
        await pilot.press("escape")
        # a freshly loaded preset is the preset: not modified, and no file of its own
        app.load_scenario("before-fix")
        assert not app.dirty and app.path is None
        await wait_for_text(pilot, "before-fix", absent=("modified",))
        assert app.apply_edit("kernel.cpus", "2") is None
        await pilot.press("ctrl+l")
        await wait_until(pilot, lambda: isinstance(app.screen, ChoiceModal), what="the scenario list")
        app.screen.dismiss("linux-6.19")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmQuit), what="the question")
        await pilot.press("d")
        await wait_until(pilot, lambda: app.scenario == "linux-6.19", what="the scenario loaded")
        assert not app.dirty


async def test_the_minimal_checkbox_shows_its_state_without_colour(app):
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+k")
        await wait_until(pilot, lambda: isinstance(app.screen, FileDialog), what="the dialog")
        await wait_for_text(pilot, "▐✓▌ minimal")
        app.screen.query_one("#minimal").toggle()
        await wait_for_text(pilot, "▐ ▌ minimal")


async def test_the_file_list_filters_fuzzy_as_the_name_is_typed(tmp_path):
    from textual.app import App
    from textual.widgets import OptionList

    for name in ("alpha.toml", "before-fix.toml", "good.toml", "notes.txt"):
        (tmp_path / name).write_text("")
    dialog = FileDialog("Open", "suggested.toml", "Open", lambda path, minimal: None, folder=tmp_path)

    class One(App[None]):
        def on_mount(self) -> None:
            self.push_screen(dialog)

    async with One().run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: dialog.query("#files"), what="the dialog")
        files = dialog.query_one("#files", OptionList)
        assert dialog.shown == ["alpha.toml", "before-fix.toml", "good.toml"]  # the suggested name hides none
        await pilot.press("b", "f")  # replaces the selected suggestion; its letters in order
        await wait_until(pilot, lambda: dialog.shown == ["before-fix.toml"], what="the filtered list")
        assert files.option_count == 1
        await pilot.press("z")
        await wait_until(pilot, lambda: dialog.shown == [], what="nothing matching")
        await wait_for_text(pilot, "no file matches 'bfz'")
        await pilot.press("ctrl+u", "o", "o")  # good's two o's together score above before-fix's
        await wait_until(pilot, lambda: dialog.shown == ["good.toml", "before-fix.toml"], what="good first")
        files.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: dialog.query_one("#path").value == "good.toml", what="the pick")
