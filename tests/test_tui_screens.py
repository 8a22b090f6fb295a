"""Compare, Plugins, F1 help, the command palette, themes; and a few snapshot-style checks of the
main screens at 80x24 and 120x40 (the screen as text: what it says, that it fits)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from textual.widgets import DataTable, SelectionList

from explorer.plugins import load_registry
from explorer.session import Snapshot
from explorer.tui.actions import ACTIONS
from explorer.tui.screens.compare import CompareScreen, best_indexes, compare_table
from explorer.tui.screens.compare_setup import CompareSetup
from explorer.tui.screens.help import HelpScreen
from explorer.tui.screens.text_modal import TextModal
from tests.conftest import TESTS, make_config
from tests.tui_helpers import SHORT, jump_to, make_app, screen_text, wait_for_drawn, wait_for_text, wait_until

BROKEN = TESTS / "plugins" / "broken"


def test_best_value_marking():
    assert best_indexes([3, 1, 2], "low") == {1}
    assert best_indexes([3, 1, 3], "high") == {0, 2}
    assert best_indexes([1, 1, 1], "low") == set()
    assert best_indexes([None, 5], "low") == set()
    assert best_indexes([5, 6], None) == set()
    assert best_indexes([3, 1, 2], "low", eligible={0, 2}) == {2}
    assert best_indexes([3, 1, 2], "low", eligible={2}) == set()  # nothing to compare it with


def _snap(state: str, flushes: int, **violations: int) -> Snapshot:
    data = {"flushes": flushes, "now_ns": 1000,
            "violations": {k: {"total": n, "by_source": {}} for k, n in violations.items()},
            "unlinked_by_source": {"total": 5, "by_source": {"vmalloc-huge": 5}}}
    return Snapshot(1, state, 0.0, data)


def _rows(table) -> dict[str, list[str]]:
    """The compare table as {row label: [cell text per variant]}."""
    labels = [str(c) for c in table.columns[0]._cells]
    out = {}
    for i, label in enumerate(labels):
        out[label.strip()] = [str(col._cells[i]) for col in table.columns[1:]]
    return out


def test_an_unsafe_or_unfinished_variant_never_takes_a_star():
    snaps = [_snap("finished", 0, unflushed_free=7), _snap("finished", 9), _snap("finished", 5),
             _snap("running", 1)]
    rows = _rows(compare_table(["a", "b", "c", "d"], snaps, [s.state for s in snaps], [""] * 4))
    assert rows["verdict"] == ["✗ unsafe", "✓ safe", "✓ safe", "… none yet"]
    # a (no flush at all) is unsafe, d (1 flush so far) is still running: c is best of b and c
    assert rows["flushes"] == ["0", "9", "★ 5", "1"]
    assert rows["unflushed free"][0] == "7"
    assert str(compare_table(["a", "b", "c", "d"], snaps, [s.state for s in snaps], [""] * 4).caption) == \
        "✗ a is unsafe: unflushed_free 7"


def test_compare_table_warns_when_the_variants_did_not_see_the_same_workload():
    a, b = _snap("finished", 3), _snap("finished", 3)
    b.data["unlinked_by_source"]["by_source"]["vmalloc-huge"] = 2  # type: ignore[index]
    table = compare_table(["a", "b"], [a, b], ["finished", "finished"], ["", ""])
    assert "not the same workload" in str(table.caption) and "vmalloc-huge: a 5, b 2" in str(table.caption)
    assert "unsafe" not in str(table.caption)
    # while one is still running, a difference means nothing yet
    assert compare_table(["a", "b"], [a, b], ["finished", "running"], ["", ""]).caption is None


async def test_compare_runs_strategies_side_by_side_and_marks_the_best(registry):
    app = make_app(registry, make_config(registry, *SHORT), start="compare")
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: len(app.compare_sessions) == 3, what="three variants")
            assert app.compare_names == ["sync", "deferred", "batched"]
            await wait_until(pilot, lambda: all(s.state == "paused" for s in app.compare_sessions))
            await pilot.press("space")
            await wait_until(pilot, lambda: all(s.state == "finished" for s in app.compare_sessions),
                             what="every variant to finish")
            app.screen.apply_latest()
            text = await wait_for_text(pilot, "sync", "deferred", "batched", "flushes", "sleep in atomic",
                                       "unflushed free", "✗ batched is unsafe: leaked")
            # 5 ms is shorter than batched's 10 ms age bound: it leaks every table, so it is unsafe
            # and takes no ★, although it issued no flush at all; sync and deferred are ranked.
            assert text.count("✗ unsafe") == 1 and text.count("✓ safe") == 2
            assert "✗ batched is unsafe: leaked" in text
            flush_row = next(line for line in text.splitlines() if line.lstrip().startswith("flushes "))
            sync_cell, deferred_cell, batched_cell = flush_row.split("│")[1:4]
            assert batched_cell.split() == ["0"] and "★" in deferred_cell and "★" not in sync_cell
            # identical workload and seed: the same tables were freed under each strategy
            freed = {s.latest.data["kernel_tables_unlinked"] for s in app.compare_sessions}
            assert len(freed) == 1
            flushes = [s.latest.data["flushes"] for s in app.compare_sessions]
            assert flushes[2] < flushes[1] < flushes[0]  # batched < deferred < sync
            assert app.compare_sessions[2].latest.data["violations"]["leaked"]["total"] > 0
            await pilot.press("y")
            assert '"columns"' in app.clipboard and '"label": "batched"' in app.clipboard
    finally:
        app.shutdown_sessions()


async def test_choosing_what_to_compare(registry):
    app = make_app(registry, make_config(registry, *SHORT), start="compare")
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_until(pilot, lambda: len(app.compare_sessions) == 3)
            await pilot.press("c")
            assert isinstance(app.screen, CompareSetup)
            sl = app.screen.query_one(SelectionList)
            sl.deselect("batched")
            await pilot.pause()
            await pilot.click("#ok")
            await wait_until(pilot, lambda: app.compare_names == ["deferred", "sync"], what="the new variants")
            assert len(app.compare_sessions) == 2
            await pilot.press("c")
            app.screen.query_one(SelectionList).deselect("sync")
            await pilot.click("#ok")
            assert isinstance(app.screen, CompareSetup)  # one is not a comparison
            await wait_for_text(pilot, "pick 2 to 4")
            await pilot.press("escape")
            assert isinstance(app.screen, CompareScreen)
    finally:
        app.shutdown_sessions()


async def test_in_the_chooser_space_ticks_and_enter_compares(registry):
    app = make_app(registry, make_config(registry, *SHORT), start="compare")
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_until(pilot, lambda: len(app.compare_sessions) == 3)
            await pilot.press("c")
            assert isinstance(app.screen, CompareSetup)
            sl = app.screen.query_one(SelectionList)
            assert app.screen.focused is sl
            await wait_for_text(pilot, "space ticks", "enter compares")
            names = [str(sl.get_option_at_index(i).value) for i in range(sl.option_count)]
            assert names[0] == "batched" and sl.highlighted == 0  # space acts on the first at once
            # ticked and unticked are different characters, not only colours
            boxes = {line.split("▌")[1].split()[0]: line.split("▐")[1][0]
                     for line in screen_text(app).splitlines() if "▐" in line and "▌" in line}
            assert {k: v for k, v in boxes.items() if k in names} == {
                "batched": "✓", "deferred": "✓", "sync": "✓", "sync-unsafe": " ", "v3-flush-deferred": " "}
            assert boxes["free"] == "●" and boxes["IOMMU"] == " "  # the kind compared, by a character too
            # typing filters (fuzzy); the ticks of the names it hides stay
            await pilot.press("s", "y", "n", "c", "-")
            await wait_until(pilot, lambda: app.screen.shown == ["sync-unsafe"], what="the filtered list")
            await pilot.press("space")  # ticks sync-unsafe
            await wait_until(pilot, lambda: "sync-unsafe" in sl.selected, what="sync-unsafe ticked")
            await wait_for_text(pilot, "▐✓▌ sync-unsafe")
            for _ in range(5):
                await pilot.press("backspace")
            await wait_until(pilot, lambda: sl.option_count == 5, what="the whole list again")
            assert set(sl.selected) == {"batched", "deferred", "sync", "sync-unsafe"}
            await pilot.press("b", "a", "t")
            await wait_until(pilot, lambda: app.screen.shown == ["batched"], what="batched alone")
            await pilot.press("space")  # unticks batched
            await wait_until(pilot, lambda: "batched" not in sl.selected, what="batched unticked")
            await wait_for_text(pilot, "▐ ▌ batched")
            await pilot.press("enter")  # confirms: it does not tick batched again
            await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen), what="the chooser to close")
            assert app.compare_names == ["deferred", "sync", "sync-unsafe"] and len(app.compare_sessions) == 3
    finally:
        app.shutdown_sessions()


async def test_plugins_screen_lists_loaded_and_failed(tmp_path):
    reg = load_registry([BROKEN], entry_points=False)
    app = make_app(reg, make_config(reg, *SHORT), start="plugins", plugins_dirs=[BROKEN])
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_text(pilot, "deferred", "strategy", "built-in", "IOMMU model", "generic", "raises_at_import",
                            f"Failed to load: {len(reg.failures)}", "RuntimeError", "directory")
        failed = app.screen.query_one("#failed", DataTable)
        failed.focus()
        await pilot.press("enter")
        assert isinstance(app.screen, TextModal)
        assert "Traceback" in app.screen.body
        await pilot.press("escape")
        app.screen.query_one("#loaded", DataTable).focus()
        await pilot.press("i")
        assert isinstance(app.screen, TextModal) and "registers" not in app.screen.title_text


async def test_f1_help_lists_every_key_of_the_screen_and_themes(registry):
    app = make_app(registry, make_config(registry, *SHORT), start="config")
    async with app.run_test(size=(120, 70)) as pilot:
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await wait_for_text(pilot, *(s for a in ACTIONS if a.screen in ("config", "app")
                                     for s in (f"{a.display_key} ", a.short)))
        await pilot.press("escape")
        await pilot.press("2", "f1")
        await wait_for_text(pilot, "Run/Pause", "Faster", "space")
        await pilot.press("escape")
        # themes: ctrl+t opens the theme picker
        await pilot.press("ctrl+t")
        assert app.screen.__class__.__name__ == "CommandPalette"
        await pilot.press("escape")
    app.shutdown_sessions()


async def _here(pilot) -> tuple[str, str]:
    """The F1 help's "Here:" title and text (what it says of the focused widget), once it is up.
    (Its widgets, not the whole screen: rendering this one a few times was most of the test's time.)"""
    app = pilot.app
    await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen) and bool(app.screen.query("#help-here")),
                     what="the help")
    console = Console(width=100, file=io.StringIO(), color_system=None)
    console.print(app.screen.here.body)
    return str(app.screen.query_one("#help-here-title").render()), console.file.getvalue()


