"""Every loaded plugin (kind, origin, version, what it registers) and every failure with its error."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Label

from explorer.tui.actions import bindings_for
from explorer.tui.focus_help import PLUGINS_HELP, Here
from explorer.tui.screens.base import ExplorerScreen
from explorer.tui.screens.text_modal import TextModal
from explorer.tui.widgets.footer import KeysFooter
from explorer.tui.widgets.topbar import TopBar
from explorer.tui.widgets.wide_table import WideTable

if TYPE_CHECKING:
    from explorer.plugins import PluginInfo

def clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` cells with an ellipsis, so a cut is never silent."""
    return text if len(text) <= width else text[: width - 1] + "…"


KIND_LABEL = {"strategy": "strategy", "iommu": "IOMMU model", "workload": "workload", "scenario": "scenario"}


class PluginsScreen(ExplorerScreen):
    BINDINGS = bindings_for("plugins")
    AUTO_FOCUS = "#loaded"

    def compose(self) -> ComposeResult:
        yield TopBar("plugins")
        with Vertical(id="plugins-body"):
            yield Label("", id="reload-status")
            yield Label("", id="loaded-title", classes="section-title")
            yield WideTable(id="loaded", cursor_type="row", zebra_stripes=True)
            yield Label("", id="failed-title", classes="section-title")
            yield WideTable(id="failed", cursor_type="row")
        yield KeysFooter(compact=True)

    def focus_help(self) -> Here | None:
        """F1: the table that has the focus."""
        focused = self.focused
        found = PLUGINS_HELP.get(focused.id or "") if focused is not None else None
        return Here(found[0], Text(found[1])) if found else None

    def on_mount(self) -> None:
        self.populate()

    def plugins_reloaded(self) -> None:
        self.populate()

    def populate(self) -> None:
        """Fill the tables from the app's registry (again, after a live reload)."""
        reg = self.xapp.registry
        watcher = self.xapp.plugin_watcher
        kept = dict(watcher.kept) if watcher is not None else {}
        status = self.query_one("#reload-status", Label)
        lines = []
        if watcher is not None:
            lines.append(f"Live reload: watching {', '.join(str(d) for d in watcher.dirs)}")
        lines += [f"  {line}" for line in self.xapp.reload_log[-3:]]
        status.update(Text("\n".join(lines)))
        status.display = bool(lines)
        loaded = self.query_one("#loaded", DataTable)
        loaded.clear(columns=True)
        # what a plugin is and where it comes from first; what it registers (long) and its path last,
        # shortened with an ellipsis (enter shows all of it), the table scrolls sideways for the rest
        loaded.add_columns("plugin", "kind", "origin", "version", "registers", "where it lives")
        for info in reg.plugins:
            kinds = sorted({KIND_LABEL.get(k, k) for k, _ in info.registers})
            regs = ", ".join(f"{n} {reg.version_of(k, n)}" for k, n in info.registers) or "(nothing)"
            loaded.add_row(info.name, ", ".join(kinds), info.origin, info.version or "-", clip(regs, 34),
                           info.location, key=f"ok:{info.name}:{info.location}")
        self.query_one("#loaded-title", Label).update(
            f"Loaded: {len(reg.plugins)} plugins · {len(reg.strategies)} strategies · {len(reg.iommu_models)} "
            f"IOMMU models · {len(reg.workloads)} workloads · {len(reg.scenarios)} scenarios")
        failed = self.query_one("#failed", DataTable)
        failed.clear(columns=True)
        failed.add_columns("plugin", "origin", "error", "where it lives")
        for info in reg.failures:
            failed.add_row(info.name, info.origin, Text(clip(info.error or "", 48), style="red"), info.location,
                           key=f"fail:{info.name}:{info.location}")
        for path, error in kept.items():  # after reg.failures: _info() indexes those first
            failed.add_row(Path(path).stem, "directory (last good version in use)", Text(error, style="red"), path,
                           key=f"kept:{path}")
        n = len(reg.failures) + len(kept)
        title = f"Failed to load: {n}" if n else "Failed to load: none"
        self.query_one("#failed-title", Label).update(title)
        self.query_one("#failed-title", Label).set_class(bool(n), "-bad")
        self.query_one("#failed", DataTable).display = bool(n)

    def on_screen_resume(self) -> None:
        self.query_one(TopBar).set_file(self.xapp.file_label(), self.xapp.dirty)

    def _info(self, table: DataTable, row: int) -> PluginInfo | None:
        reg = self.xapp.registry
        infos = reg.plugins if table.id == "loaded" else reg.failures
        return infos[row] if 0 <= row < len(infos) else None

    def action_details(self) -> None:
        focused = self.focused
        table = focused if isinstance(focused, DataTable) else self.query_one("#loaded", DataTable)
        info = self._info(table, table.cursor_row)
        if info is None:
            return
        if info.error:
            self.app.push_screen(TextModal(f"{info.name}: failed to load ({info.origin})",
                                           f"{info.location}\n\n{info.error}\n\n{info.traceback or ''}"))
            return
        reg = self.xapp.registry
        lines = [f"{info.name} {info.version} — {info.origin}", info.location, ""]
        for kind, name in info.registers:
            obj = reg.table(kind).get(name)
            help_ = (getattr(obj, "help", "") or getattr(obj, "description", "") or "").strip()
            lines.append(f"{KIND_LABEL.get(kind, kind)} {name} {reg.version_of(kind, name)}")
            if help_:
                lines.append("    " + help_)
            for p in getattr(obj, "params", ()) or ():
                lines.append(f"    param {p.name} ({p.describe_type()}, default {p.default!r}): {p.help}")
            lines.append("")
        self.app.push_screen(TextModal(f"plugin {info.name}", "\n".join(lines)))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_details()
