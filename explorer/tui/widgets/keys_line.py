"""The footer of a narrow screen: every key the footer would show, on as many lines as it takes.

Textual's Footer is one line; at 80 columns the Run screen's keys (space, s, r, +, -, m, t, x, f,
e, y, F1, ^s) do not fit in it and the last ones would be cut. In the narrow layout this widget
takes the footer's place and wraps between keys, never inside one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.text import Text
from textual.widgets import Static

from explorer.tui.actions import ACTIONS, display_key
from explorer.tui.keymap import effective_key


def key_items(screen: str, keymap: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """(key, word) of every footer action of ``screen``, then of the app, with the user's keys."""
    mine = [a for a in ACTIONS if a.footer and a.screen == screen]
    app = [a for a in ACTIONS if a.footer and a.screen == "app"]
    return [(display_key(effective_key(a, keymap)), a.short) for a in (*mine, *app)] + [("^p", "palette")]


def wrap_items(items: list[tuple[str, str]], width: int) -> Text:
    """The items as ``key word`` separated by two spaces, broken into lines between items."""
    out = Text()
    col = 0
    for key, word in items:
        cell = len(key) + 1 + len(word)
        if col and col + 2 + cell > width:
            out.append("\n")
            col = 0
        elif col:
            out.append("  ")
            col += 2
        out.append(key, style="bold")
        out.append(" " + word)
        col += cell
    return out


class KeysLine(Static):
    """The keys of ``screen`` (its footer actions and the app's), wrapped to the width."""

    DEFAULT_CSS = """
    KeysLine { dock: bottom; height: auto; background: $footer-background; color: $footer-foreground;
               padding: 0 1; }
    """

    def __init__(self, screen: str, **kwargs: Any) -> None:
        super().__init__("", **kwargs)
        self.screen_name = screen

    def on_resize(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        keymap = getattr(self.app, "keymap", None)
        self.update(wrap_items(key_items(self.screen_name, keymap), max(20, self.size.width - 2)))
