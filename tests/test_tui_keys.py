"""Keys that users' hands expect: q quits (asking first), esc goes back, j/k/g/G move, ? helps
where it means nothing else, pickers filter as you type, the Run footer shows its keys at 80
columns, Compare has its own speed, a stopped run says it starts again from t=0."""

from __future__ import annotations

from textual.widgets import Input

from explorer.config import default_config
from explorer.tui.screens.choice import ChoiceModal, fuzzy_order
from explorer.tui.screens.confirm_quit import ConfirmQuit
from explorer.tui.screens.help import HelpScreen
from explorer.tui.widgets.config_tree import ConfigTree
from tests.conftest import make_config
from tests.tui_helpers import SHORT, make_app, paste, wait_for_drawn, wait_for_screen, wait_for_text, wait_until


async def test_q_quits_asking_first_but_types_in_a_field(app):
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        await wait_for_drawn(pilot, app, ("paused",))
        await pilot.press("f")
        await wait_until(pilot, lambda: isinstance(app.screen.focused, Input), what="the log filter")
        await pilot.press("q")
        assert app.is_running and app.screen.focused.value == "q"
        await pilot.press("escape")  # leaves the filter; does not also go back a screen
        await wait_until(pilot, lambda: not isinstance(app.screen.focused, Input), what="the filter to lose the focus")
        assert app.current_mode == "run"
        assert app.apply_edit("kernel.cpus", "4") is None
        await pilot.press("q")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmQuit), what="the unsaved-changes question")
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, ConfirmQuit), what="the question to close")
        assert app.is_running
        await pilot.press("q")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmQuit))
        await pilot.press("d")
        await wait_until(pilot, lambda: not app.is_running, what="the app to exit")


async def test_esc_goes_back_and_question_mark_helps(app):
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("4", "2")
        await wait_until(pilot, lambda: app.current_mode == "run")
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.current_mode == "plugins", what="back to Plugins")
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.current_mode == "config", what="back to Config")
        await pilot.press("4", "question_mark")  # Plugins: ? is help
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), what="the help")
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.current_mode == "plugins" and not isinstance(app.screen, HelpScreen))


async def test_j_k_g_G_move_in_the_tree_and_tables(app):
    async with app.run_test(size=(100, 30)) as pilot:
        tree = app.screen.query_one(ConfigTree)
        tree.focus()
        await wait_until(pilot, lambda: app.focused is tree and tree.last_line > 0, what="the tree, focused")
        start = tree.cursor_line
        await pilot.press("j", "j")
        assert tree.cursor_line == start + 2
        await pilot.press("k")
        assert tree.cursor_line == start + 1
        await pilot.press("G")
        assert tree.cursor_line == tree.last_line > start + 1
        await pilot.press("g")
        assert tree.cursor_line == 0
        await pilot.press("4")
        await wait_until(pilot, lambda: app.current_mode == "plugins")
        table = app.screen.query_one("#loaded")
        table.focus()
        await pilot.press("j", "j")
        assert table.cursor_row == 2
        await pilot.press("G")
        assert table.cursor_row == table.row_count - 1
        await pilot.press("g", "j", "k")
        assert table.cursor_row == 0


def test_fuzzy_order_matches_letters_in_order_best_first():
    names = ["linux-6.19", "before-fix", "linux-6.19-smmu", "v3-design"]
    assert fuzzy_order("", names) == [0, 1, 2, 3]
    assert fuzzy_order("smmu", names) == [2]
    assert fuzzy_order("bfx", names)[0] == 1
    assert fuzzy_order("zzz", names) == []


async def test_the_scenario_picker_filters_as_you_type(app):
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+l")
        await wait_until(pilot, lambda: isinstance(app.screen, ChoiceModal), what="the scenario list")
        picker = app.screen
        assert len(picker.shown) == len(app.registry.scenarios)
        await pilot.press(*"bfx")
        await wait_until(pilot, lambda: picker.shown[:1] == ["before-fix"], what="the filtered list")
        assert len(picker.shown) < len(app.registry.scenarios)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.scenario == "before-fix", what="the scenario")


async def test_the_run_footer_shows_its_keys_at_80_and_120_columns(registry):
    keys = [f"{key} {word}" for key, word in (("m", "Max"), ("t", "Size"), ("x", "Stop"), ("f", "Filter"),
                                              ("e", "Export"), ("y", "Copy"), ("space", "Run/Pause"), ("f1", "Help"))]

    def footer_has_every_key(text: str) -> bool:
        bottom = "\n".join(text.rstrip("\n").split("\n")[-2:])
        return all(k in bottom for k in keys)

    for size in ((80, 24), (120, 40)):
        app = make_app(registry, make_config(registry, *SHORT))
        try:
            async with app.run_test(size=size) as pilot:
                await wait_for_drawn(pilot, app, ("paused",))
                await wait_for_screen(pilot, footer_has_every_key, f"the footer's keys at {size}")
        finally:
            app.shutdown_sessions()


async def test_compare_has_its_own_speed(registry):
    app = make_app(registry, make_config(registry, *SHORT), start="compare")
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: len(app.compare_sessions) == 3)
            run_speed = app.config["run"]["speed"]
            await pilot.press("minus")
            assert app.compare_speed == 1_000.0 and all(s.speed == 1_000.0 for s in app.compare_sessions)
            await wait_for_text(pilot, "speed 1 ms/s")
            await pilot.press("m")
            assert app.compare_speed == 0.0 and all(s.speed == 0.0 for s in app.compare_sessions)
            await wait_for_text(pilot, "speed max")
            assert app.config["run"]["speed"] == run_speed and not app.dirty  # the Run screen's is untouched
    finally:
        app.shutdown_sessions()


async def test_after_stop_space_says_it_starts_again_from_zero(registry):
    app = make_app(registry, make_config(registry, *SHORT))
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for_drawn(pilot, app, ("paused",))
            await pilot.press("s")
            await wait_until(pilot, lambda: app.session.latest.now_ns > 0, what="a step")
            await pilot.press("x")
            await wait_for_text(pilot, "stopped", "space starts again from t=0")
            await pilot.press("space")
            await wait_until(pilot, lambda: any("starts again from t=0" in str(n.message)
                                                for n in app._notifications), what="the note")
    finally:
        app.shutdown_sessions()


def test_tui_opens_on_a_scenario(registry):
    from explorer import cli

    app = make_app(registry, scenario="before-fix")
    assert app.scenario == "before-fix" and app.config == default_config(registry, "before-fix")
    assert not app.dirty and app.path is None
    assert cli.main(["tui", "x.toml", "--scenario", "before-fix"]) == 2


async def test_search_hits_of_inactive_parameters_name_their_model(app):
    from explorer.tui.screens.search import SearchModal

    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("slash")
        await wait_until(pilot, lambda: isinstance(app.screen, SearchModal), what="the search")
        await paste(pilot, "iommu.params.batch")
        text = await wait_for_text(pilot, "(inactive: IOMMU model arm-smmuv3")
        assert "(inactive: IOMMU model intel-vtd" in text  # two hits of one key, told apart
