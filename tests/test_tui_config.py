"""The config explorer: tree, editing with validation in place, ?, /, show-all, plugin choices,
scenarios (list and palette), workloads."""

from __future__ import annotations

import re

from explorer.tui.screens.choice import ChoiceModal
from explorer.tui.screens.config import ConfigScreen
from explorer.tui.screens.param_info import ParamInfo
from explorer.tui.widgets.config_tree import ConfigTree
from explorer.tui.widgets.param_detail import ParamDetail
from tests.conftest import make_config
from tests.tui_helpers import jump_to, make_app, paste, screen_text, wait_for_text, wait_until


def cursor_key(app) -> str | None:
    node = app.screen.query_one(ConfigTree).cursor_node
    return node.data if node is not None else None


async def test_tree_shows_every_section_with_values(app):
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, ConfigScreen), what="the Config screen")
        # the sections, a value, and the footer's keys (drawn last: wait for what is read)
        await wait_for_text(pilot, "Kernel", "Strategy", "IOMMU", "Workloads", "workqueue_delay", "20us",
                            "⏎ Edit", "? Info", "/ Search")


async def test_search_jumps_to_a_parameter(app):
    async with app.run_test(size=(100, 30)) as pilot:
        await jump_to(pilot, "workqueue_delay")
        assert cursor_key(app) == "kernel.workqueue_delay"
        # help text is searched too
        await jump_to(pilot, "kworker is woken")
        assert cursor_key(app) == "kernel.workqueue_delay"


async def test_edit_validates_as_you_type_and_explains_in_place(app):
    async with app.run_test(size=(100, 30)) as pilot:
        await jump_to(pilot, "workqueue_delay")
        await pilot.press("enter")
        detail = app.screen.query_one(ParamDetail)
        assert detail.editing
        await pilot.press("ctrl+u")
        await paste(pilot, "fast")
        await wait_for_text(pilot, "✗")
        assert "fast" in str(detail.query_one("#edit-error").render())
        await pilot.press("enter")  # refused: nothing changes
        assert detail.editing and app.config["kernel"]["workqueue_delay"] == 20_000
        await pilot.press("ctrl+u", "4", "0", "u", "s", "enter")
        await wait_until(pilot, lambda: not detail.editing, what="the edit to be applied")
        assert app.config["kernel"]["workqueue_delay"] == 40_000
        assert app.dirty and app.origins["kernel.workqueue_delay"] == "edited"
        await wait_for_text(pilot, "● workqueue_delay", "40us", "● modified (not saved)")


async def test_a_cross_field_problem_is_explained_in_place(app):
    async with app.run_test(size=(100, 30)) as pilot:
        await jump_to(pilot, "workload.vmalloc-huge.cpus")
        assert cursor_key(app) == "workload.vmalloc-huge.cpus"
        await pilot.press("enter", "ctrl+u", "1", "2", "enter")
        detail = app.screen.query_one(ParamDetail)
        assert detail.editing
        await wait_until(pilot, lambda: "CPU 12 does not exist" in str(detail.query_one("#edit-error").render()),
                         what="the cross-field error")
        await pilot.press("escape")
        assert not detail.editing and app.config["workload"][0]["cpus"] == "all"


async def test_question_mark_shows_type_default_origin_and_declaring_plugin(app):
    async with app.run_test(size=(100, 30)) as pilot:
        await jump_to(pilot, "iommu.params.invalidate_per_mm")
        await pilot.press("question_mark")
        assert isinstance(app.screen, ParamInfo)
        await wait_for_text(pilot, "type", "duration", "default", "1us", "current", "from", "declared by",
                            "IOMMU model generic", "plugin generic", "built-in")
        await pilot.press("escape")
        await jump_to(pilot, "kernel.cpus")
        await pilot.press("question_mark")
        await wait_for_text(pilot, "int", "1 .. 4096", "pgtable-explorer", "core")


async def test_show_all_reveals_inactive_parameters_dimmed(app):
    async with app.run_test(size=(100, 30)) as pilot:
        tree = app.screen.query_one(ConfigTree)
        # built (so that what is missing is missing, not yet to come)
        await wait_until(pilot, lambda: tree.find("kernel.workqueue_delay") is not None, what="the tree")
        assert tree.find("strategy.params.batch@batched") is None
        await pilot.press("a")
        assert app.show_all
        node = tree.find("group:strategy:batched")
        assert node is not None
        node.expand()
        await wait_until(pilot, lambda: tree.find("strategy.params.batch@batched") is not None, what="the leaf")
        leaf = tree.find("strategy.params.batch@batched")
        assert leaf is not None and "dim" in str(leaf.label.spans) + str(leaf.label.style)
        await wait_for_text(pilot, "not selected")
        await pilot.press("a")
        assert tree.find("strategy.params.batch@batched") is None


