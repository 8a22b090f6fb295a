"""The one-line bar on top of every screen: the screens (click or press 1-4) and the file."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from explorer.tui.actions import SCREEN_TITLES


class TopBar(Static):
    """``pgtable-explorer │ 1 Config  2 Run  3 Compare  4 Plugins │ my.toml ● modified``."""

    DEFAULT_CSS = """
    TopBar { height: 1; background: $panel; color: $foreground; }
    """

    def __init__(self, active: str, **kwargs: object) -> None:
        super().__init__("", **kwargs)  # type: ignore[arg-type]
        self.active = active
        self.file_label = "(unsaved config)"
        self.dirty = False
        self.extra = ""

    def on_mount(self) -> None:
        self.redraw()

    def set_file(self, label: str, dirty: bool, extra: str = "") -> None:
        self.file_label, self.dirty, self.extra = label, dirty, extra
        self.redraw()

    def on_resize(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        narrow = 0 < self.size.width < 100
        parts: list[Content | str] = [] if narrow else [Content.from_markup("[b] pgtable-explorer[/b] ")]
        for i, (name, title) in enumerate(SCREEN_TITLES.items(), start=1):
            label = f" {i} {title} "
            if name == self.active:
                parts.append(Content.from_markup(f"[reverse b]{label}[/]"))
            else:
                parts.append(Content.from_markup(f"[@click=app.goto('{name}')]{label}[/]"))
        parts.append(" │ ")
        if self.dirty:
            parts.append(Content.from_markup("[b $warning]● modified[/]"))
            parts.append(" ")  # from_markup drops trailing spaces
        parts.append(Content(self.file_label))
        if self.extra:
            parts.append(Content.from_markup(f" [dim]{self.extra}[/]"))
        self.update(Content.assemble(*parts))
