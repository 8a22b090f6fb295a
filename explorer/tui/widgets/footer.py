"""The footer of every screen: Textual's Footer, rebuilt only when the keys it shows change.

Textual's Footer rebuilds itself (a new widget per key, each mounted and styled) whenever the
screen's bindings are announced as updated, which happens on every screen switch and focus change
even though the keys are the same. On the Run screen that was most of a screen switch (about
100 ms of the key-to-screen time, ``make bench`` section 5). This one compares what it would show
with what it shows and rebuilds only on a difference: another key, word, tooltip, enabled state
(a keymap reload, a focus that brings its own keys).
"""

from __future__ import annotations

from typing import Any

from textual.screen import Screen
from textual.widgets import Footer


def shown_keys(screen: Screen[Any]) -> tuple[Any, ...]:
    """What a footer on ``screen`` shows: every shown binding's key, display, words and state."""
    app = screen.app
    out: list[Any] = []
    for _node, binding, enabled, tooltip in screen.active_bindings.values():
        if binding.show:
            group = binding.group.description if binding.group is not None else None
            out.append((binding.key, app.get_key_display(binding), binding.description, binding.action,
                        enabled, tooltip, group))
    return tuple(out)


class KeysFooter(Footer):
    """:class:`textual.widgets.Footer` that rebuilds only when its keys change (module docstring)."""

    _shown: tuple[Any, ...] | None = None

    def bindings_changed(self, screen: Screen[Any]) -> None:
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            keys = (self.compact, self.show_command_palette, shown_keys(screen))
            if self._bindings_ready and keys == self._shown:
                return
            self._shown = keys
        super().bindings_changed(screen)