async def test_choosing_a_strategy_from_every_loaded_plugin(app):
    async with app.run_test(size=(100, 30)) as pilot:
        await jump_to(pilot, "strategy.name")
        await pilot.press("enter")
        assert isinstance(app.screen, ChoiceModal)
        modal = app.screen
        assert [v for v, _, _ in modal.options] == sorted(app.registry.strategies)
        await wait_for_text(pilot, "deferred", "batched")
        ids = [v for v, _, _ in modal.options]
        from textual.widgets import OptionList

        modal.query_one(OptionList).highlighted = ids.index("batched")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.config["strategy"]["name"] == "batched", what="the choice")
        assert app.screen.query_one(ConfigTree).find("strategy.params.batch") is not None


async def test_a_boolean_toggles_and_dependent_sections_go_inactive(app):
    async with app.run_test(size=(100, 30)) as pilot:
        await jump_to(pilot, "kernel.iommu_sva")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.config["kernel"]["iommu_sva"] is False, what="the toggle")
        await wait_for_text(pilot, "inactive: IOMMU_SVA=n", "inactive: ASYNC_KERNEL_PGTABLE_FREE=n")
        await pilot.press("d")  # back to the default
        assert app.config["kernel"]["iommu_sva"] is True


async def test_scenarios_from_the_list_and_the_palette(app):
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("l")
        assert isinstance(app.screen, ChoiceModal)
        from textual.widgets import OptionList

        ids = [v for v, _, _ in app.screen.options]
        assert "before-fix" in ids and "linux-6.19" in ids
        app.screen.query_one(OptionList).highlighted = ids.index("before-fix")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.scenario == "before-fix", what="the scenario")
        assert app.config["strategy"]["name"] == "sync-unsafe"
        # and from the command palette
        await pilot.press("ctrl+p")
        await paste(pilot, "load scenario: linux-6.19")
        await wait_for_text(pilot, "Load scenario: linux-6.19")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.config["strategy"]["name"] == "deferred", what="the scenario")
        assert app.scenario == "linux-6.19"


async def test_workload_sources_can_be_removed_and_added(app):
    async with app.run_test(size=(100, 30)) as pilot:
        await jump_to(pilot, "workload.hot-remove.rate")
        await pilot.press("minus")
        await wait_until(pilot, lambda: "hot-remove" not in [w["name"] for w in app.config["workload"]],
                         what="the removal")
        await pilot.press("plus")
        assert isinstance(app.screen, ChoiceModal)
        # the source not in the config first, then the others (each would be a second instance)
        assert [name for _, name, _ in app.screen.options] == [
            "hot-remove", "kernel-tlb-flush", "script", "cpa-collapse#1", "user-teardown#1", "vmalloc-huge#1"]
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.config["workload"][-1]["name"] == "hot-remove", what="the new source")


async def test_plus_adds_a_second_instance_of_a_source_already_there(app):
    async with app.run_test(size=(120, 40)) as pilot:
        before = [w["name"] for w in app.config["workload"]]
        assert before.count("vmalloc-huge") == 1
        await pilot.press("plus")
        assert isinstance(app.screen, ChoiceModal)
        values = [v for v, _, _ in app.screen.options]
        assert "vmalloc-huge" in values  # already in the config, offered again
        app.screen.query_one("#choices").highlighted = values.index("vmalloc-huge")
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(app.config["workload"]) == len(before) + 1, what="the new instance")
        assert [w["name"] for w in app.config["workload"]] == [*before, "vmalloc-huge"]
        # it is vmalloc-huge#1, with keys of its own, and the cursor is on it
        tree = app.screen.query_one(ConfigTree)
        await wait_until(pilot, lambda: cursor_key(app) == "group:workload:vmalloc-huge#1", what="the cursor")
        assert "workload.vmalloc-huge#1.rate" in tree.entries
        assert app.apply_edit("workload.vmalloc-huge#1.rate", "10/s") is None
        assert app.config["workload"][-1]["rate"] == 10.0 and app.config["workload"][0]["rate"] == 5000.0


#: A config with the same workload source twice (docs/config.md): the second is ``vmalloc-huge#1``.
TWICE = """\
[[workload]]
name = "vmalloc-huge"

[[workload]]
name = "vmalloc-huge"
cpus = "0-3"
"""


