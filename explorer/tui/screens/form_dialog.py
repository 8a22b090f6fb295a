"""The shape every small form of the app shares: inputs, an OK and a Cancel button."""

from __future__ import annotations

from typing import ClassVar, TypeVar

from textual import on
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen
from textual.widgets import Button, Input

ResultT = TypeVar("ResultT")


class FormDialog(ModalScreen[ResultT]):
    """Enter in an input or the ``#ok`` button runs :meth:`_do` (which dismisses when it succeeds);
    escape or the ``#cancel`` button closes the dialog with ``None``."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def _do(self) -> None:
        raise NotImplementedError

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._do()

    @on(Button.Pressed, "#ok")
    def _ok(self) -> None:
        self._do()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