async def test_f1_help_starts_with_what_the_focused_widget_shows(registry):
    app = make_app(registry, make_config(registry, *SHORT, "strategy.name=batched"), start="config")
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            # Config: the parameter under the cursor, as ? shows it
            await jump_to(pilot, "strategy.params.batch")
            await pilot.press("f1")
            title, text = await _here(pilot)
            help_text = app.model().by_key()["strategy.params.batch"].param.help
            assert title == "Here: strategy.params.batch" and help_text.split()[0] in text and "default" in text
            await pilot.press("escape")
            # Run: the tab that has the focus; the log filter belongs to the Log tab
            await pilot.press("2")
            await wait_for_drawn(pilot, app, ("paused",))
            await pilot.press("f1")
            title, text = await _here(pilot)
            assert title == "Here: Queues tab" and "pending list" in text
            await pilot.press("escape", "f")
            await wait_until(pilot, lambda: getattr(app.focused, "id", None) == "log-filter", what="the filter")
            await pilot.press("f1")
            assert (await _here(pilot))[0] == "Here: Log tab"
            await pilot.press("escape", "escape")
            # Sweep: the results column under the cursor
            app.sweep_state.set_axis("strategy.params.batch", "16,64")
            await pilot.press("5")
            screen = app.screen
            screen.refresh_all()
            table = screen.query_one("#sweep-results", DataTable)
            table.focus()
            headers = [str(c.label) for c in table.columns.values()]
            table.move_cursor(column=headers.index("peak queue"))
            await pilot.press("f1")
            title, text = await _here(pilot)
            assert title == "Here: the column peak queue" and "pending at once" in text
            await pilot.press("escape")
            table.move_cursor(column=headers.index("strategy.params.batch"))
            await pilot.press("f1")
            title, text = await _here(pilot)
            assert title == "Here: the column strategy.params.batch" and help_text.split()[0] in text
    finally:
        app.shutdown_sessions()


