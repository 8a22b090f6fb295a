"""The config explorer (menuconfig for this tool): a tree of Kernel, Strategy, IOMMU, Workloads
and Run, with the selected parameter's details and an editor beside it."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Tree

from explorer.config import workload_labels
from explorer.tui.actions import bindings_for
from explorer.tui.focus_help import Here
from explorer.tui.model import Entry, source_name, workload_index
from explorer.tui.screens.base import ExplorerScreen
from explorer.tui.screens.choice import ChoiceModal
from explorer.tui.screens.param_info import ParamInfo
from explorer.tui.screens.search import SearchModal
from explorer.tui.screens.text_modal import TextModal
from explorer.tui.widgets.config_tree import ConfigTree
from explorer.tui.widgets.footer import KeysFooter
from explorer.tui.widgets.param_detail import ParamDetail
from explorer.tui.widgets.topbar import TopBar

SECTION_TEXT = {
    "kernel": "Kernel\nThe simulated machine and kernel: CPUs, memory, CONFIG_ASYNC_KERNEL_PGTABLE_FREE and "
    "CONFIG_IOMMU_SVA, the workqueue delay and the costs of locks and frees.",
    "strategy": "Strategy\nThe free strategy: what pagetable_free_kernel() does with a kernel page table. "
    "Every loaded strategy plugin is offered (enter on 'name'); its parameters appear below it.",
    "iommu": "IOMMU\nThe IOMMUs: how many, how many mms are SVA-bound, device traffic (walks and kernel "
    "probes), and the model (a plugin) with its cache geometry and invalidation costs.",
    "workload": "Workloads\nThe sources of page-table frees (vmalloc, CPA, hot-remove, user teardown, ...), "
    "each with its rate, burst and CPUs. + adds a source, - removes the selected one.",
    "run": "Run\nSimulated duration, seed, drain time and the live speed (simulated µs per wall second; "
    "0 = as fast as possible).",
}


def _first_sentence(text: str, limit: int = 110) -> str:
    text = " ".join(text.split())
    cut = text.find(". ")
    if 0 < cut < limit:
        return text[: cut + 1]
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ConfigScreen(ExplorerScreen):
    BINDINGS = bindings_for("config")
    AUTO_FOCUS = "ConfigTree"

    def compose(self) -> ComposeResult:
        yield TopBar("config")
        with Horizontal(id="config-body"):
            yield ConfigTree(id="config-tree")
            yield ParamDetail(id="config-detail")
        yield KeysFooter(compact=True)

    def on_mount(self) -> None:
        self.refresh_config()

    def config_changed(self) -> None:
        self.refresh_config()

    def on_screen_resume(self) -> None:
        self.refresh_config()

    # -- drawing
    def refresh_config(self, keep: str | None = None) -> None:
        app = self.xapp
        model = app.model()
        tree = self.query_one(ConfigTree)
        tree.rebuild(model, app.show_all, keep)
        self.query_one(TopBar).set_file(app.file_label(), app.dirty, "show-all" if app.show_all else "")
        self._show_current()

    def _show_current(self) -> None:
        tree = self.query_one(ConfigTree)
        node = tree.cursor_node
        detail = self.query_one(ParamDetail)
        if detail.editing:
            return
        data = node.data if node is not None else None
        entry = tree.entries.get(data) if data else None
        if entry is not None:
            detail.show_entry(entry)
        elif data and data.startswith("section:"):
            detail.show_entry(None, SECTION_TEXT.get(data[8:], data[8:]))
        elif data and data.startswith("group:"):
            _, sec, name = data.split(":", 2)
            detail.show_entry(None, self._group_text(sec, name))
        else:
            detail.show_entry(None, "")

    def _group_text(self, section: str, label: str) -> str:
        reg = self.xapp.registry
        kind = {"workload": "workload", "strategy": "strategy", "iommu": "iommu"}[section]
        name = source_name(label) if kind == "workload" else label  # vmalloc-huge#1 is a vmalloc-huge
        cls = reg.table(kind).get(name)
        info = reg.provider.get((kind, name))
        where = f"\n\nplugin {info.name} {reg.version_of(kind, name)} ({info.origin}: {info.location})" if info else ""
        return f"{label}\n{(getattr(cls, 'help', '') or '').strip()}{where}"

    def focus_help(self) -> Here | None:
        """F1: the parameter (or section, or plugin) under the cursor, as ``?`` shows it."""
        from rich.console import Group
        from rich.text import Text

        from explorer.tui.widgets.param_detail import facts_table

        e = self.current_entry()
        if e is not None:
            return Here(e.key.split("@")[0], Group(Text(e.param.help or "(no help text)"), Text(""),
                                                   facts_table(e, long=True)))
        data = self.current_data() or ""
        if data.startswith("section:"):
            title, _, text = SECTION_TEXT.get(data[8:], data[8:]).partition("\n")
            return Here(title, Text(text))
        if data.startswith("group:"):
            _, sec, name = data.split(":", 2)
            title, _, text = self._group_text(sec, name).partition("\n")
            return Here(f"{sec} {title}", Text(text.strip()))
        return None

    def current_entry(self) -> Entry | None:
        tree = self.query_one(ConfigTree)
        node = tree.cursor_node
        if node is None or node.data is None:
            return None
        return tree.entries.get(node.data)

    def current_data(self) -> str | None:
        node = self.query_one(ConfigTree).cursor_node
        return node.data if node is not None else None

    @on(Tree.NodeHighlighted)
    def _highlighted(self, event: Tree.NodeHighlighted[Any]) -> None:
        self._show_current()

    @on(Tree.NodeSelected)
    def _selected(self, event: Tree.NodeSelected[Any]) -> None:
        if event.node.data in self.query_one(ConfigTree).entries:
            self.action_edit()

    # -- editing
    def action_edit(self) -> None:
        e = self.current_entry()
        if e is None:
            node = self.query_one(ConfigTree).cursor_node
            if node is not None and node.allow_expand:
                node.toggle()
            return
        if not e.editable:
            self.notify(f"{e.key.split('@')[0]} is inactive: {e.reason}", severity="warning")
            return
        if e.param.type == "bool":
            self._apply(e.key, "false" if e.value else "true")
            return
        if e.param.type == "choice":
            self._pick(e)
            return
        self.query_one(ParamDetail).start_edit(e)

    def _pick(self, e: Entry) -> None:
        reg = self.xapp.registry
        options: list[tuple[str, str, str]] = []
        for c in e.param.choices:
            desc = ""
            if e.is_choice_of:
                cls = reg.table(e.is_choice_of).get(c)
                info = reg.provider.get((e.is_choice_of, c))
                first = _first_sentence(getattr(cls, "help", "") or "")
                where = f"{info.name} {reg.version_of(e.is_choice_of, c)}, {info.origin}" if info else ""
                desc = f"{first}  [{where}]" if where else first
            options.append((c, c, desc))

        def done(value: str | None) -> None:
            if value is not None and value != e.value:
                self._apply(e.key, value)

        self.app.push_screen(ChoiceModal(f"{e.key}: choose", options, current=e.value), done)

    def _apply(self, key: str, text: Any) -> str | None:
        problem = self.xapp.apply_edit(key, text)
        if problem:
            self.notify(problem, severity="error", title=key)
        return problem

    @on(ParamDetail.Submitted)
    def _submitted(self, event: ParamDetail.Submitted) -> None:
        detail = self.query_one(ParamDetail)
        problem = self.xapp.apply_edit(event.key, event.text)
        if problem:
            detail.show_problem(problem)
            return
        detail.stop_edit()
        self.query_one(ConfigTree).focus()
        self._show_current()

    @on(ParamDetail.Cancelled)
    def _cancelled(self) -> None:
        self.query_one(ConfigTree).focus()
        self._show_current()

    def action_reset_default(self) -> None:
        e = self.current_entry()
        if e is None or not e.editable:
            return
        if not e.changed:
            self.notify(f"{e.key} is already the default ({e.shown_default})")
            return
        problem = self.xapp.reset_to_default(e.key)
        if problem:
            self.notify(problem, severity="error", title=e.key)

    def action_sweep_axis(self) -> None:
        e = self.current_entry()
        if e is None:
            self.notify("select a parameter to sweep it", severity="warning")
            return
        if not e.editable or not e.active:
            self.notify(f"{e.key.split('@')[0]} is inactive: {e.reason}", severity="warning")
            return
        from explorer.tui.screens.sweep_axis import ask_axis

        ask_axis(self.xapp, e.key, e.shown_value)

    # -- info, search, show-all
    def action_info(self) -> None:
        e = self.current_entry()
        if e is not None:
            self.app.push_screen(ParamInfo(e))
            return
        data = self.current_data() or ""
        if data.startswith("section:"):
            title, _, body = SECTION_TEXT.get(data[8:], data).partition("\n")
            self.app.push_screen(TextModal(f"? {title}", body))
        elif data.startswith("group:"):
            _, sec, name = data.split(":", 2)
            title, _, body = self._group_text(sec, name).partition("\n")
            self.app.push_screen(TextModal(f"? {title}", body))

    def action_search(self) -> None:
        entries = self.xapp.model().entries

        def jump(key: str | None) -> None:
            if key is None:
                return
            e = next((x for x in entries if x.key == key), None)
            if e is not None and not e.active and not self.xapp.show_all:
                self.xapp.show_all = True
                self.notify("show-all is on: the hit is inactive under the current choices")
            self.refresh_config(keep=key)
            self.query_one(ConfigTree).focus()

        self.app.push_screen(SearchModal(entries), jump)

    def action_toggle_all(self) -> None:
        self.xapp.show_all = not self.xapp.show_all
        self.refresh_config()
        self.notify("show-all: inactive parameters shown, dimmed" if self.xapp.show_all
                    else "show-all off: only active parameters")

    # -- workloads
    def action_add_workload(self) -> None:
        """``+``: any loaded source, the ones not in the config first; one already there is added
        again as its next instance (``NAME#1``: on other CPUs or at another rate, say)."""
        app = self.xapp
        have = [str(w["name"]) for w in app.config.get("workload", [])]
        new: list[tuple[str, str, str]] = []
        again: list[tuple[str, str, str]] = []
        for n, cls in sorted(app.registry.workloads.items()):
            first = ((cls.help or "").strip().splitlines() or [""])[0]
            count = have.count(n)
            if count:
                again.append((n, f"{n}#{count}", f"another {n} (the config has {count}) · {first}"))
            else:
                new.append((n, n, first))
        options = new + again
        if not options:
            self.notify("no workload source is loaded", severity="warning")
            return

        def done(name: str | None) -> None:
            if name:
                problem = app.add_workload(name)
                if problem:
                    self.notify(problem, severity="error")
                else:
                    label = workload_labels(app.config.get("workload", []))[-1]
                    self.refresh_config(keep=f"group:workload:{label}")
                    self.notify(f"added workload source {label}")

        self.app.push_screen(ChoiceModal("Add a workload source", options), done)

    def action_remove_workload(self) -> None:
        data = self.current_data() or ""
        label = ""  # the instance: name, or name#1 for a second source of that name
        if data.startswith("group:workload:"):
            label = data.split(":", 2)[2]
        else:
            e = self.current_entry()
            if e is not None and e.section == "workload":
                label = e.group
        if not label or workload_index(self.xapp.config, label) is None:
            self.notify("select a workload source (in the config) to remove it", severity="warning")
            return
        problem = self.xapp.remove_workload(label)
        if problem:
            self.notify(problem, severity="error")
        else:
            self.notify(f"removed workload source {label}")
