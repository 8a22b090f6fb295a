"""Regenerate the TUI screenshots in docs/img/ and the key table in docs/tui.md.

    .venv/bin/python docs/tui_screenshots.py

Drives the real app headless (``App.run_test``) through each screen and dialog and saves an SVG
of each with ``save_screenshot``; the key table comes from ``explorer.tui.actions.ACTIONS``, the
same table that feeds the bindings, F1 help and the command palette.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("PGTABLE_EXPLORER_NO_ENTRYPOINTS", "1")
os.environ["PGTABLE_EXPLORER_KEYMAP"] = os.devnull  # the screenshots and docs show the default keys

ROOT = Path(__file__).resolve().parent.parent
IMG = ROOT / "docs" / "img"
DOC = ROOT / "docs" / "tui.md"

#: A user's strategy plugin with a bug (it raises on the third table), shipped as an example.
RAISES = (ROOT / "docs" / "examples" / "buggy" / "my_buggy.py").read_text()


def key_table() -> str:
    from explorer.tui.actions import ACTIONS, SCREEN_TITLES, display_key

    out = []
    for screen in ("app", "config", "run", "compare", "plugins", "sweep"):
        title = "Everywhere" if screen == "app" else SCREEN_TITLES[screen]
        out += [f"### {title}", "", "| key | binding id | action | what it does |", "|---|---|---|---|"]
        for a in ACTIONS:
            if a.screen != screen:
                continue
            keys = ", ".join(f"`{display_key(k)}`" for k in a.key.split(","))
            out.append(f"| {keys} | `{a.id}` | {a.short} | {a.help} |")
        out.append("")
    return "\n".join(out)


async def wait(pilot, predicate, timeout=30.0):  # type: ignore[no-untyped-def]
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError
        await pilot.pause()
        await asyncio.sleep(0.02)


async def paste(pilot, text):  # type: ignore[no-untyped-def]
    from textual import events

    pilot.app.screen.focused.post_message(events.Paste(text))
    await pilot.pause()


async def run_screen(reg, size, suffix, save):  # type: ignore[no-untyped-def]
    """The Run screen mid-run in slow motion and finished (plus log, export, help, palette)."""
    from explorer.tui.app import ExplorerApp

    app = ExplorerApp(registry=reg, entry_points=False)
    async with app.run_test(size=size) as pilot:
        await wait(pilot, lambda: app.session is not None and app.session.state == "paused")
        app.set_speed(5_000.0)
        await pilot.press("space")
        await wait(pilot, lambda: app.session.latest is not None and app.session.latest.now_ns > 30_000_000)
        await pilot.pause(0.3)
        save(app, f"run-live{suffix}")
        await pilot.press("m")
        await wait(pilot, lambda: app.session.state == "finished"
                   and app.screen.applied_seq == app.session.latest.seq)
        save(app, f"run-finished{suffix}")
        if not suffix:
            await pilot.press("f")
            await paste(pilot, "flush")
            await pilot.pause(0.2)
            save(app, "run-log")
            await pilot.press("escape")
            await pilot.press("e")
            save(app, "export")
            await pilot.press("escape")
            await pilot.press("f1")
            save(app, "help-run")
            await pilot.press("escape")
            await pilot.press("ctrl+p")
            await paste(pilot, "scenario")
            await pilot.pause(0.3)
            save(app, "palette")
            await pilot.press("escape")
        app.shutdown_sessions()


async def shots() -> None:
    from explorer.config import apply_overrides, default_config
    from explorer.plugins import load_registry
    from explorer.tui.app import ExplorerApp

    IMG.mkdir(parents=True, exist_ok=True)
    reg = load_registry(entry_points=False)

    def save(app, name):  # type: ignore[no-untyped-def]
        app.save_screenshot(f"{name}.svg", str(IMG))
        print("wrote", IMG / f"{name}.svg")

    # Run screen: paused at zero, mid-run in slow motion, finished; and at 80x24
    for size, suffix in (((120, 40), ""), ((80, 24), "-80x24")):
        await run_screen(reg, size, suffix, save)

    # the kernel before the fix: use-after-free in red
    config = default_config(reg, "before-fix")
    app = ExplorerApp(registry=reg, config=config, entry_points=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait(pilot, lambda: app.session is not None and app.session.state == "paused")
        await pilot.press("space")
        await wait(pilot, lambda: app.session.state == "finished" and app.screen.applied_seq == app.session.latest.seq)
        app.screen.query_one("#tabs").active = "tab-violations"
        await pilot.pause(0.2)
        save(app, "run-violations")
        app.shutdown_sessions()

    # Config explorer, edit with an error in place, ?, /, show-all, strategy choice, scenarios
    app = ExplorerApp(registry=reg, start="config", entry_points=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        save(app, "config")
        await pilot.press("slash")
        await paste(pilot, "delay")
        await pilot.pause(0.2)
        save(app, "search")
        await pilot.press("enter")
        await pilot.pause(0.2)
        await pilot.press("enter", "ctrl+u")
        await paste(pilot, "20 parsecs")
        save(app, "config-edit-error")
        await pilot.press("ctrl+u")
        await paste(pilot, "40us")
        await pilot.press("enter")
        await pilot.pause(0.2)
        await pilot.press("question_mark")
        save(app, "info")
        await pilot.press("escape")
        await pilot.press("a")
        await pilot.pause(0.2)
        save(app, "config-show-all")
        await pilot.press("a", "l")
        save(app, "scenarios")
        await pilot.press("escape")
        await pilot.press("ctrl+w")
        save(app, "save-as")
        await pilot.press("escape")
        await pilot.press("ctrl+q")
        save(app, "quit-unsaved")
        await pilot.press("escape")
        app.shutdown_sessions()

    app = ExplorerApp(registry=reg, start="config", entry_points=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        save(app, "config-80x24")

    # Compare
    small = apply_overrides(default_config(reg), ["run.duration=50ms"], reg)
    app = ExplorerApp(registry=reg, config=small, start="compare", entry_points=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait(pilot, lambda: len(app.compare_sessions) == 3 and all(s.state == "paused"
                                                                          for s in app.compare_sessions))
        await pilot.press("space")
        await wait(pilot, lambda: all(s.state == "finished" for s in app.compare_sessions))
        app.screen.apply_latest()
        await pilot.pause(0.3)
        save(app, "compare")
        await pilot.press("c")
        save(app, "compare-choose")
        await pilot.press("escape")
        app.shutdown_sessions()

    # Plugins, with a folder of broken plugins; and a raising strategy's error panel
    broken = ROOT / "tests" / "plugins" / "broken"
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "my_buggy.py").write_text(RAISES)
        dirs = [str(broken), tmp]
        reg2 = load_registry(dirs, entry_points=False)
        app = ExplorerApp(plugins_dirs=dirs, registry=reg2, start="plugins", entry_points=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            save(app, "plugins")
        cfg = apply_overrides(default_config(reg2), ["strategy.name=my-buggy"], reg2)
        app = ExplorerApp(plugins_dirs=dirs, registry=reg2, config=cfg, entry_points=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait(pilot, lambda: app.session is not None and app.session.state == "paused")
            await pilot.press("space")
            await wait(pilot, lambda: app.session.state == "failed"
                       and app.screen.applied_seq == app.session.latest.seq)
            await pilot.pause(0.2)
            save(app, "run-error")
            app.shutdown_sessions()

    await sweep_shots(reg, save)


async def sweep_shots(reg, save) -> None:  # type: ignore[no-untyped-def]
    """w on the config tree, then the Sweep screen with its results sorted by flushes."""
    from explorer.config import apply_overrides, default_config
    from explorer.tui.app import ExplorerApp
    from explorer.tui.screens.sweep_axis import SweepAxisModal

    cfg = apply_overrides(default_config(reg), ["strategy.name=batched", "run.duration=50ms"], reg)
    app = ExplorerApp(registry=reg, config=cfg, start="config", entry_points=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("slash")
        await paste(pilot, "strategy.params.batch")
        await pilot.press("enter")
        await pilot.pause(0.2)
        await pilot.press("w")
        await wait(pilot, lambda: isinstance(app.screen, SweepAxisModal) and app.screen.focused is not None)
        await paste(pilot, "1:256:5:log")
        await pilot.press("tab", "ctrl+u")
        await paste(pilot, "3")
        await pilot.pause(0.2)
        save(app, "sweep-axis")
        await pilot.press("enter")
        await wait(pilot, lambda: not isinstance(app.screen, SweepAxisModal))
        app.sweep_state.set_axis("iommu.model", "intel-vtd,amd-vi")
        await pilot.press("5", "space")
        await wait(pilot, lambda: app.sweep_state.progress is not None and not app.sweep_state.running
                   and app.screen.shown == len(app.sweep_state.results), timeout=120)
        table = app.screen.query_one("#sweep-results")
        table.focus()
        table.move_cursor(column=[str(k.value) for k in table.columns].index("flushes"))
        await pilot.press("s")
        await pilot.pause(0.3)
        save(app, "sweep")
        app.shutdown_sessions()


def update_doc() -> None:
    text = DOC.read_text()
    new = re.sub(r"(<!-- keys:start -->\n).*?(<!-- keys:end -->)", lambda m: m.group(1) + key_table() + m.group(2),
                 text, flags=re.S)
    DOC.write_text(new)
    print("updated", DOC)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    if "--sweep-only" in sys.argv:
        from explorer.plugins import load_registry

        def _save(app, name):  # type: ignore[no-untyped-def]
            app.save_screenshot(f"{name}.svg", str(IMG))
            print("wrote", IMG / f"{name}.svg")

        asyncio.run(sweep_shots(load_registry(entry_points=False), _save))
    elif "--keys-only" not in sys.argv:
        asyncio.run(shots())
    update_doc()