async def test_the_command_palette_has_every_action(registry):
    app = make_app(registry, make_config(registry, *SHORT), start="config")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        titles = {c.title for c in app.get_system_commands(app.screen)}
        for a in ACTIONS:
            if a.id in ("quit", "theme", "scenario_key", "quit_key", "back"):  # Textual's own, or a second key
                continue
            assert any(a.title in t for t in titles), a.id
        assert "Quit" in titles and "Theme" in titles
        assert {f"Load scenario: {n}" for n in registry.scenarios} <= titles
        assert {f"Strategy: {n}" for n in registry.strategies} <= titles
        # a command for another screen switches to it and runs there
        cmd = next(c for c in app.get_system_commands(app.screen) if c.title == "Run: Step one batch")
        await cmd.callback()
        await wait_until(pilot, lambda: app.current_mode == "run" and app.session is not None
                         and app.session.latest is not None and app.session.latest.now_ns > 0, what="a step")
    app.shutdown_sessions()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_main_screens_at_80x24_and_120x40(registry, tmp_path, size):
    app = make_app(registry, make_config(registry, *SHORT))
    try:
        async with app.run_test(size=size) as pilot:
            await wait_for_drawn(pilot, app, ("paused",))
            await pilot.press("space")
            await wait_for_drawn(pilot, app, ("finished",))
            shots = {}
            # each screen drawn whole: its own words and the footer's (the last thing drawn)
            for key, name, own in (("2", "run", "Run/Pause"), ("1", "config", "Kernel"), ("4", "plugins", "Loaded:")):
                await pilot.press(key)
                text = await wait_for_text(pilot, own, "Help", "palette")
                lines = text.rstrip("\n").split("\n")
                assert len(lines) == size[1]
                assert all(len(line) <= size[0] for line in lines)
                footer = "\n".join(lines[-2:])  # the Run screen's keys take two lines below 125 columns
                assert "Help" in footer and "palette" in footer, footer  # the footer fits
                shots[name] = text
            assert "flushes" in shots["run"] and "violations" in shots["run"] and "finished" in shots["run"]
            assert "Run/Pause" in shots["run"] and "Step" in shots["run"]
            assert "Kernel" in shots["config"] and "Edit" in shots["config"]
            assert "Loaded:" in shots["plugins"]
            # nothing is cut without a word: the percentiles' labels whole (the wide layout's side
            # column), a long registers cell ends in an ellipsis, columns off to the right are counted
            if size[0] >= 100:
                assert "caller in free path" in shots["run"]
            assert "registers" in shots["plugins"] and "…" in shots["plugins"]
            if size[0] < 100:
                assert "more ▶ (← → scroll)" in shots["plugins"]
                assert "where it lives" not in shots["plugins"]
            else:
                assert "where it lives" in shots["plugins"]  # its head at least (a long path scrolls)
    finally:
        app.shutdown_sessions()


