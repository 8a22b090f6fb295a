"""What every screen of the explorer shares: the app and its document, typed, and the hooks the app
calls on each screen that is built (instead of asking each screen what it has)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from textual import events
from textual.message_pump import MessagePump
from textual.screen import Screen

if TYPE_CHECKING:
    from explorer.tui.app import ExplorerApp
    from explorer.tui.document import ConfigDocument
    from explorer.tui.focus_help import Here


class UsesExplorerApp:
    """Mixed into a screen or dialog of the explorer: :attr:`xapp` is ``self.app`` as the
    :class:`~explorer.tui.app.ExplorerApp` it is (Textual types it as any App)."""

    @property
    def xapp(self) -> ExplorerApp:
        return cast("ExplorerApp", cast(MessagePump, self).app)

    @property
    def doc(self) -> ConfigDocument:
        """The config being explored, its file and the origin of each value."""
        return self.xapp.doc


class ExplorerScreen(UsesExplorerApp, Screen[None]):
    """A screen (mode) of the explorer. The app calls these hooks on every screen that is built and
    mounted; each does nothing unless the screen overrides it."""

    _styled_for: tuple[Any, ...] | None = None

    def _on_screen_resume(self, event: events.ScreenResume) -> None:
        # Textual restyles every widget of a screen each time the screen comes back (a mode switch
        # asks for it): on the Run screen about half of a key's time to the new frame. A widget's
        # style depends on the stylesheet, the theme and the app's pseudo-classes (focus, dark,
        # inline, ...), which are checked here, and on its own classes and state, which restyle
        # it when they change, suspended or not. So the whole screen is restyled only when one of
        # the first changed since it was last shown. (Screen's own handler runs after this one.)
        app = self.app
        state = (app._css_update_count, app.theme,
                 tuple(name for name, holds in app._PSEUDO_CLASSES.items() if holds(app)))
        if event.refresh_styles and state == self._styled_for:
            event.refresh_styles = False
        self._styled_for = state

    def config_changed(self) -> None:
        """The document's config was replaced or edited (a value, a scenario, a file, a save)."""
        self.refresh_top()

    def refresh_top(self) -> None:
        """Redraw what shows the config's file and state (the top bar: file name, modified)."""

    def apply_latest(self) -> None:
        """A session this screen shows has a new snapshot (called only while the screen is current)."""

    def plugins_reloaded(self) -> None:
        """The plugins were loaded again (live reload of --plugins-dir)."""

    def focus_help(self) -> Here | None:
        """What F1 says first: help on what has the focus here, or None."""
        return None
