"""Helpers for the TUI tests: building the app, the screen as plain text, and waiting on the
app's own state (driven by its messages), never on a fixed sleep."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console

from explorer.tui.app import ExplorerApp
from tests.conftest import SHORT as SHORT  # the TUI tests' short run (re-exported: one definition)


def make_app(registry: Any = None, config: Any = None, *, start: str = "run", plugins_dirs: Any = (),
             config_path: str | None = None, **kw: Any) -> ExplorerApp:
    return ExplorerApp(config_path, [str(d) for d in plugins_dirs], registry=registry, config=config, start=start,
                       entry_points=False, **kw)


def screen_text(app: Any) -> str:
    """What the terminal shows, as plain text (the same render as ``export_screenshot``)."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True, record=True,
                      color_system=None, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


async def wait_until(pilot: Any, predicate: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    """Let the app handle its messages until ``predicate()`` holds; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await pilot.pause()
        await asyncio.sleep(0.01)


async def wait_for_screen(pilot: Any, holds: Callable[[str], bool], what: str, timeout: float = 20.0) -> str:
    """Wait until ``holds(text)`` is true of the screen's text and return that text.

    What a text assertion reads is drawn by a timer after the state it shows has changed (and later
    still on a busy machine): wait on the text itself, never on a fixed number of pauses."""
    text = ""

    def shown() -> bool:
        nonlocal text
        text = screen_text(pilot.app)
        return holds(text)

    try:
        await wait_until(pilot, shown, timeout, what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the screen shows:\n{text}") from None
    return text


async def wait_for_text(pilot: Any, *needles: str, absent: tuple[str, ...] = (), timeout: float = 20.0) -> str:
    """Wait until the screen shows every one of ``needles`` and none of ``absent``; the text."""
    what = f"the screen to show {needles!r}" + (f" and not {absent!r}" if absent else "")
    return await wait_for_screen(
        pilot, lambda text: all(n in text for n in needles) and not any(n in text for n in absent), what, timeout)


async def run_to_end(pilot: Any, app: ExplorerApp, timeout: float = 30.0) -> None:
    """Press space on the Run screen and wait until the finished snapshot is drawn."""
    await pilot.press("space")
    await wait_for_drawn(pilot, app, ("finished", "failed"), timeout)


async def wait_for_drawn(pilot: Any, app: ExplorerApp, states: tuple[str, ...], timeout: float = 30.0) -> None:
    """Wait until the session is in one of ``states`` and the Run screen has drawn its newest snapshot."""
    run = app.screens_by_name["run"]

    def drawn() -> bool:
        s = app.session
        return (s is not None and s.state in states and s.latest is not None
                and getattr(run, "applied_seq", -1) == s.latest.seq)

    await wait_until(pilot, drawn, timeout, f"the run to be {'/'.join(states)} and drawn")
    await pilot.pause()  # and the refresh (a layout) that drawing asked for is on the screen


async def jump_to(pilot: Any, key: str) -> None:
    """On the Config screen: search for ``key`` with / and jump to it."""
    from explorer.tui.widgets.config_tree import ConfigTree

    await pilot.press("slash")
    await paste(pilot, key)
    await pilot.press("enter")
    tree = pilot.app.screen.query_one(ConfigTree)
    await wait_until(pilot, lambda: tree._pending_keep is None and tree.cursor_node is not None,
                     what=f"the cursor on {key}")


async def paste(pilot: Any, text: str) -> None:
    """Paste ``text`` into the focused widget (as a terminal's bracketed paste does)."""
    from textual import events

    focused = pilot.app.screen.focused
    assert focused is not None, "nothing has focus to paste into"
    focused.post_message(events.Paste(text))
    await pilot.pause()
