"""The one-line bar on top of every screen: the screens (click or press 1-4) and the file."""

from __future__ import annotations

from rich.cells import cell_len
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
        room = self.size.width - sum(len(p) if isinstance(p, str) else p.cell_length for p in parts)
        dirty, file_label, extra = fit_file(self.file_label, self.dirty, self.extra, room if self.size.width else None)
        if dirty:
            parts.append(Content.from_markup(f"[b $warning]{dirty}[/]"))
            parts.append(" ")  # from_markup drops trailing spaces
        parts.append(Content(file_label))
        if extra:
            parts.append(Content.from_markup(f" [dim]{extra}[/]"))
        self.update(Content.assemble(*parts))


def fit_file(label: str, dirty: bool, extra: str, room: int | None) -> tuple[str, str, str]:
    """The modified mark, the file label and the extra note, shortened step by step until they fit
    ``room`` cells (None: not laid out yet, no limit): at 80 columns the screens' names leave about
    30, and the end of the label ("(not saved)") is what the user needs to see."""
    mark = "● modified" if dirty else ""
    steps = [
        lambda m, lbl, x: (m, lbl.removeprefix("scenario "), x),
        lambda m, lbl, x: ("●" if m else "", lbl, x),
        lambda m, lbl, x: (m, lbl.replace(" (not saved)", " *").replace("(not saved)", "*"), x),
        lambda m, lbl, x: (m, lbl, ""),
    ]

    def width(m: str, lbl: str, x: str) -> int:
        return (len(m) + 1 if m else 0) + cell_len(lbl) + (len(x) + 1 if x else 0)

    now = (mark, label, extra)
    if room is None:
        return now
    for step in steps:
        if width(*now) <= room:
            return now
        now = step(*now)
    m, lbl, x = now
    over = width(m, lbl, x) - room
    if over > 0:  # a long path: keep its end (the file name), as a shell prompt does
        lbl = "…" + lbl[over + 1:]
    return m, lbl, x