def test_docs_list_every_key_and_show_every_screen():
    from tests.conftest import TESTS

    doc = (TESTS.parent / "docs" / "tui.md").read_text()
    for a in ACTIONS:
        first = a.key.split(",")[0]
        from dataclasses import replace

        assert f"`{replace(a, key=first).display_key}`" in doc and a.help in doc, a.id
    for img in ("run-live", "run-finished-80x24", "config", "info", "search", "compare", "plugins", "run-error",
                "help-run", "palette"):
        assert f"img/{img}.svg" in doc
        assert (TESTS.parent / "docs" / "img" / f"{img}.svg").exists()


def test_the_file_label_is_shortened_to_fit():
    from explorer.tui.widgets.topbar import fit_file

    label = "scenario linux-6.19 (not saved)"
    assert fit_file(label, True, "show-all", None) == ("● modified", label, "show-all")  # not laid out yet
    assert fit_file(label, False, "", 40) == ("", label, "")
    assert fit_file(label, False, "", 29) == ("", "linux-6.19 (not saved)", "")
    assert fit_file(label, True, "", 29) == ("●", "linux-6.19 (not saved)", "")
    assert fit_file(label, True, "show-all", 29) == ("●", "linux-6.19 *", "show-all")
    mark, path, extra = fit_file("configs/experiments/2026/batched-large.toml", True, "show-all", 29)
    assert (mark, extra) == ("●", "") and path.startswith("…") and path.endswith("batched-large.toml")
    assert len(mark) + 1 + len(path) == 29


async def test_at_80_columns_the_top_bar_shows_the_whole_file_label(registry):
    app = make_app(registry, start="config")  # no file: the default scenario, not saved
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            assert app.file_label() == "scenario linux-6.19 (not saved)"
            def top() -> str:
                return screen_text(app).split("\n")[0].rstrip()

            for key in ("1", "2", "4", "5"):
                await pilot.press(key)
                await wait_until(pilot, lambda: top().endswith("linux-6.19 (not saved)"), what=f"the top bar of {key}")
            assert app.apply_edit("kernel.cpus", "4") is None
            await pilot.press("1", "a")  # modified, and show-all on
            await wait_until(pilot, lambda: app.show_all, what="show-all")
            await wait_until(pilot, lambda: top().endswith("● linux-6.19 * show-all"), what="the modified top bar")
            assert len(top()) <= 80, top()
    finally:
        app.shutdown_sessions()


async def test_a_screen_shown_again_has_the_theme_chosen_while_it_was_away(registry):
    """A screen coming back is restyled only when the theme, the stylesheet or the app's state changed
    since it was last shown (explorer.tui.screens.base): here the theme changed, so it is."""
    from explorer.tui.widgets.footer import KeysFooter

    app = make_app(registry, make_config(registry, *SHORT))
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for_drawn(pilot, app, ("paused",))
            run = app.screen
            footer = run.query_one(KeysFooter)
            dark = footer.styles.background
            await pilot.press("1")
            await wait_until(pilot, lambda: app.current_mode == "config", what="the Config screen")
            app.theme = "textual-light"
            await pilot.press("2")
            await wait_until(pilot, lambda: app.screen is run, what="the Run screen")
            await pilot.pause()
            light = footer.styles.background
            run.update_node_styles(animate=False)  # what a full restyle gives
            await pilot.pause()
            assert footer.styles.background == light != dark
    finally:
        app.shutdown_sessions()
