"""Live reload of --plugins-dir plugins in the TUI (explorer.tui.reload): edit, save, watch."""

from __future__ import annotations

from pathlib import Path

from explorer.plugins import load_registry
from tests.conftest import make_config
from tests.tui_helpers import SHORT, make_app, run_to_end, wait_for_text, wait_until


def source(version: str, body: str, extra_param: bool = False) -> str:
    param = ('    params = (Param("spin", "duration", "0ns", min=0, max=10**6, help="unused"),)\n'
             if extra_param else "")
    return f'''
from explorer.api import FreeStrategy, Param, hookimpl


class Live(FreeStrategy):
    name = "live"
    version = "{version}"
    help = "version {version}"
{param}
    def pagetable_free_kernel(self, k, pt):
        {body}


@hookimpl
def register_strategies(register):
    register(Live)
'''


async def test_an_edit_reloads_the_plugin_and_restarts_the_run_with_it(tmp_path: Path) -> None:
    d = tmp_path / "plugins"
    d.mkdir()
    f = d / "live.py"
    f.write_text(source("1", "k.free_now(pt)"))
    reg = load_registry([d], entry_points=False)
    app = make_app(reg, make_config(reg, *SHORT, "strategy.name=live"), start="run", plugins_dirs=[d])
    async with app.run_test(size=(120, 40)) as pilot:
        await run_to_end(pilot, app)
        assert app.session is not None
        first = app.session.latest.metrics()  # type: ignore[union-attr]
        assert first["kernel_tables_freed"] > 0 and first["violations"]["leaked"]["total"] == 0

        f.write_text(source("2", "pass  # now it never frees", extra_param=True))
        await wait_until(pilot, lambda: app.registry.strategies["live"].version == "2", what="the reload")
        assert app.reload_log[-1].endswith("reloaded live.py: strategy live")
        assert app.config["strategy"]["params"] == {"spin": 0}  # the new parameter, at its default
        # the run started over with the new code
        await wait_until(pilot, lambda: app.session is not None and app.session.state == "paused",
                         what="the restarted run")
        await run_to_end(pilot, app)
        second = app.session.latest.metrics()  # type: ignore[union-attr]
        assert second["kernel_tables_freed"] == 0
        assert second["violations"]["leaked"]["total"] == second["kernel_tables_unlinked"] > 0


async def test_a_file_that_no_longer_imports_shows_its_error_and_the_last_good_version_stays(
        tmp_path: Path) -> None:
    d = tmp_path / "plugins"
    d.mkdir()
    f = d / "live.py"
    f.write_text(source("1", "pass  # never frees"))
    reg = load_registry([d], entry_points=False)
    app = make_app(reg, make_config(reg, *SHORT, "strategy.name=live"), start="plugins", plugins_dirs=[d])
    async with app.run_test(size=(160, 40)) as pilot:
        f.write_text(source("2", "k.free_now(pt)").replace("def pagetable_free_kernel(self, k, pt):",
                                                           "def pagetable_free_kernel(self, k, pt)"))
        watcher = app.plugin_watcher
        assert watcher is not None
        await wait_until(pilot, lambda: bool(watcher.kept), what="the failed reload")
        assert "SyntaxError" in watcher.kept[str(f.resolve())]
        assert app.registry.strategies["live"].version == "1"  # the last good version is in use
        assert not app.registry.failures
        await wait_for_text(pilot, "last good version in use", "SyntaxError", "kept the last good version of live.py")

        # the run uses the last good version too (its process loads the pinned source)
        app.action_goto("run")
        await run_to_end(pilot, app)
        assert app.session is not None
        assert app.session.latest.metrics()["kernel_tables_freed"] == 0  # type: ignore[union-attr]

        f.write_text(source("3", "k.free_now(pt)"))  # fixed: loads again
        await wait_until(pilot, lambda: app.registry.strategies["live"].version == "3", what="the fixed reload")
        assert not watcher.kept
        await wait_until(pilot, lambda: app.session is not None and app.session.state == "paused",
                         what="the restarted run")
        await run_to_end(pilot, app)
        assert app.session.latest.metrics()["kernel_tables_freed"] > 0  # type: ignore[union-attr]
