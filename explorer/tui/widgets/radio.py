"""A radio button that is told apart by a character, not only by colour."""

from __future__ import annotations

from textual.widgets import RadioButton


class DotRadio(RadioButton):
    """``▐●▌`` chosen, ``▐ ▌`` not (Textual draws ``▐●▌`` for both, in two colours)."""

    @property
    def BUTTON_INNER(self) -> str:  # type: ignore[override]  # Textual's name for the dot character
        return "●" if self.value else " "
