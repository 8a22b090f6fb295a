"""Snapshot tests: the main screens at 80x24 (the documented minimum) and 120x40, compared with
the SVG baselines in ``tests/snapshots/``. A change that cuts a column, moves a panel or breaks a
layout fails here; look at the two files (the test says where the new one is), and if the new
screen is right, regenerate the baselines:

    make snapshots        # = UPDATE_SNAPSHOTS=1 pytest tests/test_tui_snapshots.py

Every state shown is deterministic: a fixed config and seed, runs that have finished (or not
started), plugin paths relative to the repository, a fixed worker count and sweep timing, no
notifications, no focused text input (a blinking cursor).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from explorer.plugins import load_registry
from tests.conftest import make_config
from tests.tui_helpers import SHORT, make_app, run_to_end, screen_text, wait_for_drawn, wait_until

SNAPSHOTS = Path(__file__).parent / "snapshots"
ROOT = Path(__file__).resolve().parent.parent
UPDATE = os.environ.get("UPDATE_SNAPSHOTS") == "1"
SIZES = [(80, 24), (120, 40)]


@pytest.fixture(scope="module")
def reg():
    """A registry of its own (the paths are rewritten: the shared one must stay as loaded)."""
    r = load_registry(entry_points=False)
    for info in [*r.plugins, *r.failures]:
        if info.location.startswith(str(ROOT)):
            info.location = os.path.relpath(info.location, ROOT)
    return r


def normal(svg: str) -> str:
    """The SVG without what differs between two identical screens: the id Rich derives from a hash
    of the render, and empty (zero-width) rectangles."""
    svg = re.sub(r"terminal-\d+", "terminal", svg)
    return re.sub(r'<rect [^>]*width="0"[^>]*/>', "", svg)


async def check(pilot, name: str, tmp_path: Path) -> None:
    """Compare the screen with ``tests/snapshots/NAME.svg`` (or write it, with UPDATE_SNAPSHOTS=1)
    once the wide tables' cues are drawn (they follow the layout)."""
    from explorer.tui.widgets.wide_table import WideTable

    app = pilot.app
    app.clear_notifications()
    tables = list(app.screen.query(WideTable))
    await wait_until(pilot, lambda: all(t.border_subtitle == t.cue() for t in tables), what="the tables' cues")
    path = SNAPSHOTS / f"{name}.svg"
    if UPDATE:
        path.write_text(await settled(pilot, name), encoding="utf-8")
        return
    assert path.exists(), f"no baseline {path}: run `make snapshots` and look at it before committing"
    # The screen is drawn by timers after the state it shows: wait (a while) for it to become the
    # baseline rather than judging the first or a not-yet-final screenshot.
    want = normal(path.read_text(encoding="utf-8"))
    svg = ""

    def same() -> bool:
        nonlocal svg
        svg = app.export_screenshot(title=name)
        return normal(svg) == want

    try:
        await wait_until(pilot, same, timeout=15, what=f"the screen to be {path.name}")
    except AssertionError:
        new = tmp_path / f"{name}.svg"
        new.write_text(svg, encoding="utf-8")
        pytest.fail(f"{name} differs from {path} (the new screen: {new}; `make snapshots` takes it):\n"
                    + screen_text(app))


async def settled(pilot, name: str, rounds: int = 50) -> str:
    """The screenshot once two in a row are the same: a refresh that drawing asked for can reach the
    screen a pause or two later on a loaded machine."""
    app = pilot.app
    await pilot.pause()
    svg = normal(app.export_screenshot(title=name))
    for _ in range(rounds):
        await pilot.pause()
        again = normal(app.export_screenshot(title=name))
        if again == svg:
            break
        svg = again
    return app.export_screenshot(title=name)


def still(app):
    """No animations (a tab's underline sliding): the screen is the same however fast the machine."""
    app.animation_level = "none"
    return app


def config_of(reg):
    return make_config(reg, *SHORT, "run.seed=3", scenario="before-fix")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_config_and_plugins(reg, size, tmp_path):
    app = still(make_app(reg, config_of(reg), start="config"))
    async with app.run_test(size=size) as pilot:
        await check(pilot, f"config-{size[0]}x{size[1]}", tmp_path)
        await pilot.press("4")
        await wait_until(pilot, lambda: app.current_mode == "plugins" and app.screen.query("#loaded"))
        await check(pilot, f"plugins-{size[0]}x{size[1]}", tmp_path)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_run_finished(reg, size, tmp_path):
    app = still(make_app(reg, config_of(reg)))
    try:
        async with app.run_test(size=size) as pilot:
            await wait_for_drawn(pilot, app, ("paused",))
            await run_to_end(pilot, app)
            await check(pilot, f"run-{size[0]}x{size[1]}", tmp_path)
    finally:
        app.shutdown_sessions()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_compare_finished(reg, size, tmp_path):
    app = still(make_app(reg, config_of(reg), start="compare"))
    app.compare_names = ["sync", "deferred", "batched", "v3-flush-deferred"]  # four: the narrowest charts
    try:
        async with app.run_test(size=size) as pilot:
            await wait_until(pilot, lambda: len(app.compare_sessions) == 4
                             and all(s.state == "paused" for s in app.compare_sessions), what="four variants")
            await pilot.press("space")
            await wait_until(pilot, lambda: all(s.state == "finished" for s in app.compare_sessions),
                             timeout=60, what="every variant to finish")
            app.screen.apply_latest()
            await wait_until(pilot, lambda: len(app.screen.query(".cmp-chart")) == 4, what="the charts")
            app.screen.apply_latest()
            await check(pilot, f"compare-{size[0]}x{size[1]}", tmp_path)
            heads = [c.title for c in app.screen.query(".cmp-chart")]
            text = screen_text(app)
            assert all(f"▏ {h} " in text for h in heads)  # each chart's name, whole, with four at 80
    finally:
        app.shutdown_sessions()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_sweep_finished(reg, size, tmp_path):
    app = still(make_app(reg, config_of(reg), start="sweep"))
    st = app.sweep_state
    st.set_axis("strategy.name", "sync,deferred,batched")
    st.workers = 1
    try:
        async with app.run_test(size=size) as pilot:
            screen = app.screen
            await pilot.press("space")
            await wait_until(pilot, lambda: not st.running and len(st.results) == 3 and screen.shown == 3,
                             timeout=90, what="the sweep to finish")
            assert st.progress is not None
            st.progress.started, st.progress.ended = 0.0, 2.0  # the wall-clock part: fixed
            screen.refresh_all()
            await check(pilot, f"sweep-{size[0]}x{size[1]}", tmp_path)
            text = screen_text(app)
            header = next(ln for ln in text.splitlines() if "status" in ln and "seed" in ln)
            assert "violations" in header  # the column that matters most, on screen at 80 columns
            assert "results: in memory only" in text  # the axes' line wraps, never cut
    finally:
        app.shutdown_sessions()