async def test_the_same_workload_source_twice_has_keys_of_its_own(registry, tmp_path):
    path = tmp_path / "twice.toml"
    path.write_text(TWICE)
    app = make_app(registry, config_path=str(path), start="config")
    async with app.run_test(size=(120, 40)) as pilot:
        # search lists both instances (an option id each), and jumps to the second's key
        await pilot.press("slash")
        await paste(pilot, "vmalloc-huge cpus")
        await wait_until(pilot, lambda: len(getattr(app.screen, "hits", ())) >= 2, what="the search hits")
        hits = [e.key for e in app.screen.hits]
        assert hits[:2] == ["workload.vmalloc-huge.cpus", "workload.vmalloc-huge#1.cpus"]
        await pilot.press("escape")
        await jump_to(pilot, "run.seed")  # the QA repro: this crashed with DuplicateID
        assert cursor_key(app) == "run.seed"

        # each instance its own sub-menu, with its own values
        tree = app.screen.query_one(ConfigTree)
        first, second = tree.find("group:workload:vmalloc-huge"), tree.find("group:workload:vmalloc-huge#1")
        assert first is not None and second is not None
        assert tree.entries["workload.vmalloc-huge.cpus"].value == "all"
        assert tree.entries["workload.vmalloc-huge#1.cpus"].value == "0-3"
        assert tree.entries["workload.vmalloc-huge#1.cpus"].origin == "file"
        await wait_for_text(pilot, "vmalloc-huge#1")

        # editing the second changes only config["workload"][1], and its origin only
        await jump_to(pilot, "workload.vmalloc-huge#1.rate")
        assert cursor_key(app) == "workload.vmalloc-huge#1.rate"
        await pilot.press("enter", "ctrl+u")
        await paste(pilot, "10/s")
        await pilot.press("enter")
        await wait_until(pilot, lambda: not app.screen.query_one(ParamDetail).editing, what="the edit")
        # (the first instance keeps the source's own default rate)
        assert app.config["workload"][1]["rate"] == 10.0 and app.config["workload"][0]["rate"] == 200.0
        assert app.origins.get("workload[1].rate") == "edited" and "workload[0].rate" not in app.origins
        assert tree.entries["workload.vmalloc-huge#1.rate"].shown_value.startswith("10")
        assert tree.entries["workload.vmalloc-huge.rate"].shown_value.startswith("200")

        # ? says which instance, and where its value came from
        await pilot.press("question_mark")
        assert isinstance(app.screen, ParamInfo)
        await wait_for_text(pilot, "workload.vmalloc-huge#1.rate", "override (edited here)")
        await pilot.press("escape")

        # w sweeps that instance's key
        await pilot.press("w")
        await wait_until(pilot, lambda: app.screen.focused is not None and app.screen.__class__.__name__
                         == "SweepAxisModal", what="the axis modal")
        await paste(pilot, "10/s,20/s")
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(app.sweep_state.axes), what="the axis")
        assert [a.key for a in app.sweep_state.axes] == ["workload.vmalloc-huge#1.rate"]

        # - removes that instance only; the first keeps its origins
        await jump_to(pilot, "workload.vmalloc-huge#1.cpus")
        await pilot.press("minus")
        await wait_until(pilot, lambda: len(app.config["workload"]) == 1, what="the removal")
        assert app.config["workload"][0]["cpus"] == "all"
        assert not any(k.startswith("workload[1].") for k in app.origins)


async def test_d_resets_to_the_default_and_the_origin_says_default(app):
    async with app.run_test(size=(120, 40)) as pilot:
        await jump_to(pilot, "workqueue_delay")
        assert app.apply_edit("kernel.workqueue_delay", "40us") is None
        assert app.model().by_key()["kernel.workqueue_delay"].origin == "edited"
        await pilot.press("d")
        await wait_until(pilot, lambda: app.config["kernel"]["workqueue_delay"] == 20_000, what="the reset")
        assert app.model().by_key()["kernel.workqueue_delay"].origin == "default"
        await pilot.press("question_mark")
        assert isinstance(app.screen, ParamInfo)
        await wait_until(pilot, lambda: re.search(r"\bfrom +default\b", screen_text(app)) is not None,
                         what="the origin: default")
        assert "override (edited here)" not in screen_text(app)


def test_an_edit_names_a_workloads_key_as_the_tree_lists_it(registry):
    # a problem an edit causes elsewhere names the key the tree shows (and --set takes), not workload[0]
    app = make_app(registry, make_config(registry, "workload.vmalloc-huge.cpus=4-7"), start="config")
    problem = app.apply_edit("kernel.cpus", "2")
    assert problem is not None and problem.startswith("workload.vmalloc-huge.cpus: CPU range '4-7' goes past")
    assert "workload.vmalloc-huge.cpus" in app.model().by_key()
