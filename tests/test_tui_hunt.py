"""The TUI's Hunt action (explorer/tui/screens/hunt.py): a counterexample becomes the config on the
Run screen, ready to play; nothing found says what was covered."""

from __future__ import annotations

from explorer.config import default_config
from explorer.hunt import memory_kinds
from explorer.plugins import Registry
from tests.tui_helpers import make_app, run_to_end, wait_for_text, wait_until


async def test_hunt_opens_the_counterexample_on_the_run_screen_and_it_plays(registry: Registry) -> None:
    app = make_app(registry, default_config(registry, "before-fix"), start="config")
    app.hunt_limits = {"max_runs": 200, "workers": 1}  # type: ignore[attr-defined]
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("h")
        await wait_until(pilot, lambda: app.config["workload"][0]["name"] == "script", 120, "the counterexample")
        assert app.current_mode == "run"
        assert app.path is None and app.dirty  # a save asks for a name: the user's file stays as it was
        assert app.config["strategy"]["name"] == "sync-unsafe" and app.config["iommu"]["probe_rate"] == 0
        def said() -> list[str]:
            return [str(n.message) for n in app._notifications if n.title == "Counterexample found"]

        await wait_until(pilot, lambda: bool(said()), 10, "the notification")
        assert "space plays it live" in said()[0] and "scripted event" in said()[0]
        await run_to_end(pilot, app)
        v = app.session.latest.metrics()["violations"]  # type: ignore[union-attr]
        assert sum(v[k]["total"] for k in memory_kinds() if k in v) >= 1  # what the hunt found, replayed


async def test_hunt_that_finds_nothing_says_what_it_covered(registry: Registry) -> None:
    app = make_app(registry, default_config(registry, "linux-6.19"), start="config")
    app.hunt_limits = {"max_runs": 100, "workers": 1}  # type: ignore[attr-defined]
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("h")
        await wait_until(pilot, lambda: getattr(app.screen, "outcome", "") == "nothing", 120, "the hunt to end")
        await wait_for_text(pilot, "nothing found in 100 runs", "Varied:", "event times")
        assert app.config["workload"][0]["name"] == "vmalloc-huge"  # the config is untouched
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.current_mode == "config" and not hasattr(app.screen, "outcome"), 10)
