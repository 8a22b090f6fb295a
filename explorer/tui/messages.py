"""Messages the app posts to itself."""

from __future__ import annotations

from textual.message import Message


class SessionUpdated(Message):
    """A session has a new snapshot (posted from the session's reader thread, conflated)."""

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label


class ConfigChanged(Message):
    """The app's config was replaced (an edit, a scenario, a file)."""

    def __init__(self, reason: str = "edit") -> None:
        super().__init__()
        self.reason = reason
