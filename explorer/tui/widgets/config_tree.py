"""The menuconfig-like tree: sections, sub-menus and parameters with their values."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from explorer.tui.model import SECTIONS, Entry
from explorer.tui.model import Tree as Model

NAME_WIDTH = 26


def entry_label(e: Entry, name_width: int = NAME_WIDTH) -> Text:
    """``● workqueue_delay ········ 40us`` (``●`` = differs from the default; dim = inactive)."""
    mark = "●" if e.changed else " "
    name = e.param.name
    if len(name) > name_width:
        name = name[: name_width - 1] + "…"
    t = Text()
    t.append(mark + " ", style="bold yellow" if e.changed else "")
    t.append(name.ljust(name_width, " "), style="" if e.active else "dim")
    value = e.shown_value if e.value is not None else e.shown_default
    vstyle = "bold" if e.changed else ""
    if not e.active:
        vstyle = "dim italic"
    t.append(" " + value, style=vstyle)
    if e.param.unit and e.param.type in ("int", "float"):
        t.append(" " + e.param.unit, style="dim")
    if e.value is None:
        t.append("  (inactive)", style="dim")
    return t


class ConfigTree(Tree[str]):
    """Node data: ``section:NAME``, ``group:SECTION:NAME`` or the entry key."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Edit", show=True),
        # the keys of less, vim, htop and lazygit
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("g", "first", "Top", show=False),
        Binding("G", "last", "Bottom", show=False),
    ]

    def action_first(self) -> None:
        self.cursor_line = 0

    def action_last(self) -> None:
        self.cursor_line = self.last_line

    DEFAULT_CSS = """
    ConfigTree { height: 1fr; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__("config", **kwargs)  # type: ignore[arg-type]
        self.show_root = False
        self.guide_depth = 2
        self.entries: dict[str, Entry] = {}
        self._pending_keep: str | None = None

    def rebuild(self, model: Model, show_all: bool, keep: str | None = None) -> None:
        """Redraw from ``model``, keeping open sections and the cursor (on ``keep`` if given)."""
        expanded = {n.data for n in self._all_nodes() if n.is_expanded and n.data}
        if keep is not None:
            self._pending_keep = keep
        current = keep or self._pending_keep or (self.cursor_node.data if self.cursor_node is not None else None)
        first = not self.root.children
        self.clear()
        self.entries = {e.key: e for e in model.entries}
        target: TreeNode[str] | None = None
        for sec, title in SECTIONS:
            entries = [e for e in model.entries if e.section == sec and (e.active or show_all)]
            hidden = sum(1 for e in model.entries if e.section == sec and not (e.active or show_all))
            label = Text(title, style="bold")
            changed = sum(1 for e in model.entries if e.section == sec and e.changed)
            if changed:
                label.append(f"  ●{changed}", style="bold yellow")
            if sec in model.notes:
                label.append(f"  ({model.notes[sec]})", style="dim italic")
            if hidden:
                label.append(f"  +{hidden} hidden (a shows all)", style="dim")
            node = self.root.add(label, data=f"section:{sec}", expand=first or f"section:{sec}" in expanded)
            if current == node.data:
                target = node
            groups: dict[str, TreeNode[str]] = {}
            for e in entries:
                parent = node
                if e.group:
                    if e.group not in groups:
                        gdata = f"group:{sec}:{e.group}"
                        active = any(x.active for x in entries if x.group == e.group)
                        glabel = Text(e.group, style="bold" if active else "dim")
                        if sec == "workload" and not active:
                            glabel.append("  (not in the config: + adds it)", style="dim italic")
                        elif not active:
                            glabel.append("  (not selected)", style="dim italic")
                        groups[e.group] = node.add(glabel, data=gdata,
                                                   expand=(first and active) or gdata in expanded
                                                   or (keep is not None and keep.startswith(f"workload.{e.group}.")))
                        if current == gdata:
                            target = groups[e.group]
                    parent = groups[e.group]
                leaf = parent.add_leaf(entry_label(e), data=e.key)
                if current == e.key:
                    target = leaf
        if target is not None:
            up = target.parent
            while up is not None:
                up.expand()
                up = up.parent
            self._pending_keep = target.data
            self.call_after_refresh(self._move_to, target.data)
        elif first:
            self.call_after_refresh(lambda: setattr(self, "cursor_line", 0))

    def _move_to(self, data: str) -> None:
        if self._pending_keep != data:
            return
        self._pending_keep = None
        node = self.find(data)
        if node is not None:
            self.move_cursor(node)
            self.scroll_to_node(node, animate=False)

    def _all_nodes(self) -> list[TreeNode[str]]:
        out: list[TreeNode[str]] = []
        stack = list(self.root.children)
        while stack:
            n = stack.pop()
            out.append(n)
            stack.extend(n.children)
        return out

    def find(self, data: str) -> TreeNode[str] | None:
        for n in self._all_nodes():
            if n.data == data:
                return n
        return None
